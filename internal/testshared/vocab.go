package testshared

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// GGUFVocabs are llama.cpp's vocab-only GGUFs in
// ../shared/tokenizers/gguf-vocab that come with test vectors.
var GGUFVocabs = []string{"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-bert-bge.gguf"}

// vocabTestSep separates the inputs of a llama.cpp .inp file (and ends the
// last one).
const vocabTestSep = "\n__ggml_vocab_test__\n"

// ReadFile reads the file at path, failing tb on any error.
func ReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// LlamaCppVectors reads the test vectors of the vocab-only GGUF name (one
// of GGUFVocabs) as llama.cpp's test-tokenizer-0 does: the inputs of
// name.inp, separated by "\n__ggml_vocab_test__\n", and the ids llama.cpp
// gives each (no BOS, special tokens not parsed), one line of name.out per
// input. It skips tb (fails it under CI) when the files are absent.
//
// ggml-vocab-bert-bge.gguf comes with its .out only. llama.cpp writes the
// same inputs for every vocabulary (the shared .inp files are identical), so
// the llama-spm inputs stand in.
func LlamaCppVectors(tb testing.TB, name string) (inputs []string, ids [][]int) {
	tb.Helper()
	inpName := name + ".inp"
	if name == "ggml-vocab-bert-bge.gguf" {
		inpName = "ggml-vocab-llama-spm.gguf.inp"
	}
	inp := string(ReadFile(tb, Path(tb, "tokenizers", "gguf-vocab", inpName)))
	out := string(ReadFile(tb, Path(tb, "tokenizers", "gguf-vocab", name+".out")))
	inputs = strings.Split(strings.TrimSuffix(inp, vocabTestSep), vocabTestSep)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(inputs) != len(lines) || inp == "" {
		tb.Fatalf("%s: %d inputs but %d output lines", name, len(inputs), len(lines))
	}
	ids = make([][]int, len(lines))
	for i, l := range lines {
		ids[i] = []int{}
		for _, f := range strings.Fields(l) {
			id, err := strconv.Atoi(f)
			if err != nil {
				tb.Fatalf("%s.out line %d: %v", name, i+1, err)
			}
			ids[i] = append(ids[i], id)
		}
	}
	return inputs, ids
}
