package textdata

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// DefaultDocSep is the separator line between documents in the corpora we
// ship with (TinyStories).
const DefaultDocSep = "<|endoftext|>"

// SplitDocuments cuts text at lines that equal sep (after trimming spaces)
// and trims each document; empty documents are dropped. An empty sep keeps
// the whole text as one document.
func SplitDocuments(text, sep string) []string {
	if sep == "" {
		if d := strings.TrimSpace(text); d != "" {
			return []string{d}
		}
		return nil
	}
	var docs []string
	var cur strings.Builder
	flush := func() {
		if d := strings.TrimSpace(cur.String()); d != "" {
			docs = append(docs, d)
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == sep {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// DocRange is a 1-based inclusive range of documents; Last = 0 means "to the
// end". The zero value selects every document.
type DocRange struct {
	First, Last int
}

// ParseDocRange reads "A-B", "A-" (A to the end) or "A" (that document
// alone), 1-based and inclusive, as users count stories.
func ParseDocRange(s string) (DocRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DocRange{}, nil
	}
	a, b, hasDash := strings.Cut(s, "-")
	first, err := strconv.Atoi(strings.TrimSpace(a))
	if err != nil || first < 1 {
		return DocRange{}, fmt.Errorf("document range %q: want A-B with 1 ≤ A ≤ B (1-based, inclusive)", s)
	}
	if !hasDash {
		return DocRange{First: first, Last: first}, nil
	}
	if strings.TrimSpace(b) == "" {
		return DocRange{First: first}, nil
	}
	last, err := strconv.Atoi(strings.TrimSpace(b))
	if err != nil || last < first {
		return DocRange{}, fmt.Errorf("document range %q: want A-B with 1 ≤ A ≤ B (1-based, inclusive)", s)
	}
	return DocRange{First: first, Last: last}, nil
}

// String prints the range the way ParseDocRange reads it.
func (r DocRange) String() string {
	switch {
	case r.First == 0 && r.Last == 0:
		return "all"
	case r.Last == 0:
		return fmt.Sprintf("%d-", r.First)
	}
	return fmt.Sprintf("%d-%d", max(r.First, 1), r.Last)
}

// Select returns the documents of the range. It fails when the range starts
// past the last document; a range ending past it is cut at the end.
func (r DocRange) Select(docs []string) ([]string, error) {
	first := max(r.First, 1)
	if first > len(docs) {
		return nil, fmt.Errorf("document range %s starts past the %d documents of the text", r, len(docs))
	}
	last := len(docs)
	if r.Last > 0 {
		last = min(r.Last, len(docs))
	}
	return docs[first-1 : last], nil
}

// Encoder is the part of a tokenizer that framing needs.
type Encoder interface {
	Encode(text string, addSpecial bool) ([]int, error)
	EOS() int
}

// Frame tokenizes every document the way its tokenizer's configuration
// frames a sequence (its post-processor: BOS for the Llama family) and ends
// each with EOS when the tokenizer has one, then concatenates them into one
// stream. This is how ../shared's reference eval.ids were made.
func Frame(tok Encoder, docs []string) ([]int, error) {
	ids, _, err := FrameLimit(tok, docs, 0)
	return ids, err
}

// FrameLimit is Frame that stops after the document which brings the stream
// to limit tokens (limit ≤ 0: no limit) and reports how many documents it
// used. The stream is not cut, so it may exceed limit by part of a document.
func FrameLimit(tok Encoder, docs []string, limit int) (ids []int, used int, err error) {
	for i, d := range docs {
		if limit > 0 && len(ids) >= limit {
			break
		}
		di, err := tok.Encode(d, true)
		if err != nil {
			return nil, 0, fmt.Errorf("document %d: %w", i+1, err)
		}
		ids = append(ids, di...)
		if e := tok.EOS(); e >= 0 {
			ids = append(ids, e)
		}
		used = i + 1
	}
	return ids, used, nil
}
