package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
)

type hfCase struct {
	Text           string   `json:"text"`
	IDs            []int    `json:"ids"`
	IDsWithSpecial []int    `json:"ids_with_special"`
	Tokens         []string `json:"tokens"`
	Decoded        string   `json:"decoded"`
}

// caseFolders are the folders of ../shared/tokenizers with cases.json.
var caseFolders = []string{"gpt2", "llama2", "llama3-style-4096", "bytelevel-bpe-4096", "llama-bpe-4096"}

// tokenizer files are large (gpt2, llama2); parse each once per test binary.
var (
	loadMu sync.Mutex
	loaded = map[string]*Tokenizer{}
)

func loadHF(tb testing.TB, rel ...string) *Tokenizer {
	tb.Helper()
	dir := testshared.Path(tb, rel...)
	loadMu.Lock()
	defer loadMu.Unlock()
	if t, ok := loaded[dir]; ok {
		return t
	}
	tj := testshared.ReadFile(tb, filepath.Join(dir, "tokenizer.json"))
	cfg := readOptional(tb, filepath.Join(dir, "tokenizer_config.json"))
	stm := readOptional(tb, filepath.Join(dir, "special_tokens_map.json"))
	t, err := FromHF(tj, cfg, stm)
	if err != nil {
		tb.Fatalf("FromHF(%s): %v", dir, err)
	}
	loaded[dir] = t
	return t
}

