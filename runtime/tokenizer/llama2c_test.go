package tokenizer

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
)

func loadLlama2C(tb testing.TB) *Tokenizer {
	tb.Helper()
	tok, err := FromLlama2C(testshared.ReadFile(tb, testshared.Path(tb, "models", "stories260K", "tok512.bin")), 512)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestLlama2CPrompts encodes the stories260K prompts with tok512.bin and
// compares with the ids of the Hugging Face export of the same model.
func TestLlama2CPrompts(t *testing.T) {
	tok := loadLlama2C(t)
	if tok.BOS() != 1 || tok.EOS() != 2 || tok.VocabSize() != 512 || tok.Token(1) != "<s>" {
		t.Errorf("BOS %d EOS %d vocab %d Token(1) %q", tok.BOS(), tok.EOS(), tok.VocabSize(), tok.Token(1))
	}
	texts, wants := testshared.CheckStories260KPrompts(t, tok.Encode)
	for i, text := range texts {
		ids := wants[i]
		for _, skip := range []bool{true, false} {
			dec, err := tok.Decode(ids, skip)
			if err != nil {
				t.Fatal(err)
			}
			want := text
			if !skip {
				want = "<s> " + text
			}
			if dec != want {
				t.Errorf("Decode(%v, skip=%v) = %q, want %q", ids, skip, dec, want)
			}
		}
		st, err := streamDecode(tok, ids[1:])
		if err != nil || st != text {
			t.Errorf("stream decode = %q, %v; want %q", st, err, text)
		}
	}
}

// TestLlama2CMergeMatchesRunC compares the heap-based merge with a direct
// transcription of run.c's quadratic loop on random text, including bytes
// outside the vocab (byte fallback) and invalid UTF-8.
func TestLlama2CMergeMatchesRunC(t *testing.T) {
	tok := loadLlama2C(t)
	v, err := parseLlama2C(testshared.ReadFile(t, testshared.Path(t, "models", "stories260K", "tok512.bin")), 512)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "e", "t", "h", " ", "o", "n", "s", "d", ".", "\n", "é", "日", "\xff", "\x80", "Once", " upon", " the"}
	for n := 0; n < 300; n++ {
		var b []byte
		for k := rng.IntN(40); k > 0; k-- {
			b = append(b, alphabet[rng.IntN(len(alphabet))]...)
		}
		text := string(b)
		got, err := tok.Encode(text, n%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		want := runCEncode(v, text, n%2 == 0)
		if !slices.Equal(got, want) {
			t.Fatalf("Encode(%q):\n got %v\nwant %v", text, got, want)
		}
	}
}

// runCEncode is the reference for the merge: run.c's quadratic loop,
// started from the same characters as encode.
func runCEncode(v *llama2cVocab, text string, bos bool) []int {
	var ids []int
	if bos {
		ids = append(ids, 1)
	}
	if text != "" {
		ids = append(ids, v.lookup[" "])
	}
	ids = v.appendChars(ids, text)
	for {
		best, bestID, bestIdx := float32(-1e10), -1, -1
		for i := 0; i+1 < len(ids); i++ {
			if id, ok := v.lookup[v.pieces[ids[i]]+v.pieces[ids[i+1]]]; ok && v.scores[id] > best {
				best, bestID, bestIdx = v.scores[id], id, i
			}
		}
		if bestIdx < 0 {
			return ids
		}
		ids[bestIdx] = bestID
		ids = append(ids[:bestIdx+1], ids[bestIdx+2:]...)
	}
}

// TestLlama2CChars: merging starts from one id per character the vocab
// holds and one byte token (byte + 3) per byte of any other. As in run.c,
// a character is any byte followed by at most three continuation bytes,
// so a stray continuation byte joins the character before it.
func TestLlama2CChars(t *testing.T) {
	v := &llama2cVocab{lookup: map[string]int{"a": 10, "é": 11, "日": 12, "😀": 13}}
	for _, tc := range []struct {
		text string
		want []int
	}{
		{"", nil},
		{"aé日😀", []int{10, 11, 12, 13}},
		{"b", []int{'b' + 3}},
		{"ü", []int{0xC3 + 3, 0xBC + 3}},
		{"a\x80a", []int{'a' + 3, 0x80 + 3, 10}},
		{"\xE6\x97a", []int{0xE6 + 3, 0x97 + 3, 10}},
		{"😀\x80", []int{13, 0x80 + 3}},
	} {
		if got := v.appendChars(nil, tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("appendChars(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestFromLlama2CErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		n    int
	}{
		{"empty", nil, 512},
		{"header only", []byte{1, 0, 0, 0}, 512},
		{"truncated token", []byte{1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 'a'}, 1},
		{"negative length", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, 1},
		{"too few tokens", []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a'}, 0},
	}
	for _, tc := range tests {
		if _, err := FromLlama2C(tc.data, tc.n); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
