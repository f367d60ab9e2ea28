package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// pieceType is a token's type. SentencePiece's ModelProto and GGUF's
// tokenizer.ggml.token_type use the same numbering.
type pieceType uint8

const (
	typeUndefined   pieceType = 0 // GGUF only
	typeNormal      pieceType = 1
	typeUnknown     pieceType = 2
	typeControl     pieceType = 3
	typeUserDefined pieceType = 4
	typeUnused      pieceType = 5
	typeByte        pieceType = 6
)

// spaceSymbol is SentencePiece's escaped space, U+2581.
const spaceSymbol = "\u2581"

// spmModel is a SentencePiece BPE vocabulary: pieces merged greedily by
// score, as both sentencepiece's bpe_model.cc and llama.cpp's SPM session do.
// The two differ in details, selected by sentencepiece:
//
//   - sentencepiece merges only into NORMAL, USER_DEFINED and UNUSED pieces,
//     keeps USER_DEFINED pieces of the input whole (never merged), splits
//     UNUSED pieces back into the pair they were merged from, and runs
//     unknown pieces through byte fallback or <unk>;
//   - llama.cpp merges into any token and, for a symbol that is no token,
//     emits its bytes as <0xXX> tokens (or single-byte tokens).
type spmModel struct {
	pieces []string
	scores []float32
	types  []pieceType
	lookup map[string]int

	sentencepiece bool
	byteFallback  bool
	unk           int // -1: none
	byteIDs       [256]int
	userDefined   *addedMatcher // sentencepiece: user-defined symbols kept whole; nil if none
	// rankByID orders merges by the id of the merged piece (lowest first)
	// instead of by score, as the merges of a tokenizer.json converted
	// from the same model do.
	rankByID bool
}

// newSPMModel indexes pieces; a piece that appears twice is an error, as in
// both references.
func newSPMModel(pieces []string, scores []float32, types []pieceType, unk int, sentencepiece, byteFallback bool) (*spmModel, error) {
	m := &spmModel{pieces: pieces, scores: scores, types: types, lookup: make(map[string]int, len(pieces)),
		sentencepiece: sentencepiece, byteFallback: byteFallback, unk: unk}
	for i := range m.byteIDs {
		m.byteIDs[i] = -1
	}
	for id, p := range pieces {
		if prev, dup := m.lookup[p]; dup {
			return nil, fmt.Errorf("piece %q appears twice (ids %d and %d)", p, prev, id)
		}
		m.lookup[p] = id
		if types[id] == typeByte {
			if b, ok := byteToken(p); ok {
				m.byteIDs[b] = id
			}
		}
		if sentencepiece && types[id] == typeUserDefined {
			if m.userDefined == nil {
				m.userDefined = newAddedMatcher()
			}
			m.userDefined.add(p, &addedToken{ID: id, Content: p})
		}
	}
	if !sentencepiece {
		// llama.cpp's byte_to_token: <0xXX> whatever its type, else the byte
		// itself as a one-character token.
		for b := range 256 {
			if id, ok := m.lookup[fmt.Sprintf("<0x%02X>", b)]; ok {
				m.byteIDs[b] = id
			} else if id, ok := m.lookup[string([]byte{byte(b)})]; ok {
				m.byteIDs[b] = id
			}
		}
	}
	return m, nil
}

// mergeable reports whether id may be the result of a merge.
func (m *spmModel) mergeable(id int) bool {
	if !m.sentencepiece {
		return true
	}
	switch m.types[id] {
	case typeNormal, typeUserDefined, typeUnused:
		return true
	}
	return false
}

// spmSymbol is a node of the linked list of a text's current pieces: a
// byte range of the text.
type spmSymbol struct {
	start, n   int
	prev, next int
	frozen     bool
}

// symbolPair is a candidate merge of the symbols left and right, size bytes
// together.
type symbolPair struct {
	left, right int
	size        int
}

func (p symbolPair) pair() symbolPair { return p }

// spmPair is a candidate merge on sentencepiece's agenda.
type spmPair struct {
	score float32
	symbolPair
}

// before orders the agenda: higher score first, then leftmost.
func (a spmPair) before(b spmPair) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.left < b.left
}

