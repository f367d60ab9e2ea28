package textdata

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func scanAll(t *testing.T, text, sep string) []string {
	t.Helper()
	var docs []string
	// OneByteReader makes every line arrive in pieces, as from a pipe.
	err := ScanDocuments(iotest.OneByteReader(strings.NewReader(text)), sep, func(d string) error {
		docs = append(docs, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func TestScanDocumentsMatchesSplit(t *testing.T) {
	long := strings.Repeat("x", 200_000)
	texts := []string{
		"", "\n", "one", "one\ntwo\n", "a\n<|endoftext|>\nb", "a\r\n<|endoftext|>\r\nb\r\n",
		"  <|endoftext|>  \n\n<|endoftext|>\nlast line without newline",
		long + "\n<|endoftext|>\n" + long, "x<|endoftext|>\n<|endoftext|>y\n",
	}
	for _, text := range texts {
		for _, sep := range []string{DefaultDocSep, ""} {
			got, want := scanAll(t, text, sep), SplitDocuments(text, sep)
			if !slices.Equal(got, want) {
				t.Errorf("text %.40q sep %q: got %d docs, want %d", text, sep, len(got), len(want))
			}
		}
	}
}

func TestScanDocumentsStopsAndBounds(t *testing.T) {
	n := 0
	err := ScanDocuments(strings.NewReader("a\n<|endoftext|>\nb\n<|endoftext|>\nc\n"), DefaultDocSep, func(string) error {
		n++
		return ErrStop
	})
	if err != nil || n != 1 {
		t.Fatalf("stop: err %v after %d docs", err, n)
	}
	// An endless document (a text without separators, /dev/zero-like) is
	// refused at the bound instead of growing without limit.
	big := &repeatReader{b: 'z', n: MaxDocumentBytes + 1<<20}
	if err := ScanDocuments(big, DefaultDocSep, func(string) error { return nil }); err == nil || errors.Is(err, ErrStop) {
		t.Fatalf("oversized document accepted: %v", err)
	}
}

type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("EOF not expected: the scan should stop first")
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = r.b
	}
	r.n -= k
	return k, nil
}
