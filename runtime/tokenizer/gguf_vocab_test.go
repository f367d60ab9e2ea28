package tokenizer

import (
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/testshared"
)

func loadGGUFVocab(tb testing.TB, name string) *GGUFVocab {
	tb.Helper()
	f, err := gguf.Open(testshared.Path(tb, "tokenizers", "gguf-vocab", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	v, err := VocabFromGGUF(f)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestGGUFVocabLlamaCppVectors runs every llama.cpp test vector of every
// shared vocab-only GGUF, through the tokenizer built from the metadata and
// through the one rebuilt from its .shrink blob.
func TestGGUFVocabLlamaCppVectors(t *testing.T) {
	for _, name := range testshared.GGUFVocabs {
		t.Run(name, func(t *testing.T) {
			v := loadGGUFVocab(t, name)
			direct, err := FromGGUFVocab(v)
			if err != nil {
				t.Fatal(err)
			}
			blob, err := v.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			viaBlob, err := FromGGUFVocabBlob(blob)
			if err != nil {
				t.Fatal(err)
			}
			inputs, want := testshared.LlamaCppVectors(t, name)
			ok := 0
			for i, in := range inputs {
				for _, tok := range []*Tokenizer{direct, viaBlob} {
					got, err := tok.Encode(in, false)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, want[i]) {
						t.Errorf("input %d %q:\n got %v\nwant %v", i, clip(in), got, want[i])
					} else if tok == direct {
						ok++
					}
					// Decoding gives the text back (these inputs are valid
					// UTF-8 and hold no special-token text), in one go and
					// streamed; BERT's normalization is lossy.
					dec, err := tok.Decode(got, false)
					if err != nil || dec != in && v.Model != GGUFModelBERT {
						t.Errorf("input %d: Decode = %q, %v", i, clip(dec), err)
					}
					if st, err := streamDecode(tok, got); err != nil || st != dec {
						t.Errorf("input %d: stream decode = %q, %v; Decode = %q", i, clip(st), err, clip(dec))
					}
				}
			}
			t.Logf("%s: %d/%d llama.cpp vectors match (blob %d bytes)", name, ok, len(inputs), len(blob))
		})
	}
}

// sameVocab compares two vocabularies field by field (scores by value, so
// -0 equals 0).
func sameVocab(t *testing.T, name string, got, want *GGUFVocab) {
	t.Helper()
	if got.Model != want.Model || got.Pre != want.Pre || got.BOS != want.BOS || got.EOS != want.EOS || got.UNK != want.UNK ||
		got.PAD != want.PAD || got.AddBOS != want.AddBOS || got.AddEOS != want.AddEOS || got.AddSpacePrefix != want.AddSpacePrefix {
		t.Errorf("%s: header\n got %s %q bos %d eos %d unk %d pad %d add %v/%v/%v\nwant %s %q bos %d eos %d unk %d pad %d add %v/%v/%v", name,
			got.Model, got.Pre, got.BOS, got.EOS, got.UNK, got.PAD, got.AddBOS, got.AddEOS, got.AddSpacePrefix,
			want.Model, want.Pre, want.BOS, want.EOS, want.UNK, want.PAD, want.AddBOS, want.AddEOS, want.AddSpacePrefix)
	}
	if !slices.Equal(got.Tokens, want.Tokens) || !slices.Equal(got.Types, want.Types) || !slices.Equal(got.Merges, want.Merges) {
		t.Errorf("%s: tokens, types or merges differ", name)
	}
	if len(got.Scores) != len(want.Scores) {
		t.Fatalf("%s: %d scores, want %d", name, len(got.Scores), len(want.Scores))
	}
	for i := range got.Scores {
		if got.Scores[i] != want.Scores[i] {
			t.Fatalf("%s: score %d = %v, want %v", name, i, got.Scores[i], want.Scores[i])
		}
	}
}

// TestVocabForExport checks the GGUF vocabularies made from a
// tokenizer.model and a llama2.c tokenizer.bin against the ones llama.cpp's
// converters wrote for the same tokenizers.
func TestVocabForExport(t *testing.T) {
	fromModel := func(rel ...string) *GGUFVocab {
		v, err := VocabFromSentencePiece(testshared.ReadFile(t, testshared.Path(t, rel...)), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	stories := func() *GGUFVocab {
		f, err := gguf.Open(testshared.Path(t, "models", "stories260K", "stories260K.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		v, err := VocabFromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}()
	sameVocab(t, "llama2 tokenizer.model", fromModel("tokenizers", "llama2", "tokenizer.model"), loadGGUFVocab(t, "ggml-vocab-llama-spm.gguf"))
	sameVocab(t, "tok512.model", fromModel("models", "stories260K", "tok512.model"), stories)
	l2c, err := VocabFromLlama2C(testshared.ReadFile(t, testshared.Path(t, "models", "stories260K", "tok512.bin")), 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameVocab(t, "tok512.bin", l2c, stories)
}

// TestGGUFVocabSpecialTokens checks the two modes of Encode: without
// addSpecial, control tokens written in the text are plain text (llama.cpp's
// parse_special off); with it, they become their ids and BOS is added.
func TestGGUFVocabSpecialTokens(t *testing.T) {
	spm, err := FromGGUFVocab(loadGGUFVocab(t, "ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	gpt2, err := FromGGUFVocab(loadGGUFVocab(t, "ggml-vocab-gpt-2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	bert, err := FromGGUFVocab(loadGGUFVocab(t, "ggml-vocab-bert-bge.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tok     *Tokenizer
		text    string
		special bool
		want    []int
	}{
		{bert, "Hello world", true, []int{101, 7592, 2088, 102}},
		{bert, "Hello[SEP]world", true, []int{101, 7592, 102, 2088, 102}},
		{spm, "<s>Hello", true, []int{1, 1, 15043}},
		{spm, "Hello</s>", true, []int{1, 15043, 2}},
		{spm, "Hello world", true, []int{1, 15043, 3186}},
		{spm, "", true, []int{1}},
		{spm, "", false, []int{}},
		{gpt2, "a<|endoftext|>b", true, []int{64, 50256, 65}},
		{gpt2, "Hello", true, []int{15496}}, // gpt-2 adds no BOS
	}
	for _, tc := range tests {
		got, err := tc.tok.Encode(tc.text, tc.special)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("Encode(%q, %v) = %v, want %v", tc.text, tc.special, got, tc.want)
		}
	}
	for _, tc := range []struct {
		tok  *Tokenizer
		text string
		id   int
	}{{spm, "<s>Hello</s>", 1}, {spm, "<s>Hello</s>", 2}, {gpt2, "a<|endoftext|>b", 50256}} {
		got, _ := tc.tok.Encode(tc.text, false)
		if slices.Contains(got, tc.id) {
			t.Errorf("Encode(%q, false) = %v parses special token %d", tc.text, got, tc.id)
		}
	}
}
