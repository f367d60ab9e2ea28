package tokenizer

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// llama2cVocab is a llama2.c tokenizer.bin: token strings (with real spaces
// where SentencePiece has U+2581) and their merge scores.
type llama2cVocab struct {
	pieces []string
	scores []float32
	lookup map[string]int // lowest id per string
}

// FromLlama2C reads a llama2.c tokenizer.bin (int32 max_token_length, then
// per token float32 score, int32 length, bytes) holding vocabSize tokens
// (vocabSize <= 0 reads to the end). Encoding follows llama2.c's run.c;
// decoding follows the Hugging Face Llama decoder (byte tokens joined into
// UTF-8, one leading space stripped). BOS is 1 and EOS is 2.
func FromLlama2C(tokenizerBin []byte, vocabSize int) (*Tokenizer, error) {
	v, err := parseLlama2C(tokenizerBin, vocabSize)
	if err != nil {
		return nil, err
	}
	n := len(v.pieces)
	t := &Tokenizer{
		idToToken: make([]string, n),
		hasToken:  make([]bool, n),
		special:   make([]bool, n),
		tokenToID: make(map[string]int, n),
		bos:       1,
		eos:       2,
		byteRuns:  true,
		decode: func(toks []string) []string {
			return stripDecoder(' ', 1, 0)([]string{strings.Join(decodeByteFallback(toks), "")})
		},
	}
	// llama2.c's exporter writes BOS/EOS as "\n<s>\n" and "\n</s>\n"; name
	// them as the SentencePiece vocab does.
	for id := n - 1; id >= 0; id-- {
		s := v.pieces[id]
		if id < 3 {
			s = strings.TrimSpace(s)
			t.special[id] = true
		}
		t.idToToken[id], t.hasToken[id] = s, true
		t.tokenToID[s] = id
	}
	t.encode = v.encode
	return t, nil
}

func parseLlama2C(data []byte, vocabSize int) (*llama2cVocab, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("tokenizer.bin: %d bytes, too short for a header", len(data))
	}
	if vocabSize > maxTokenID {
		return nil, fmt.Errorf("tokenizer.bin: vocab size %d too large", vocabSize)
	}
	v := &llama2cVocab{lookup: make(map[string]int)}
	off := 4
	for i := 0; vocabSize <= 0 || i < vocabSize; i++ {
		if vocabSize <= 0 && off == len(data) {
			break
		}
		if off+8 > len(data) {
			return nil, fmt.Errorf("tokenizer.bin: truncated at token %d (offset %d)", i, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || off+n > len(data) {
			return nil, fmt.Errorf("tokenizer.bin: token %d has bad length %d at offset %d", i, n, off-4)
		}
		s := string(data[off : off+n])
		off += n
		if _, dup := v.lookup[s]; !dup {
			v.lookup[s] = i
		}
		v.pieces = append(v.pieces, s)
		v.scores = append(v.scores, score)
	}
	if len(v.pieces) < 3+256 {
		return nil, fmt.Errorf("tokenizer.bin: %d tokens, need at least 259 (unk, bos, eos and 256 bytes)", len(v.pieces))
	}
	return v, nil
}

// encode follows run.c: optional BOS, a dummy-prefix " " token for
// non-empty text, one token per UTF-8 character (or byte tokens id+3), then
// repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring token, leftmost on ties. A heap of candidate pairs makes
// this O(n log n) instead of run.c's O(n²) with the same result.
func (v *llama2cVocab) encode(text string, addSpecial bool) ([]int, error) {
	var ids []int
	if addSpecial {
		ids = append(ids, 1)
	}
	if text != "" {
		id, ok := v.lookup[" "]
		if !ok {
			return nil, fmt.Errorf("encode: the vocab has no \" \" token for the dummy prefix")
		}
		ids = append(ids, id)
	}
	return v.merge(v.appendChars(ids, text)), nil
}

// appendChars appends the ids merging starts from: one per character the
// vocab holds, otherwise one byte token per byte (id = byte + 3).
func (v *llama2cVocab) appendChars(ids []int, text string) []int {
	for i := 0; i < len(text); {
		// A character is a lead byte plus up to three continuation bytes.
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := v.lookup[text[i:j]]; ok {
			ids = append(ids, id)
		} else {
			for k := i; k < j; k++ {
				ids = append(ids, int(text[k])+3)
			}
		}
		i = j
	}
	return ids
}

type l2cEntry struct {
	score float32
	pos   int32
	left  int32
	right int32
	id    int32
}

// less puts the better merge first: the higher score, then the leftmost.
func (a l2cEntry) less(b l2cEntry) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.pos < b.pos
}

func (v *llama2cVocab) merge(ids []int) []int {
	n := len(ids)
	if n < 2 {
		return ids
	}
	next := make([]int32, n)
	prev := make([]int32, n)
	alive := make([]bool, n)
	cur := make([]int32, n)
	for i := range ids {
		next[i], prev[i], alive[i], cur[i] = int32(i+1), int32(i-1), true, int32(ids[i])
	}
	next[n-1] = -1
	h := &entryHeap[l2cEntry]{}
	consider := func(i int32) {
		j := next[i]
		if j < 0 {
			return
		}
		// run.c starts its best score at -1e10, so lower scores never merge.
		if id, ok := v.lookup[v.pieces[cur[i]]+v.pieces[cur[j]]]; ok && v.scores[id] > -1e10 {
			heap.Push(h, l2cEntry{score: v.scores[id], pos: i, left: cur[i], right: cur[j], id: int32(id)})
		}
	}
	for i := int32(0); i < int32(n-1); i++ {
		consider(i)
	}
	for h.Len() > 0 {
		e := heap.Pop(h).(l2cEntry)
		i := e.pos
		if !alive[i] || cur[i] != e.left || next[i] < 0 || cur[next[i]] != e.right {
			continue
		}
		j := next[i]
		cur[i] = e.id
		alive[j] = false
		next[i] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = i
		}
		if prev[i] >= 0 {
			consider(prev[i])
		}
		consider(i)
	}
	out := ids[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, int(cur[i]))
	}
	return out
}
