// Package testshared finds the read-only test assets in ../shared (models,
// tokenizers, corpus) relative to the module root, and skips the calling
// test with a clear message when they are absent, so that `go test ./...`
// passes in a fresh clone without them. Under CI (the environment variable
// CI=true) absence fails the test instead: CI must not pass by skipping.
//
// It also holds what tests of several packages need around those assets: a
// minimal safetensors reader for the references, llama.cpp's tokenizer test
// vectors of the vocab-only GGUFs, the stories260K prompts with their
// reference ids, Encode and RoundTrip for a test matrix in a quant encoding,
// ReadFile and Open, which fail the test instead of returning an error, and
// Convert, which converts a slice of numbers element by element.
package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the absolute path of ../shared relative to the module root, or
// "" when it cannot be found.
func Root() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(dir), "shared")
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// InCI reports whether the tests run under CI (CI=true), where missing
// shared assets are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// Absent stops tb because an asset it needs is missing: a skip with msg, or
// under CI a failure.
func Absent(tb testing.TB, msg string) {
	tb.Helper()
	if InCI() {
		tb.Fatal("CI=true and a shared test asset is missing: " + msg)
	}
	tb.Skip("skipping: " + msg)
}

// Path joins rel onto ../shared and skips tb (fails it under CI) when that
// file or folder does not exist.
func Path(tb testing.TB, rel ...string) string {
	tb.Helper()
	root := Root()
	if root == "" {
		Absent(tb, "../shared (test models and references) not found beside the module root")
	}
	p := filepath.Join(append([]string{root}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		Absent(tb, filepath.Join(rel...)+" not found in ../shared")
	}
	return p
}

// OptionalRoot is Root for tests that only add cases when ../shared is
// there: "" when it is absent, except under CI, where absence fails tb.
func OptionalRoot(tb testing.TB) string {
	tb.Helper()
	root := Root()
	if root == "" && InCI() {
		tb.Fatal("CI=true and ../shared (test models and references) is not beside the module root")
	}
	return root
}

// Open opens path with open (format.Open, gguf.Open, a runtime.Open with
// its options bound, ...), failing tb on an error, and closes what it
// opened when the test ends.
func Open[T interface{ Close() error }](tb testing.TB, open func(string) (T, error), path string) T {
	tb.Helper()
	v, err := open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}