func readOptional(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func loadCases(tb testing.TB, folder string) []hfCase {
	tb.Helper()
	var cases []hfCase
	if err := json.Unmarshal(testshared.ReadFile(tb, testshared.Path(tb, "tokenizers", folder, "cases.json")), &cases); err != nil {
		tb.Fatalf("%s/cases.json: %v", folder, err)
	}
	if len(cases) == 0 {
		tb.Fatalf("%s/cases.json has no cases", folder)
	}
	return cases
}

// streamDecode feeds ids one at a time and concatenates the output.
func streamDecode(t *Tokenizer, ids []int) (string, error) {
	d := t.NewDecoder()
	var b strings.Builder
	for _, id := range ids {
		s, err := d.Next(id)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	b.WriteString(d.Flush())
	return b.String(), nil
}

// TestHFCases checks every case of every cases.json against the ids, ids
// with special tokens, and decoded text the tokenizers library produced,
// plus stream decoding against Decode.
func TestHFCases(t *testing.T) {
	for _, folder := range caseFolders {
		t.Run(folder, func(t *testing.T) {
			tok := loadHF(t, "tokenizers", folder)
			cases := loadCases(t, folder)
			var n caseTally
			okStream := 0
			for i, c := range cases {
				dec, ok := n.check(t, tok, i, c)
				if !ok {
					continue
				}
				st, err := streamDecode(tok, c.IDs)
				if err != nil {
					t.Errorf("case %d: stream decode: %v", i, err)
				} else if st == dec {
					okStream++
				} else {
					t.Errorf("case %d: stream decode\n got %q\nwant %q", i, clip(st), clip(dec))
				}
			}
			t.Logf("%s: %d cases: ids %d, ids_with_special %d, decoded %d, stream %d match",
				folder, len(cases), n.ids, n.special, n.decoded, okStream)
		})
	}
}

// caseTally counts the cases whose ids, ids with special tokens and decoded
// text match the reference.
type caseTally struct{ ids, special, decoded int }

// check encodes case i without and with special tokens and decodes its ids,
// reporting every mismatch with the reference. It returns the decoded text
// ("" if Decode failed), or ok=false when Encode failed and there is
// nothing more to compare.
func (n *caseTally) check(t *testing.T, tok *Tokenizer, i int, c hfCase) (dec string, ok bool) {
	t.Helper()
	ids, err := tok.Encode(c.Text, false)
	if err != nil {
		t.Errorf("case %d %q: Encode: %v", i, clip(c.Text), err)
		return "", false
	}
	if slices.Equal(ids, c.IDs) {
		n.ids++
	} else {
		t.Errorf("case %d %q: ids\n got %v\nwant %v", i, clip(c.Text), ids, c.IDs)
	}
	ws, err := tok.Encode(c.Text, true)
	if err != nil {
		t.Errorf("case %d: Encode(special): %v", i, err)
	} else if slices.Equal(ws, c.IDsWithSpecial) {
		n.special++
	} else {
		t.Errorf("case %d %q: ids_with_special\n got %v\nwant %v", i, clip(c.Text), ws, c.IDsWithSpecial)
	}
	dec, err = tok.Decode(c.IDs, false)
	if err != nil {
		t.Errorf("case %d: Decode: %v", i, err)
	} else if dec == c.Decoded {
		n.decoded++
	} else {
		t.Errorf("case %d: decoded\n got %q\nwant %q", i, clip(dec), clip(c.Decoded))
	}
	return dec, true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

type reference struct {
	Prompts []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"prompts"`
}

// TestModelPrompts encodes every prompt of every model's reference.json
// (with special tokens, as the model's prompts were made) with the model's
// own tokenizer files.
func TestModelPrompts(t *testing.T) {
	for _, model := range []string{"gpt2-stories-4m", "llama-stories-12m", "llama-stories-tiny", "tinystories-656k"} {
		t.Run(model, func(t *testing.T) {
			tok := loadHF(t, "models", model)
			var ref reference
			if err := json.Unmarshal(testshared.ReadFile(t, testshared.Path(t, "models", model, "reference.json")), &ref); err != nil {
				t.Fatal(err)
			}
			if len(ref.Prompts) == 0 {
				t.Fatal("no prompts")
			}
			for i, p := range ref.Prompts {
				ids, err := tok.Encode(p.Text, true)
				if err != nil {
					t.Fatalf("prompt %d: %v", i, err)
				}
				if !slices.Equal(ids, p.IDs) {
					t.Errorf("prompt %d %q:\n got %v\nwant %v", i, p.Text, ids, p.IDs)
				}
				dec, err := tok.Decode(p.IDs, true)
				if err != nil {
					t.Fatalf("prompt %d: decode: %v", i, err)
				}
				if dec != p.Text {
					t.Errorf("prompt %d: decode(skip special) = %q, want %q", i, dec, p.Text)
				}
			}
		})
	}
}

// TestModelSpecialTokens checks BOS/EOS resolution from the config files.
func TestModelSpecialTokens(t *testing.T) {
	tests := []struct {
		rel      []string
		bos, eos int
		vocab    int
	}{
		{[]string{"models", "gpt2-stories-4m"}, 0, 0, 4096},
		{[]string{"models", "llama-stories-12m"}, 1, 2, 4096},
		{[]string{"models", "tinystories-656k"}, 1, 2, 2048},
		{[]string{"tokenizers", "gpt2"}, 50256, 50256, 50257},
		{[]string{"tokenizers", "llama2"}, 1, 2, 32000},
		{[]string{"tokenizers", "llama3-style-4096"}, 0, 1, 4096},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.rel, "/"), func(t *testing.T) {
			tok := loadHF(t, tc.rel...)
			if tok.BOS() != tc.bos || tok.EOS() != tc.eos || tok.VocabSize() != tc.vocab {
				t.Errorf("BOS %d EOS %d vocab %d, want %d %d %d", tok.BOS(), tok.EOS(), tok.VocabSize(), tc.bos, tc.eos, tc.vocab)
			}
			if id, ok := tok.TokenID(tok.Token(tc.bos)); !ok || id != tc.bos {
				t.Errorf("TokenID(Token(%d)) = %d, %v", tc.bos, id, ok)
			}
		})
	}
}

// TestGGUFGPT2Vectors runs llama.cpp's GPT-2 test vectors, which agree with
// the tokenizers library.
func TestGGUFGPT2Vectors(t *testing.T) {
	tok := loadHF(t, "tokenizers", "gpt2")
	inputs, wants := testshared.LlamaCppVectors(t, "ggml-vocab-gpt-2.gguf")
	for i, in := range inputs {
		ids, err := tok.Encode(in, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, wants[i]) {
			t.Errorf("input %d %q:\n got %v\nwant %v", i, clip(in), ids, wants[i])
		}
	}
	t.Logf("%d llama.cpp GPT-2 vectors", len(inputs))
}
