package testshared

import (
	"encoding/json"
	"slices"
	"testing"
)

// Stories260KPrompts reads the stories260K prompt texts (hf/prompts.json)
// and the ids the model's Hugging Face export gives each of them, with
// special tokens (the prompts of hf/reference.json). It skips tb (fails it
// under CI) when the files are absent.
func Stories260KPrompts(tb testing.TB) (texts []string, ids [][]int) {
	tb.Helper()
	var ref struct {
		Prompts []struct {
			IDs []int `json:"ids"`
		} `json:"prompts"`
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"prompts.json", &texts}, {"reference.json", &ref}} {
		p := Path(tb, "models", "stories260K", "hf", f.name)
		if err := json.Unmarshal(ReadFile(tb, p), f.v); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
	}
	if len(texts) != len(ref.Prompts) || len(texts) == 0 {
		tb.Fatalf("stories260K: %d prompt texts for %d reference prompts", len(texts), len(ref.Prompts))
	}
	ids = make([][]int, len(texts))
	for i, p := range ref.Prompts {
		ids[i] = p.IDs
	}
	return texts, ids
}

// CheckStories260KPrompts encodes every stories260K prompt (special tokens
// added) with encode and fails tb, without stopping it, where the ids
// differ from the Hugging Face export's. It returns the prompts and those
// reference ids.
func CheckStories260KPrompts(tb testing.TB, encode func(text string, special bool) ([]int, error)) (texts []string, ids [][]int) {
	tb.Helper()
	texts, ids = Stories260KPrompts(tb)
	for i, text := range texts {
		got, err := encode(text, true)
		if err != nil {
			tb.Fatalf("prompt %d %q: %v", i, text, err)
		}
		if !slices.Equal(got, ids[i]) {
			tb.Errorf("prompt %d %q:\n got %v\nwant %v", i, text, got, ids[i])
		}
	}
	return texts, ids
}
