package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/shrink-llm/shrink/internal/testshared"
)

// FuzzFromHF: the tokenizer.json parser must never panic, and whatever it
// accepts must encode and decode without panicking.
func FuzzFromHF(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`))
	f.Add([]byte(`{"added_tokens":[{"id":3,"content":"<s>","special":true,"normalized":true}],"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},"model":{"type":"BPE","vocab":{"▁":0,"a":1,"▁a":2,"<s>":3,"<0x41>":4},"merges":[["▁","a"]],"byte_fallback":true,"unk_token":"<s>"},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}}],"special_tokens":{"<s>":{"ids":[3]}}},"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}}`))
	f.Add([]byte(`{"pre_tokenizer":{"type":"Split","pattern":{"Regex":"[a-z]+"},"behavior":"MergedWithNext","invert":true},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`))
	if root := testshared.OptionalRoot(f); root != "" {
		for _, dir := range []string{"bytelevel-bpe-4096", "llama-bpe-4096", "llama3-style-4096"} {
			if b, err := os.ReadFile(filepath.Join(root, "tokenizers", dir, "tokenizer.json")); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := FromHF(data, data, nil)
		if err != nil {
			return
		}
		for _, s := range []string{"", "Hello world", " a  b\n\n<s>é日🙂\xff", "aaaaaaaaaaaaaaaa"} {
			ids, err := tok.Encode(s, true)
			if err != nil {
				continue
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("Encode(%q) produced id %d outside [0,%d)", s, id, tok.VocabSize())
				}
			}
			_, _ = tok.Decode(ids, false)
			_, _ = streamDecode(tok, ids)
		}
	})
}

// FuzzEncode encodes arbitrary strings with the GPT-2 and Llama 2
// tokenizers: never panic, ids in range, stream decoding equals Decode, and
// byte-level BPE round-trips valid UTF-8 exactly.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Hello world", " Hello  world ", "I can't, won't", "日本語🙂", "\r\n\t \u00a0x", "<|endoftext|><s>", "12345 67.89", "\xff\xfe"} {
		f.Add(s)
	}
	gpt2 := loadHF(f, "tokenizers", "gpt2")
	llama2 := loadHF(f, "tokenizers", "llama2")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range []*Tokenizer{gpt2, llama2} {
			ids, err := tok.Encode(s, true)
			if err != nil {
				t.Fatalf("Encode(%q): %v", s, err)
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("Encode(%q) produced id %d", s, id)
				}
			}
			dec, err := tok.Decode(ids, false)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			st, err := streamDecode(tok, ids)
			if err != nil || st != dec {
				t.Fatalf("stream decode of %q = %q, %v; Decode = %q", s, st, err, dec)
			}
		}
		if utf8.ValidString(s) {
			ids, _ := gpt2.Encode(s, false)
			if dec, _ := gpt2.Decode(ids, false); dec != s {
				t.Fatalf("gpt2 round trip of %q = %q (ids %v)", s, dec, ids)
			}
			again, _ := gpt2.Encode(s, false)
			if !slices.Equal(ids, again) {
				t.Fatalf("gpt2 encode not deterministic for %q", s)
			}
		}
	})
}
