package tokenizer

import (
	"fmt"
	"strings"
)

// ggufBPE is llama.cpp's byte-level BPE session: the text is split into
// words by the pre-tokenizer's rule, each word is mapped to GPT-2's
// byte-level characters, and adjacent symbols are merged by merge rank.
type ggufBPE struct {
	lookup       map[string]int
	ranks        map[[2]string]int
	split        func(s string, emit func(word string))
	ignoreMerges bool
}

func newGGUFBPE(v *GGUFVocab, lookup map[string]int) (*ggufBPE, error) {
	ps, ok := ggufPreTokenizers[v.Pre]
	if !ok {
		return nil, fmt.Errorf("pre-tokenizer %q is not supported", v.Pre)
	}
	b := &ggufBPE{lookup: lookup, ranks: make(map[[2]string]int, len(v.Merges)), ignoreMerges: ps.ignoreMerges}
	for i, m := range v.Merges {
		// llama.cpp splits at the first space after the first byte; a merge
		// without one becomes the pair ("", "") and never applies.
		var pair [2]string
		if len(m) > 1 {
			if k := strings.IndexByte(m[1:], ' '); k >= 0 {
				pair = [2]string{m[:k+1], m[k+2:]}
			}
		}
		if _, dup := b.ranks[pair]; !dup { // the first rank wins, as emplace does
			b.ranks[pair] = i
		}
	}
	scan := func(next func(string, int) int) func(string, func(string)) {
		return func(s string, emit func(string)) {
			scanSplit(s, next, func(i, j int) { emit(s[i:j]) })
		}
	}
	switch ps.rule {
	case "gpt2":
		b.split = scan(nextGPT2)
	case "llama3":
		b.split = scan(func(s string, i int) int { return nextLlama3(s, i, 3) })
	case "qwen2":
		b.split = scan(func(s string, i int) int { return nextLlama3(s, i, 1) })
	case "digits+gpt2":
		// Every digit is a word of its own; the runs between are split by
		// the GPT-2 rule.
		gpt2 := scan(nextGPT2)
		b.split = func(s string, emit func(string)) {
			start := 0
			for i := 0; i < len(s); {
				r, w := runeAt(s, i)
				if classify(r) == classNumber {
					if start < i {
						gpt2(s[start:i], emit)
					}
					emit(s[i : i+w])
					start = i + w
				}
				i += w
			}
			if start < len(s) {
				gpt2(s[start:], emit)
			}
		}
	default:
		return nil, fmt.Errorf("pre-tokenizer %q has no split rule", v.Pre)
	}
	return b, nil
}

// bpePair is a candidate merge on the byte-level BPE agenda.
type bpePair struct {
	rank int
	symbolPair
}

// before orders the agenda: lowest rank first, then leftmost.
func (a bpePair) before(b bpePair) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.left < b.left
}

func (b *ggufBPE) encode(text string, out []int) []int {
	b.split(text, func(word string) {
		out = b.encodeWord(byteLevelChars(word), out)
	})
	return out
}

// encodeWord merges one byte-level word. Symbols start as single
// characters; the lowest-ranked adjacent pair merges first (leftmost on
// ties), and a final symbol that is no token falls back to its single-byte
// tokens, skipping bytes that have none (as llama.cpp does).
func (b *ggufBPE) encodeWord(w string, out []int) []int {
	if w == "" {
		return out
	}
	if b.ignoreMerges {
		if id, ok := b.lookup[w]; ok {
			return append(out, id)
		}
	}
	syms := make([]spmSymbol, 0, len(w))
	for i := 0; i < len(w); {
		n := min(utf8Len(w[i]), len(w)-i)
		k := len(syms)
		syms = append(syms, spmSymbol{start: i, n: n, prev: k - 1, next: k + 1})
		i += n
	}
	syms[len(syms)-1].next = -1
	text := func(i int) string { return w[syms[i].start : syms[i].start+syms[i].n] }
	agenda := pairHeap[bpePair]{before: bpePair.before}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		rank, ok := b.ranks[[2]string{text(l), text(r)}]
		if !ok {
			return
		}
		agenda.push(bpePair{rank: rank, symbolPair: symbolPair{left: l, right: r, size: syms[l].n + syms[r].n}})
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	mergeAgenda(syms, &agenda, try)
	for i := 0; i >= 0; i = syms[i].next {
		s := text(i)
		if id, ok := b.lookup[s]; ok {
			out = append(out, id)
			continue
		}
		for k := 0; k < len(s); k++ {
			if id, ok := b.lookup[s[k:k+1]]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}
