package tokenizer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/testshared"
)

// fuzzTexts are encoded by every tokenizer the fuzz targets manage to build.
var fuzzTexts = []string{"", "Hello world", " a  b\n\n<s>é日🙂\xff", "aaaaaaaaaaaaaaaa", "ab ba abab  ", "<unk></s>x"}

// checkIDs checks the invariants every tokenizer keeps on every text: ids
// inside the vocabulary, the same ids on a second run, and Decode accepting
// them.
func checkIDs(t *testing.T, tok *Tokenizer, s string, special bool) []int {
	t.Helper()
	ids, err := tok.Encode(s, special)
	if err != nil {
		t.Fatalf("Encode(%q): %v", s, err)
	}
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("Encode(%q) gave id %d outside [0,%d)", s, id, tok.VocabSize())
		}
	}
	again, _ := tok.Encode(s, special)
	if !slices.Equal(ids, again) {
		t.Fatalf("Encode(%q) is not deterministic: %v then %v", s, ids, again)
	}
	if _, err := tok.Decode(ids, false); err != nil {
		t.Fatalf("Decode(%v): %v", ids, err)
	}
	return ids
}

// FuzzSentencePiece: the ModelProto reader never panics; a model it accepts
// has one token per piece, encodes every text to valid ids deterministically,
// and, when it can spell every byte (byte fallback with all 256 byte pieces,
// dummy prefix, whitespace escaped, no extra-whitespace removal), decodes
// every valid UTF-8 text without U+2581 or special-piece texts back to itself.
func FuzzSentencePiece(f *testing.F) {
	f.Add(spProto([]string{"a", "b", "ab", "▁a"}, 2))
	f.Add(spProto([]string{"▁", "x", "▁x", "xx", "▁xx"}, 2))
	f.Add(spProto(nil, 1))
	f.Add(spByteModel())
	if root := testshared.Root(); root != "" {
		if b, err := os.ReadFile(filepath.Join(root, "models", "stories260K", "tok512.model")); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := FromSentencePiece(data, nil)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		p, err := parseSentencePiece(data)
		if err != nil {
			t.Fatalf("FromSentencePiece accepted what parseSentencePiece refuses: %v", err)
		}
		if tok.VocabSize() != len(p.pieces) {
			t.Fatalf("vocab %d for %d pieces", tok.VocabSize(), len(p.pieces))
		}
		spellsAll := p.byteFallback && p.addDummyPrefix && p.escapeWhitespaces && !p.removeExtraWhitespaces && !p.treatWhitespaceAsSuffix
		var specials []string
		for i, ty := range p.types {
			if ty == typeControl || ty == typeUnknown {
				specials = append(specials, p.pieces[i])
			}
			if strings.Contains(p.pieces[i], "<0x") && ty != typeByte {
				spellsAll = false // a normal piece that looks like a byte piece decodes as one
			}
		}
		for b := range 256 {
			if id, ok := tok.TokenID(fmt.Sprintf("<0x%02X>", b)); !ok || p.types[id] != typeByte {
				spellsAll = false
			}
		}
		for _, s := range fuzzTexts {
			checkIDs(t, tok, s, false)
			checkIDs(t, tok, s, true)
			if !spellsAll || !utf8.ValidString(s) || s == "" || strings.Contains(s, spaceSymbol) {
				continue
			}
			if slices.ContainsFunc(specials, func(sp string) bool { return strings.Contains(s, sp) }) {
				continue
			}
			plain := checkIDs(t, tok, s, false)
			if dec, _ := tok.Decode(plain, false); dec != s {
				t.Fatalf("round trip of %q = %q (ids %v)", s, dec, plain)
			}
		}
	})
}

