package tokenizer

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
)

func loadSentencePiece(tb testing.TB, rel ...string) *Tokenizer {
	tb.Helper()
	tok, err := FromSentencePiece(testshared.ReadFile(tb, testshared.Path(tb, rel...)), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestSentencePieceLlama2Cases encodes every llama2 case with the
// tokenizer.model and compares with Hugging Face's ids (the slow
// LlamaTokenizer and the tokenizer.json agree on them), with and without
// special tokens, and the decoded text.
func TestSentencePieceLlama2Cases(t *testing.T) {
	tok := loadSentencePiece(t, "tokenizers", "llama2", "tokenizer.model")
	if tok.VocabSize() != 32000 || tok.BOS() != 1 || tok.EOS() != 2 || tok.Token(29871) != "▁" {
		t.Errorf("vocab %d BOS %d EOS %d Token(29871) %q", tok.VocabSize(), tok.BOS(), tok.EOS(), tok.Token(29871))
	}
	cases := loadCases(t, "llama2")
	var n caseTally
	for i, c := range cases {
		n.check(t, tok, i, c)
		for k, id := range c.IDs {
			if k < len(c.Tokens) && tok.Token(id) != c.Tokens[k] {
				t.Errorf("case %d: Token(%d) = %q, want %q", i, id, tok.Token(id), c.Tokens[k])
			}
		}
	}
	t.Logf("%d cases: ids %d, ids_with_special %d, decoded %d match", len(cases), n.ids, n.special, n.decoded)
}

// TestSentencePieceTok512 checks that tok512.model gives the ids of
// tok512.bin (and of the Hugging Face export's reference) on the
// stories260K prompts.
func TestSentencePieceTok512(t *testing.T) {
	sp := loadSentencePiece(t, "models", "stories260K", "tok512.model")
	l2c := loadLlama2C(t)
	texts, refs := testshared.Stories260KPrompts(t)
	if sp.VocabSize() != l2c.VocabSize() || sp.BOS() != l2c.BOS() || sp.EOS() != l2c.EOS() {
		t.Errorf("vocab/BOS/EOS %d/%d/%d, tok512.bin %d/%d/%d", sp.VocabSize(), sp.BOS(), sp.EOS(), l2c.VocabSize(), l2c.BOS(), l2c.EOS())
	}
	for i, text := range texts {
		got, err := sp.Encode(text, true)
		if err != nil {
			t.Fatal(err)
		}
		want, err := l2c.Encode(text, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || !slices.Equal(got, refs[i]) {
			t.Errorf("prompt %d %q:\n model %v\n   bin %v\n   ref %v", i, text, got, want, refs[i])
		}
		dec, err := sp.Decode(got, true)
		if err != nil || dec != text {
			t.Errorf("prompt %d: Decode = %q, %v", i, dec, err)
		}
	}
}

// TestSentencePieceErrors feeds bytes that are not a usable model.
func TestSentencePieceErrors(t *testing.T) {
	tok512 := testshared.ReadFile(t, testshared.Path(t, "models", "stories260K", "tok512.bin"))
	tests := []struct {
		name   string
		data   []byte
		notSP  bool // ErrNotSentencePiece expected
		substr string
	}{
		{"empty", nil, true, "no pieces"},
		{"llama2.c tokenizer.bin", tok512, true, ""},
		{"json", []byte(`{"model": {}}`), true, ""},
		{"length past end", []byte{0x0a, 0x7f, 0x0a}, true, "runs past the end"},
		{"huge varint length", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, true, "runs past the end"},
		{"overlong varint", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, true, "varint"},
		{"group wire type", []byte{0x0b}, true, "wire type"},
		{"empty piece", []byte{0x0a, 0x00}, true, "empty piece"},
		{"unigram", spProto(nil, 1), false, "model type unigram"},
		{"bad type", []byte{0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x09}, true, "unknown piece type 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromSentencePiece(tc.data, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrNotSentencePiece) != tc.notSP {
				t.Errorf("errors.Is(ErrNotSentencePiece) = %v: %v", !tc.notSP, err)
			}
			if tc.substr != "" && !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %q does not mention %q", err, tc.substr)
			}
		})
	}
}

// spProto serializes a small ModelProto: <unk>, <s>, </s>, then pieces
// (all NORMAL, score -index), with the given model type and byte_fallback.
func spProto(pieces []string, modelType int) []byte {
	var out []byte
	piece := func(s string, typ int, score float32) {
		var p []byte
		p = append(p, 0x0a)
		p = binary.AppendUvarint(p, uint64(len(s)))
		p = append(p, s...)
		bits := math.Float32bits(score)
		p = append(p, 0x15, byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24))
		p = append(p, 0x18)
		p = binary.AppendUvarint(p, uint64(typ))
		out = append(out, 0x0a)
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	piece("<unk>", 2, 0)
	piece("<s>", 3, 0)
	piece("</s>", 3, 0)
	for i, s := range pieces {
		piece(s, 1, -float32(i))
	}
	ts := binary.AppendUvarint([]byte{0x18}, uint64(modelType))
	out = append(out, 0x12)
	out = binary.AppendUvarint(out, uint64(len(ts)))
	out = append(out, ts...)
	ns := []byte{0x18, 1, 0x20, 0} // add_dummy_prefix, no remove_extra_whitespaces
	out = append(out, 0x1a)
	out = binary.AppendUvarint(out, uint64(len(ns)))
	return append(out, ns...)
}

// TestSentencePieceByteFallbackRoundTrip checks, on a model with every byte
// piece, that text outside the pieces falls back to bytes and decodes back,
// and that the pieces merge by score.
func TestSentencePieceByteFallbackRoundTrip(t *testing.T) {
	tok, err := FromSentencePiece(spByteModel(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"ab", []string{"▁ab"}},
		{"ba", []string{"▁", "b", "a"}},
		{"é", []string{"▁", "<0xC3>", "<0xA9>"}},
		{"a\xffb", []string{"▁a", "<0xEF>", "<0xBF>", "<0xBD>", "b"}}, // malformed byte → U+FFFD
	} {
		ids, err := tok.Encode(tc.text, false)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range ids {
			got = append(got, tok.Token(id))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.text, got, tc.want)
		}
		if dec, _ := tok.Decode(ids, false); dec != strings.ToValidUTF8(tc.text, "\uFFFD") {
			t.Errorf("%q decodes to %q", tc.text, dec)
		}
	}
}
