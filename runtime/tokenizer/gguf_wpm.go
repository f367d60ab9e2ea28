package tokenizer

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// ggufWPM is llama.cpp's WordPiece session for "bert" vocabularies, whose
// word-initial tokens carry a U+2581 prefix (llama.cpp's converter turns
// BERT's "##" continuation marks around that way): the text is normalized
// and split into words, and each word, prefixed with U+2581, is cut
// greedily into the longest tokens; a word that cannot be cut becomes
// [UNK].
type ggufWPM struct {
	lookup                  map[string]int
	maxLen                  int
	unk                     int
	lowercase, stripAccents bool
}

func newGGUFWPM(v *GGUFVocab, lookup map[string]int) *ggufWPM {
	w := &ggufWPM{lookup: lookup, unk: v.UNK, lowercase: v.Lowercase, stripAccents: v.StripAccents}
	for _, t := range v.Tokens {
		w.maxLen = max(w.maxLen, len(t))
	}
	return w
}

// isCJK is the CJK ideograph ranges of BERT's basic tokenizer (with the
// upper end of extension E as the Hugging Face code has it).
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF || r >= 0x20000 && r <= 0x2A6DF ||
		r >= 0x2A700 && r <= 0x2B73F || r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B920 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

// words splits text as BERT's basic tokenizer does: whitespace separates
// words; NUL, U+FFFD, control characters and (with strip_accents, after
// NFD) combining marks are dropped; punctuation, ASCII symbols and CJK
// ideographs are words of their own.
func (w *ggufWPM) words(text string) []string {
	if w.stripAccents {
		text = norm.NFD.String(text)
	}
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range text {
		switch {
		case unicode.IsSpace(r):
			flush()
			continue
		case r == 0 || r == 0xFFFD || unicode.In(r, unicode.C):
			continue
		case w.stripAccents && unicode.In(r, unicode.M):
			continue
		}
		if w.lowercase {
			r = unicode.ToLower(r)
		}
		if unicode.IsPunct(r) || r < 0x7F && unicode.IsSymbol(r) || isCJK(r) {
			flush()
			words = append(words, string(r))
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return words
}

func (w *ggufWPM) encode(text string, out []int) []int {
	for _, word := range w.words(text) {
		s := spaceSymbol + word
		start := len(out)
		for i := 0; i < len(s); {
			matched := false
			for j := min(len(s), i+w.maxLen+1); j > i; j-- {
				if id, ok := w.lookup[s[i:j]]; ok {
					out = append(out, id)
					i, matched = j, true
					break
				}
			}
			if !matched {
				out = out[:start] // discard the word's partial tokens
				break
			}
		}
		if len(out) == start && w.unk >= 0 {
			out = append(out, w.unk)
		}
	}
	return out
}