// spByteModel is a BPE model with byte fallback and all 256 byte pieces.
func spByteModel() []byte {
	var out []byte
	piece := func(s string, typ int) {
		p := binary.AppendUvarint([]byte{0x0a}, uint64(len(s)))
		p = append(p, s...)
		p = binary.AppendUvarint(append(p, 0x18), uint64(typ))
		out = binary.AppendUvarint(append(out, 0x0a), uint64(len(p)))
		out = append(out, p...)
	}
	piece("<unk>", 2)
	piece("<s>", 3)
	piece("</s>", 3)
	for b := range 256 {
		piece(fmt.Sprintf("<0x%02X>", b), 6)
	}
	for _, s := range []string{"▁", "a", "b", "▁a", "ab", "▁ab"} {
		piece(s, 1)
	}
	ts := []byte{0x18, 2, 0x98, 0x02, 1} // model_type BPE, byte_fallback (field 35)
	out = binary.AppendUvarint(append(out, 0x12), uint64(len(ts)))
	out = append(out, ts...)
	ns := []byte{0x20, 0} // remove_extra_whitespaces off
	out = binary.AppendUvarint(append(out, 0x1a), uint64(len(ns)))
	return append(out, ns...)
}

// FuzzGGUFVocab: the gguf-vocab blob reader never panics; a blob it accepts
// is canonical (re-encoding gives the same bytes), and a tokenizer built
// from it encodes every text to valid ids deterministically, in both the
// llama.cpp test mode and the prompt mode.
func FuzzGGUFVocab(f *testing.F) {
	for _, v := range []*GGUFVocab{
		{Model: GGUFModelLlama, Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a", "▁a", "<0x41>"}, Scores: []float32{0, 0, 0, -1, -2, -0.5, 0},
			Types: []int32{2, 3, 3, 1, 1, 1, 6}, BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true},
		{Model: GGUFModelGPT2, Pre: "gpt-2", Tokens: []string{"a", "b", "ab", "Ġ", "Ġab", "<|endoftext|>"},
			Types: []int32{1, 1, 1, 1, 1, 3}, Merges: []string{"a b", "Ġ ab"}, BOS: 5, EOS: 5, UNK: -1, PAD: -1},
		{Model: GGUFModelBERT, Tokens: []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "▁a", "b", "▁ab", "▁!"}, Types: []int32{3, 2, 3, 3, 1, 1, 1, 1},
			BOS: 2, EOS: -1, UNK: 1, PAD: 0, SEP: 3, AddBOS: true, Lowercase: true, StripAccents: true},
		{Model: GGUFModelGPT2, Pre: "llama-bpe", Tokens: []string{"1", "2", "12", "x"}, Merges: []string{"1 2"}, BOS: 3, EOS: 3, UNK: -1, PAD: -1, AddBOS: true},
	} {
		b, err := v.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if root := testshared.Root(); root != "" {
		if g, err := gguf.Open(filepath.Join(root, "models", "stories260K", "stories260K.gguf")); err == nil {
			if v, err := VocabFromGGUF(g); err == nil {
				if b, err := v.MarshalBinary(); err == nil {
					f.Add(b)
				}
			}
			g.Close()
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseGGUFVocab(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		again, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted blob does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("blob is not canonical: %d bytes re-encode to %d", len(data), len(again))
		}
		tok, err := FromGGUFVocab(v)
		if err != nil {
			return // e.g. a token text that repeats
		}
		if tok.VocabSize() != len(v.Tokens) || tok.BOS() != v.BOS || tok.EOS() != v.EOS {
			t.Fatalf("vocab %d bos %d eos %d, blob %d %d %d", tok.VocabSize(), tok.BOS(), tok.EOS(), len(v.Tokens), v.BOS, v.EOS)
		}
		for _, s := range fuzzTexts {
			checkIDs(t, tok, s, false)
			ids := checkIDs(t, tok, s, true)
			if v.AddBOS && (len(ids) == 0 || ids[0] != v.BOS) {
				t.Fatalf("Encode(%q, true) = %v does not start with BOS %d", s, ids, v.BOS)
			}
		}
	})
}
