package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// TestTokenizerSources opens stories260K, as a llama2.c checkpoint and as a
// Hugging Face folder, with each kind of tokenizer file, and checks the kind
// recognised and that the carried tokenizer encodes the model's prompts to
// the reference ids.
func TestTokenizerSources(t *testing.T) {
	dir := testshared.Path(t, "models", "stories260K")
	// A Hugging Face folder whose only tokenizer file is tokenizer.model.
	spmDir := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors"} {
		if err := os.Symlink(filepath.Join(dir, "hf", name), filepath.Join(spmDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "tok512.model"), filepath.Join(spmDir, "tokenizer.model")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, tok string
		kind            string
	}{
		{"bin + tok512.model", filepath.Join(dir, "stories260K.bin"), filepath.Join(dir, "tok512.model"), format.TokenizerSPM},
		{"bin + gguf", filepath.Join(dir, "stories260K.bin"), filepath.Join(dir, "stories260K.gguf"), format.TokenizerGGUF},
		{"bin default", filepath.Join(dir, "stories260K.bin"), "", format.TokenizerLlama2c},
		{"hf + tok512.model", filepath.Join(dir, "hf"), filepath.Join(dir, "tok512.model"), format.TokenizerSPM},
		{"hf + tok512.bin", filepath.Join(dir, "hf"), filepath.Join(dir, "tok512.bin"), format.TokenizerLlama2c},
		{"hf folder with tokenizer.model", spmDir, "", format.TokenizerSPM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openModel(t, tc.path, OpenOptions{Tokenizer: tc.tok})
			if m.TokenizerKind != tc.kind {
				t.Fatalf("kind %q, want %q", m.TokenizerKind, tc.kind)
			}
			testshared.CheckStories260KPrompts(t, buildTokenizer(t, m).Encode)
		})
	}
}

func buildTokenizer(t *testing.T, m *Model) *tokenizer.Tokenizer {
	t.Helper()
	f := m.TokenizerFiles
	var tok *tokenizer.Tokenizer
	var err error
	switch m.TokenizerKind {
	case format.TokenizerSPM:
		tok, err = tokenizer.FromSentencePiece(f[format.BlobTokenizerModel], f[format.BlobTokenizerConfig])
	case format.TokenizerGGUF:
		tok, err = tokenizer.FromGGUFVocabBlob(f[format.BlobGGUFVocab])
	case format.TokenizerLlama2c:
		tok, err = tokenizer.FromLlama2C(f[format.BlobTokenizerBin], m.Config.VocabSize)
	default:
		t.Fatalf("kind %q", m.TokenizerKind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenizerFileErrors gives --tokenizer files that are no tokenizer, or
// one that does not fit the model, and checks the one-line errors.
func TestTokenizerFileErrors(t *testing.T) {
	dir := testshared.Path(t, "models", "stories260K")
	tmp := t.TempDir()
	junk := filepath.Join(tmp, "junk.model")
	writeFile(t, junk, []byte("\x07\x00\x00\x00 this is not a tokenizer at all"))
	tests := []struct {
		name, path, tok string
		want            []string
	}{
		{"junk", filepath.Join(dir, "stories260K.bin"), junk, []string{"junk.model", "is not a tokenizer.json, SentencePiece tokenizer.model, llama2.c tokenizer.bin"}},
		{"json for llama2c", filepath.Join(dir, "stories260K.bin"), testshared.Path(t, "tokenizers", "llama2", "tokenizer.json"), []string{"cannot be used with a llama2.c checkpoint"}},
		{"too many tokens", filepath.Join(dir, "stories260K.bin"), testshared.Path(t, "tokenizers", "llama2", "tokenizer.model"), []string{"has 32000 tokens", "has 512"}},
		{"gguf too many tokens", filepath.Join(dir, "hf"), testshared.Path(t, "tokenizers", "gguf-vocab", "ggml-vocab-gpt-2.gguf"), []string{"has 50257 tokens"}},
		{"empty hf folder", tmp, "", []string{"no tokenizer.json or tokenizer.model"}},
	}
	writeFile(t, filepath.Join(tmp, "config.json"), testshared.ReadFile(t, filepath.Join(dir, "hf", "config.json")))
	if err := os.Symlink(filepath.Join(dir, "hf", "model.safetensors"), filepath.Join(tmp, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Open(tc.path, OpenOptions{Tokenizer: tc.tok})
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has several lines: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}