// mergeAgenda merges greedily, best pair first: a pair whose sides have
// changed since it was offered is stale and skipped (sizes only grow, so
// comparing the joined size detects it); a merged symbol absorbs its right
// neighbour, and its new pairs with both neighbours are offered to try.
func mergeAgenda[T interface{ pair() symbolPair }](syms []spmSymbol, agenda *pairHeap[T], try func(l, r int)) {
	for agenda.len() > 0 {
		p := agenda.pop().pair()
		l, r := &syms[p.left], &syms[p.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != p.size || l.next != p.right {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = p.left
		}
		try(l.prev, p.left)
		try(p.left, l.next)
	}
}

// utf8Len is llama.cpp's character length from the lead byte (continuation
// and invalid bytes count as one; F8..FF as four).
func utf8Len(b byte) int {
	switch {
	case b < 0xC0:
		return 1
	case b < 0xE0:
		return 2
	case b < 0xF0:
		return 3
	}
	return 4
}

// encode appends the ids of text, which is already normalized (spaces
// escaped, dummy prefix added).
func (m *spmModel) encode(text string, out []int) []int {
	if text == "" {
		return out
	}
	syms := make([]spmSymbol, 0, len(text))
	for i := 0; i < len(text); {
		var n int
		frozen := false
		if m.userDefined != nil {
			if l, _ := m.userDefined.longestAt(text, i); l > 0 {
				n, frozen = l, true
			}
		}
		if n == 0 {
			if m.sentencepiece {
				_, n = utf8.DecodeRuneInString(text[i:])
			} else {
				n = min(utf8Len(text[i]), len(text)-i)
			}
		}
		k := len(syms)
		syms = append(syms, spmSymbol{start: i, n: n, prev: k - 1, next: k + 1, frozen: frozen})
		i += n
	}
	syms[len(syms)-1].next = -1

	agenda := pairHeap[spmPair]{before: spmPair.before}
	var revMerge map[string][2]string // sentencepiece: UNUSED pieces split back
	try := func(l, r int) {
		if l < 0 || r < 0 || syms[l].frozen || syms[r].frozen {
			return
		}
		s := text[syms[l].start : syms[l].start+syms[l].n+syms[r].n]
		id, ok := m.lookup[s]
		if !ok || !m.mergeable(id) {
			return
		}
		score := m.scores[id]
		if m.rankByID {
			score = -float32(id)
		}
		agenda.push(spmPair{score: score, symbolPair: symbolPair{left: l, right: r, size: len(s)}})
		if m.sentencepiece && m.types[id] == typeUnused {
			if revMerge == nil {
				revMerge = make(map[string][2]string)
			}
			revMerge[s] = [2]string{text[syms[l].start : syms[l].start+syms[l].n], text[syms[r].start : syms[r].start+syms[r].n]}
		}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	mergeAgenda(syms, &agenda, try)
	for i := 0; i >= 0; i = syms[i].next {
		out = m.emit(text[syms[i].start:syms[i].start+syms[i].n], revMerge, out)
	}
	return out
}

// emit appends the ids of one final symbol.
func (m *spmModel) emit(s string, revMerge map[string][2]string, out []int) []int {
	id, ok := m.lookup[s]
	if ok && m.sentencepiece && m.types[id] == typeUnused {
		if lr, split := revMerge[s]; split {
			out = m.emit(lr[0], revMerge, out)
			return m.emit(lr[1], revMerge, out)
		}
	}
	if ok {
		return append(out, id)
	}
	if m.sentencepiece && !m.byteFallback {
		return append(out, m.unk)
	}
	for i := 0; i < len(s); i++ {
		id := m.byteIDs[s[i]]
		if id < 0 {
			id = m.unk
		}
		if id >= 0 {
			out = append(out, id)
		}
	}
	return out
}

// escapeSpaces replaces ' ' with U+2581.
func escapeSpaces(s string) string {
	return strings.ReplaceAll(s, " ", spaceSymbol)
}

// pairHeap is a binary heap ordered by before.
type pairHeap[T any] struct {
	h      []T
	before func(a, b T) bool
}

func (q *pairHeap[T]) len() int { return len(q.h) }

func (q *pairHeap[T]) push(e T) {
	q.h = append(q.h, e)
	for i := len(q.h) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.before(q.h[i], q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *pairHeap[T]) pop() T {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h = q.h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.before(q.h[l], q.h[m]) {
			m = l
		}
		if r < last && q.before(q.h[r], q.h[m]) {
			m = r
		}
		if m == i {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}
