// Package testshared finds the read-only test assets in ../shared (models,
// tokenizers, corpus) relative to the module root, and skips the calling
// test with a clear message when they are absent, so that `go test ./...`
// passes in a fresh clone without them.
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

// Path joins rel onto ../shared and skips tb when that file or folder does
// not exist.
func Path(tb testing.TB, rel ...string) string {
	tb.Helper()
	root := Root()
	if root == "" {
		tb.Skip("skipping: ../shared (test models and references) not found beside the module root")
	}
	p := filepath.Join(append([]string{root}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("skipping: %s not found in ../shared", filepath.Join(rel...))
	}
	return p
}
