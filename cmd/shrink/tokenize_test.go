package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
)

// TestTokenizeGGUFVectors runs every .inp/.out pair of the shared vocab-only
// GGUFs through `shrink tokenize --ids`, as llama.cpp's test-tokenizer-0
// does (no BOS, special tokens not parsed).
func TestTokenizeGGUFVectors(t *testing.T) {
	for _, name := range testshared.GGUFVocabs {
		t.Run(name, func(t *testing.T) {
			path := testshared.Path(t, "tokenizers", "gguf-vocab", name)
			inputs, ids := testshared.LlamaCppVectors(t, name)
			for i, in := range inputs {
				want := strings.Trim(fmt.Sprint(ids[i]), "[]")
				code, out, stderr := shrink(t, "tokenize", path, "--ids", "-p", in)
				if code != 0 {
					t.Fatalf("input %d: exit %d: %s", i, code, stderr)
				}
				if got := strings.TrimSuffix(out, "\n"); got != want || strings.Count(out, "\n") != 1 {
					t.Errorf("input %d %q:\n got %q\nwant %q", i, in, got, want)
				}
			}
		})
	}
}

// TestTokenizeSources tokenizes the same prompt through every kind of
// source of the stories260K tokenizer, a .shrink converted with the GGUF's
// tokenizer included, and checks they agree with BOS only under --special.
func TestTokenizeSources(t *testing.T) {
	dir := testshared.Path(t, "models", "stories260K")
	conv := filepath.Join(t.TempDir(), "m.shrink")
	if code, _, stderr := shrink(t, "convert", filepath.Join(dir, "stories260K.bin"), "-o", conv,
		"--tokenizer", filepath.Join(dir, "stories260K.gguf")); code != 0 {
		t.Fatalf("convert: %s", stderr)
	}
	const prompt = "Once upon a time, there was a little girl."
	var first string
	for _, src := range []string{
		filepath.Join(dir, "tok512.bin"), filepath.Join(dir, "tok512.model"), filepath.Join(dir, "stories260K.gguf"), conv,
	} {
		code, plain, stderr := shrink(t, "tokenize", src, "--ids", "-p", prompt)
		if code != 0 {
			t.Fatalf("%s: %s", src, stderr)
		}
		_, special, _ := shrink(t, "tokenize", src, "--ids", "--special", "-p", prompt)
		if special != "1 "+plain {
			t.Errorf("%s: --special %q, plain %q", src, special, plain)
		}
		if first == "" {
			first = plain
		} else if plain != first {
			t.Errorf("%s: %q, tok512.bin gives %q", src, plain, first)
		}
		code, table, _ := shrink(t, "tokenize", src, "-p", "Once")
		if code != 0 || !strings.Contains(table, `"▁Once"`) && !strings.Contains(table, `" Once"`) {
			t.Errorf("%s: table %q", src, table)
		}
	}
}

func TestTokenizeErrors(t *testing.T) {
	checkCLIErrors(t, []cliCase{
		{"no text", []string{"tokenize", "go.mod"}, exitUsage, "no text"},
		{"both texts", []string{"tokenize", "go.mod", "-p", "a", "-f", "go.mod"}, exitUsage, "not both"},
		{"no model", []string{"tokenize", "-p", "a"}, exitUsage, "want one model"},
		{"not a tokenizer", []string{"tokenize", "main.go", "-p", "a"}, exitFail, "is not a .shrink, GGUF, tokenizer.json"},
		{"missing", []string{"tokenize", "nope.gguf", "-p", "a"}, exitFail, "nope.gguf"},
	})
}
