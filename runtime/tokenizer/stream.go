package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// StreamDecoder turns generated ids into text incrementally. It re-decodes a
// short window of recent ids (one token of left context plus the pending
// ones) so that decoders that look at neighbours, like stripping the first
// space, behave as they do on the whole sequence. Text ending in an
// incomplete character (U+FFFD) is held back, and so is a run of byte
// tokens under a ByteFallback decoder, because a later stray byte can turn
// the whole run into replacement characters. The concatenation of Next's
// results and Flush equals Decode(ids, false): special tokens are kept.
type StreamDecoder struct {
	t           *Tokenizer
	ids         []int
	prefix      string
	prefixIndex int
}

// NewDecoder starts a stream decoder.
func (t *Tokenizer) NewDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Next adds id and returns the text it completes (possibly "").
func (d *StreamDecoder) Next(id int) (string, error) {
	if id < 0 || id >= len(d.t.hasToken) || !d.t.hasToken[id] {
		return "", fmt.Errorf("stream decode: token id %d is not in the vocabulary (size %d)", id, len(d.t.hasToken))
	}
	d.ids = append(d.ids, id)
	if d.t.byteRuns {
		if _, ok := byteToken(d.t.idToToken[id]); ok {
			return "", nil
		}
	}
	s, err := d.t.Decode(d.ids, false)
	if err != nil {
		return "", fmt.Errorf("stream decode: %w", err)
	}
	if len(s) <= len(d.prefix) || strings.HasSuffix(s, "\uFFFD") {
		return "", nil
	}
	// The window's text extends what was already emitted; should a decoder
	// ever rewrite earlier text, emit what follows the common part rather
	// than fail mid-generation.
	out := s[commonPrefixLen(s, d.prefix):]
	newIndex := len(d.ids) - d.prefixIndex
	d.ids = append(d.ids[:0], d.ids[d.prefixIndex:]...)
	if d.prefix, err = d.t.Decode(d.ids, false); err != nil {
		return "", fmt.Errorf("stream decode: %w", err)
	}
	d.prefixIndex = newIndex
	return out, nil
}

// Flush returns the text still held back (such as a trailing incomplete
// character, rendered as U+FFFD) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	s, err := d.t.Decode(d.ids, false)
	out := ""
	if err == nil && len(s) > len(d.prefix) {
		out = s[commonPrefixLen(s, d.prefix):]
	}
	d.ids, d.prefix, d.prefixIndex = d.ids[:0], "", 0
	return out
}

func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	for i > 0 && i < len(a) && !utf8.RuneStart(a[i]) {
		i--
	}
	return i
}
