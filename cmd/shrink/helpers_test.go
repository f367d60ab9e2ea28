package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/crafted"
	"github.com/shrink-llm/shrink/internal/testshared"
)

// editedCopy writes edit's version of the file at path to a new temporary
// .shrink file and returns its path.
func editedCopy(t *testing.T, path string, edit func(b []byte) []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edited.shrink")
	if err := os.WriteFile(p, edit(testshared.ReadFile(t, path)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rewriteHeader is a copy of the .shrink file at path with its JSON header
// rewritten by edit and its length and checksum fixed (crafted.RewriteHeader),
// so that the file passes the container's integrity checks and exercises
// what comes after them.
func rewriteHeader(t *testing.T, path string, edit func([]byte) []byte) string {
	t.Helper()
	return editedCopy(t, path, func(b []byte) []byte { return crafted.RewriteHeader(b, edit) })
}

// editHeader is rewriteHeader through the header decoded as JSON
// (crafted.EditHeader).
func editHeader(t *testing.T, path string, edit func(h map[string]any)) string {
	t.Helper()
	return editedCopy(t, path, func(b []byte) []byte { return crafted.EditHeader(b, edit) })
}

// patchPart is a copy of the .shrink file at path (whose header is h) with
// the stored bytes of a tensor's first part edited and that part's checksum
// fixed (crafted.PatchPart), so only the model validation can tell.
func patchPart(t *testing.T, path string, h *format.Header, name string, edit func(b []byte, rows, cols int)) string {
	t.Helper()
	return editedCopy(t, path, func(b []byte) []byte { return crafted.PatchPart(b, h, name, edit) })
}

// planJSON is what the tests read of `convert --dry-run --json`, declared
// by the field names users see (not as convert.Plan, whose tags would
// follow a rename).
type planJSON struct {
	Tensors []struct {
		Name     string `json:"name"`
		Encoding string `json:"encoding"`
		Kind     string `json:"kind"`
		Rank     int    `json:"rank"`
		Parts    []struct {
			Role  string  `json:"role"`
			Shape []int64 `json:"shape"`
			Bytes int64   `json:"bytes"`
		} `json:"parts"`
	} `json:"tensors"`
	LowRank struct {
		Factored int `json:"factored"`
	} `json:"lowrank"`
}

// argsWith returns a function that gives the command line base followed by
// more arguments, for tables of invocations that differ in their last flags.
func argsWith(base ...string) func(more ...string) []string {
	return func(more ...string) []string { return append(slices.Clone(base), more...) }
}
