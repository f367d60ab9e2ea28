package main

import (
	"path/filepath"
	"testing"
)

func TestServeErrors(t *testing.T) {
	f := demoShrink(t, "q8")
	checkCLIErrors(t, []cliCase{
		{"no file", []string{"serve"}, exitUsage, "want one .shrink file"},
		{"missing file", []string{"serve", filepath.Join(t.TempDir(), "none.shrink")}, exitFail, "none.shrink"},
		{"ctx over the model's", []string{"serve", f, "--ctx", "100000"}, exitUsage, "context 100000"},
		{"parallel negative", []string{"serve", f, "--parallel", "-1"}, exitUsage, "parallel -1"},
		{"parallel absurd", []string{"serve", f, "--parallel", "100000"}, exitUsage, "parallel 100000"},
		{"kv pool over the limit", []string{"serve", f, "--parallel", "8", "--max-kv-mib", "1"}, exitUsage, "KV cache"},
		{"kv limit negative", []string{"serve", f, "--max-kv-mib", "-5"}, exitUsage, "max-kv-mib -5"},
		{"bad address", []string{"serve", f, "--addr", "127.0.0.1:notaport"}, exitFail, "notaport"},
	})
}
