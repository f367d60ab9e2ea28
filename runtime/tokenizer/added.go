package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedMatcher finds added tokens in text with leftmost-longest semantics
// (the Aho-Corasick MatchKind::LeftmostLongest the library uses), via a byte
// trie walked from every candidate start.
type addedMatcher struct {
	nodes []trieNode
	first [256]bool
	// tokens[k] is the token of pattern k.
	tokens []*addedToken
}

type trieNode struct {
	next    map[byte]int32
	pattern int32 // index into tokens, -1 if no pattern ends here
}

func newAddedMatcher() *addedMatcher {
	return &addedMatcher{nodes: []trieNode{{pattern: -1}}}
}

// add inserts pattern for tok; a later identical pattern replaces an
// earlier one only if none was registered (first wins, like a trie built
// from a deduplicated list).
func (m *addedMatcher) add(pattern string, tok *addedToken) {
	if pattern == "" {
		return
	}
	n := int32(0)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		nx, ok := m.nodes[n].next[c]
		if !ok {
			if m.nodes[n].next == nil {
				m.nodes[n].next = make(map[byte]int32)
			}
			nx = int32(len(m.nodes))
			m.nodes[n].next[c] = nx
			m.nodes = append(m.nodes, trieNode{pattern: -1})
		}
		n = nx
	}
	if m.nodes[n].pattern < 0 {
		m.nodes[n].pattern = int32(len(m.tokens))
		m.tokens = append(m.tokens, tok)
	}
	m.first[pattern[0]] = true
}

func (m *addedMatcher) empty() bool { return len(m.tokens) == 0 }

// longestAt returns the end and token of the longest pattern starting at i.
func (m *addedMatcher) longestAt(s string, i int) (int, *addedToken) {
	n := int32(0)
	end, best := -1, int32(-1)
	for j := i; j < len(s); j++ {
		nx, ok := m.nodes[n].next[s[j]]
		if !ok {
			break
		}
		n = nx
		if p := m.nodes[n].pattern; p >= 0 {
			end, best = j+1, p
		}
	}
	if best < 0 {
		return -1, nil
	}
	return end, m.tokens[best]
}

// segment is a piece of the input: either an added token (id >= 0) or text.
type segment struct {
	s       string
	id      int
	atStart bool
}

// split cuts s into text and added-token segments following
// AddedVocabulary::find_matches (single_word, lstrip and rstrip included).
// Empty text segments are dropped.
func (m *addedMatcher) split(s string, atStart bool, out []segment) []segment {
	if m.empty() {
		if s != "" {
			out = append(out, segment{s: s, id: -1, atStart: atStart})
		}
		return out
	}
	prev := 0
	for i := 0; i < len(s); {
		if !m.first[s[i]] {
			i++
			continue
		}
		end, tok := m.longestAt(s, i)
		if tok == nil {
			i++
			continue
		}
		start, stop := i, end
		i = end // the automaton resumes after a match even if it is discarded
		if tok.SingleWord {
			if (start > 0 && endsWithWord(s[:start])) || (stop < len(s) && startsWithWord(s[stop:])) {
				continue
			}
		}
		if tok.LStrip {
			start = max(trailingSpaceStart(s[:start]), prev)
		}
		if tok.RStrip {
			stop += leadingSpaceLen(s[stop:])
			i = stop
		}
		if prev < start {
			out = append(out, segment{s: s[prev:start], id: -1, atStart: atStart && prev == 0})
		}
		out = append(out, segment{s: s[start:stop], id: tok.ID})
		prev = stop
	}
	if prev < len(s) {
		out = append(out, segment{s: s[prev:], id: -1, atStart: atStart && prev == 0})
	}
	return out
}

// isWordRune approximates Rust regex's Unicode \w.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Nl, r) ||
		unicode.Is(unicode.Pc, r) || r == '\u200c' || r == '\u200d'
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordRune(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordRune(r)
}

func trailingSpaceStart(s string) int {
	i := len(s)
	for i > 0 {
		r, w := utf8.DecodeLastRuneInString(s[:i])
		if !unicode.IsSpace(r) {
			break
		}
		i -= w
	}
	return i
}

func leadingSpaceLen(s string) int {
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += w
	}
	return i
}
