package tokenizer

import (
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
)

func benchText(b *testing.B) string {
	b.Helper()
	data := testshared.ReadFile(b, testshared.Path(b, "corpus", "tinystories-valid-1000.txt"))
	if len(data) > 200<<10 {
		data = data[:200<<10]
	}
	return string(data)
}

// BenchmarkEncode encodes the first 200 KB of the TinyStories validation
// text (MB/s). The word cache is warm after the first iteration, as it is
// in a long-running process.
func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	cases := []struct {
		name string
		tok  func(b *testing.B) *Tokenizer
	}{
		{"gpt2", func(b *testing.B) *Tokenizer { return loadHF(b, "tokenizers", "gpt2") }},
		{"llama2", func(b *testing.B) *Tokenizer { return loadHF(b, "tokenizers", "llama2") }},
		{"llama3-style", func(b *testing.B) *Tokenizer { return loadHF(b, "tokenizers", "llama3-style-4096") }},
		{"llama2c", func(b *testing.B) *Tokenizer { return loadLlama2C(b) }},
		{"llama2-tokenizer.model", func(b *testing.B) *Tokenizer {
			return loadSentencePiece(b, "tokenizers", "llama2", "tokenizer.model")
		}},
		{"gguf-llama-spm", func(b *testing.B) *Tokenizer { return loadGGUFTokenizer(b, "ggml-vocab-llama-spm.gguf") }},
		{"gguf-gpt-2", func(b *testing.B) *Tokenizer { return loadGGUFTokenizer(b, "ggml-vocab-gpt-2.gguf") }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tok := c.tok(b)
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := tok.Encode(text, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	text := benchText(b)
	tok := loadHF(b, "tokenizers", "gpt2")
	ids, err := tok.Encode(text, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := tok.Decode(ids, false); err != nil {
			b.Fatal(err)
		}
	}
}

func loadGGUFTokenizer(b *testing.B, name string) *Tokenizer {
	b.Helper()
	tok, err := FromGGUFVocab(loadGGUFVocab(b, name))
	if err != nil {
		b.Fatal(err)
	}
	return tok
}
