package textdata

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSplitDocuments(t *testing.T) {
	tests := []struct {
		text, sep string
		want      []string
	}{
		{"a\nb\n<|endoftext|>\nc\n", DefaultDocSep, []string{"a\nb", "c"}},
		{"<|endoftext|>\n  <|endoftext|>  \nx", DefaultDocSep, []string{"x"}},
		{"a <|endoftext|> b\n", DefaultDocSep, []string{"a <|endoftext|> b"}},
		{"  whole  \n", "", []string{"whole"}},
		{"\n\n", "", nil},
	}
	for _, tt := range tests {
		if got := SplitDocuments(tt.text, tt.sep); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitDocuments(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestDocRange(t *testing.T) {
	docs := []string{"1", "2", "3", "4", "5"}
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", docs, ""},
		{"2-3", []string{"2", "3"}, ""},
		{"4-", []string{"4", "5"}, ""},
		{"3", []string{"3"}, ""},
		{"4-100", []string{"4", "5"}, ""},
		{"6-7", nil, "starts past"},
		{"0-3", nil, "want A-B"},
		{"3-2", nil, "want A-B"},
		{"x-2", nil, "want A-B"},
		{"2-y", nil, "want A-B"},
	}
	for _, tt := range tests {
		r, err := ParseDocRange(tt.in)
		var got []string
		if err == nil {
			got, err = r.Select(docs)
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if tt.in != "" {
			back, err := ParseDocRange(r.String())
			if err != nil || back != r {
				t.Errorf("%q: String %q reads back as %+v, %v", tt.in, r.String(), back, err)
			}
		}
	}
}

// wordTok encodes each word as its length, with BOS 100 and EOS eos.
type wordTok struct{ eos int }

func (w wordTok) Encode(text string, addSpecial bool) ([]int, error) {
	if strings.Contains(text, "!") {
		return nil, fmt.Errorf("bad text")
	}
	var ids []int
	if addSpecial {
		ids = append(ids, 100)
	}
	for _, f := range strings.Fields(text) {
		ids = append(ids, len(f))
	}
	return ids, nil
}
func (w wordTok) EOS() int { return w.eos }

func TestFrame(t *testing.T) {
	docs := []string{"a bb", "ccc", "dd e"}
	tests := []struct {
		eos, limit int
		want       []int
		used       int
	}{
		{7, 0, []int{100, 1, 2, 7, 100, 3, 7, 100, 2, 1, 7}, 3},
		{-1, 0, []int{100, 1, 2, 100, 3, 100, 2, 1}, 3},
		{7, 4, []int{100, 1, 2, 7}, 1},
		{7, 5, []int{100, 1, 2, 7, 100, 3, 7}, 2},
		{7, 100, []int{100, 1, 2, 7, 100, 3, 7, 100, 2, 1, 7}, 3},
	}
	for _, tt := range tests {
		got, used, err := FrameLimit(wordTok{tt.eos}, docs, tt.limit)
		if err != nil || !reflect.DeepEqual(got, tt.want) || used != tt.used {
			t.Errorf("eos %d limit %d: %v (%d docs), %v; want %v (%d)", tt.eos, tt.limit, got, used, err, tt.want, tt.used)
		}
		if tt.limit == 0 {
			all, err := Frame(wordTok{tt.eos}, docs)
			if err != nil || !reflect.DeepEqual(all, tt.want) {
				t.Errorf("Frame: %v, %v", all, err)
			}
		}
	}
	if _, err := Frame(wordTok{7}, []string{"ok", "bad!"}); err == nil || !strings.Contains(err.Error(), "document 2") {
		t.Errorf("tokenizer error not reported with its document: %v", err)
	}
}
