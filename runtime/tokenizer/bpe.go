package tokenizer

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpeModel is the tokenizers library's BPE model.
type bpeModel struct {
	vocab  map[string]int
	merges map[uint64]mergeInfo // key: left id << 32 | right id
	unkID  int                  // -1 when there is no unk token
	// unkMissing is set when unk_token names a token absent from the vocab,
	// which is only an error once an unknown character needs it.
	unkMissing   string
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix
	byteIDs      [256]int

	cacheMu sync.Mutex
	cache   map[string][]int
}

type mergeInfo struct {
	rank  int32
	newID int32
}

const (
	maxCachedWord = 256
	maxCacheSize  = 1 << 16
)

type hfModel struct {
	Type                    string            `json:"type"`
	Vocab                   map[string]int    `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	UnkToken                *string           `json:"unk_token"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	FuseUnk                 bool              `json:"fuse_unk"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
}

func parseBPE(raw json.RawMessage) (*bpeModel, error) {
	var hm hfModel
	if err := json.Unmarshal(raw, &hm); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if hm.Type != "BPE" && !(hm.Type == "" && hm.Merges != nil) {
		return nil, fmt.Errorf("unsupported model type %q (only BPE)", hm.Type)
	}
	m := &bpeModel{
		vocab:        hm.Vocab,
		merges:       make(map[uint64]mergeInfo, len(hm.Merges)),
		unkID:        -1,
		fuseUnk:      hm.FuseUnk,
		byteFallback: hm.ByteFallback,
		ignoreMerges: hm.IgnoreMerges,
		cache:        make(map[string][]int),
	}
	if m.vocab == nil {
		m.vocab = map[string]int{}
	}
	for tok, id := range m.vocab {
		if id < 0 || id > maxTokenID {
			return nil, fmt.Errorf("model vocab: token %q has id %d out of range", tok, id)
		}
	}
	if hm.ContinuingSubwordPrefix != nil {
		m.prefix = *hm.ContinuingSubwordPrefix
	}
	if hm.EndOfWordSuffix != nil {
		m.suffix = *hm.EndOfWordSuffix
	}
	if hm.UnkToken != nil {
		if id, ok := m.vocab[*hm.UnkToken]; ok {
			m.unkID = id
		} else {
			m.unkMissing = *hm.UnkToken
		}
	}
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
	}
	for rank, rm := range hm.Merges {
		a, b, err := parseMerge(rm)
		if err != nil {
			return nil, fmt.Errorf("model merges[%d]: %w", rank, err)
		}
		aID, ok := m.vocab[a]
		if !ok {
			return nil, fmt.Errorf("model merges[%d]: token %q is not in the vocab", rank, a)
		}
		bID, ok := m.vocab[b]
		if !ok {
			return nil, fmt.Errorf("model merges[%d]: token %q is not in the vocab", rank, b)
		}
		// The right part loses its continuing-subword prefix when merged.
		merged := a + strings.TrimPrefix(b, m.prefix)
		newID, ok := m.vocab[merged]
		if !ok {
			return nil, fmt.Errorf("model merges[%d]: merged token %q is not in the vocab", rank, merged)
		}
		// A repeated pair keeps its last rank, as the library's map does.
		m.merges[uint64(aID)<<32|uint64(bID)] = mergeInfo{rank: int32(rank), newID: int32(newID)}
	}
	return m, nil
}

// parseMerge accepts "a b" or ["a", "b"].
func parseMerge(raw json.RawMessage) (string, string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		parts := strings.Split(s, " ")
		if len(parts) != 2 {
			return "", "", fmt.Errorf("merge %q is not two space-separated tokens", s)
		}
		return parts[0], parts[1], nil
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil {
		return "", "", fmt.Errorf("merge is neither a string nor a pair of strings: %w", err)
	}
	if len(pair) != 2 {
		return "", "", fmt.Errorf("merge has %d parts, want 2", len(pair))
	}
	return pair[0], pair[1], nil
}

// tokenize appends the ids of one pre-tokenized word.
func (m *bpeModel) tokenize(word string, out []int) ([]int, error) {
	if word == "" {
		return out, nil
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(out, id), nil
		}
	}
	cacheable := len(word) <= maxCachedWord
	if cacheable {
		m.cacheMu.Lock()
		ids, ok := m.cache[word]
		m.cacheMu.Unlock()
		if ok {
			return append(out, ids...), nil
		}
	}
	syms, err := m.initialSymbols(word)
	if err != nil {
		return out, err
	}
	syms = m.mergeAll(syms)
	start := len(out)
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		out = append(out, syms[i].id)
	}
	if cacheable {
		ids := append([]int(nil), out[start:]...)
		m.cacheMu.Lock()
		if len(m.cache) >= maxCacheSize {
			clear(m.cache)
		}
		m.cache[word] = ids
		m.cacheMu.Unlock()
	}
	return out, nil
}

// symbol is a node of the doubly linked list of a word's current tokens.
type symbol struct {
	id         int
	prev, next int
	removed    bool
}

// initialSymbols maps each character to its token, with byte fallback and
// unknown-token handling as BPE::merge_word does.
func (m *bpeModel) initialSymbols(w string) ([]symbol, error) {
	syms := make([]symbol, 0, len(w))
	add := func(id int) {
		n := len(syms)
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1})
	}
	unkPending := false
	var buf []byte
	for i := 0; i < len(w); {
		_, size := utf8.DecodeRuneInString(w[i:])
		end := i + size
		s := w[i:end]
		if i > 0 && m.prefix != "" || end == len(w) && m.suffix != "" {
			buf = buf[:0]
			if i > 0 {
				buf = append(buf, m.prefix...)
			}
			buf = append(buf, s...)
			if end == len(w) {
				buf = append(buf, m.suffix...)
			}
			s = string(buf)
		}
		i = end
		if id, ok := m.vocab[s]; ok {
			if unkPending {
				add(m.unkID)
				unkPending = false
			}
			add(id)
			continue
		}
		if m.byteFallback {
			all := true
			for k := 0; k < len(s); k++ {
				if m.byteIDs[s[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				// The library adds these without flushing a pending unk first.
				for k := 0; k < len(s); k++ {
					add(m.byteIDs[s[k]])
				}
				continue
			}
		}
		if m.unkMissing != "" {
			return nil, fmt.Errorf("unk_token %q is not in the vocab", m.unkMissing)
		}
		if m.unkID < 0 {
			continue // no unk token: the character is dropped
		}
		if unkPending && !m.fuseUnk {
			add(m.unkID)
		}
		unkPending = true
	}
	if unkPending {
		add(m.unkID)
	}
	if n := len(syms); n > 0 {
		syms[n-1].next = -1
	}
	return syms, nil
}

// mergeEntry is a candidate merge of the symbol at pos with its successor.
type mergeEntry struct {
	rank  int32
	pos   int32
	newID int32
}

// less orders merges by (rank, pos), lowest first.
func (a mergeEntry) less(b mergeEntry) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.pos < b.pos
}

// mergeAll applies merges lowest rank first (leftmost among equals),
// skipping stale queue entries, as Word::merge_all does; O(n log n).
func (m *bpeModel) mergeAll(syms []symbol) []symbol {
	if len(syms) < 2 || len(m.merges) == 0 {
		return syms
	}
	h := make(entryHeap[mergeEntry], 0, len(syms))
	hp := &h
	for i := 0; i+1 < len(syms); i++ {
		if mi, ok := m.merges[uint64(syms[i].id)<<32|uint64(syms[i+1].id)]; ok {
			h = append(h, mergeEntry{rank: mi.rank, pos: int32(i), newID: mi.newID})
		}
	}
	heap.Init(hp)
	for len(h) > 0 {
		top := heap.Pop(hp).(mergeEntry)
		cur := &syms[top.pos]
		if cur.removed || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		mi, ok := m.merges[uint64(cur.id)<<32|uint64(right.id)]
		if !ok || mi.newID != top.newID {
			continue
		}
		cur.id = int(top.newID)
		syms[cur.next].removed = true
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = int(top.pos)
		}
		if cur.prev >= 0 {
			if mi, ok := m.merges[uint64(syms[cur.prev].id)<<32|uint64(cur.id)]; ok {
				heap.Push(hp, mergeEntry{rank: mi.rank, pos: int32(cur.prev), newID: mi.newID})
			}
		}
		if cur.next >= 0 {
			if mi, ok := m.merges[uint64(cur.id)<<32|uint64(syms[cur.next].id)]; ok {
				heap.Push(hp, mergeEntry{rank: mi.rank, pos: top.pos, newID: mi.newID})
			}
		}
	}
	return syms
}
