package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The gguf-vocab blob stores a GGUFVocab in a .shrink (format/SPEC.md §5.1).
// All integers are little-endian; a string is a uint32 byte length and the
// bytes.
//
//	magic      8 bytes  "SHRKVOC1"
//	model      string   "llama", "gpt2" or "bert"
//	pre        string   gpt2: pre-tokenizer name; others: empty
//	flags      uint32   bit 0 add_bos, bit 1 add_eos, bit 2 add_space_prefix,
//	                    bit 3 scores present, bit 4 lowercase, bit 5
//	                    strip_accents; other bits zero
//	bos, eos, unk, pad, sep  int32 each, -1 for none
//	n_tokens   uint32
//	n_tokens × { text string, score float32 (only with bit 3), type int32 }
//	n_merges   uint32
//	n_merges × string
//
// Nothing may follow the last merge.
const ggufVocabMagic = "SHRKVOC1"

const (
	vocabFlagAddBOS = 1 << iota
	vocabFlagAddEOS
	vocabFlagAddSpacePrefix
	vocabFlagScores
	vocabFlagLowercase
	vocabFlagStripAccents
	vocabFlagsKnown = vocabFlagAddBOS | vocabFlagAddEOS | vocabFlagAddSpacePrefix | vocabFlagScores |
		vocabFlagLowercase | vocabFlagStripAccents
)

// MarshalBinary encodes the vocabulary as a gguf-vocab blob. The same
// vocabulary always gives the same bytes.
func (v *GGUFVocab) MarshalBinary() ([]byte, error) {
	v = v.normalized()
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("gguf vocab: %w", err)
	}
	size := len(ggufVocabMagic) + 8 + len(v.Model) + len(v.Pre) + 4 + 20 + 8
	for _, s := range v.Tokens {
		size += 12 + len(s)
	}
	for _, s := range v.Merges {
		size += 4 + len(s)
	}
	b := make([]byte, 0, size)
	str := func(s string) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	var flags uint32
	if v.AddBOS {
		flags |= vocabFlagAddBOS
	}
	if v.AddEOS {
		flags |= vocabFlagAddEOS
	}
	if v.AddSpacePrefix {
		flags |= vocabFlagAddSpacePrefix
	}
	if v.Scores != nil {
		flags |= vocabFlagScores
	}
	if v.Lowercase {
		flags |= vocabFlagLowercase
	}
	if v.StripAccents {
		flags |= vocabFlagStripAccents
	}
	b = append(b, ggufVocabMagic...)
	str(v.Model)
	str(v.Pre)
	b = binary.LittleEndian.AppendUint32(b, flags)
	for _, id := range []int{v.BOS, v.EOS, v.UNK, v.PAD, v.SEP} {
		b = binary.LittleEndian.AppendUint32(b, uint32(int32(id)))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Tokens)))
	for i, s := range v.Tokens {
		str(s)
		if v.Scores != nil {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v.Scores[i]))
		}
		typ := int32(typeNormal)
		if v.Types != nil {
			typ = v.Types[i]
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(typ))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Merges)))
	for _, s := range v.Merges {
		str(s)
	}
	return b, nil
}

// blobReader reads the blob with every length checked against what is left.
type blobReader struct {
	b   []byte
	off int
	err error
}

func (r *blobReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s at byte %d: truncated", what, r.off)
	}
}

func (r *blobReader) u32(what string) uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 4 {
		r.fail(what)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

func (r *blobReader) str(what string) string {
	n := r.u32(what)
	if r.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("%s at byte %d: length %d runs past the end", what, r.off-4, n)
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

// count reads an element count and checks that count elements of at least
// minSize bytes each fit in what is left, before anything is allocated.
func (r *blobReader) count(what string, minSize int) int {
	n := r.u32(what)
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.b)-r.off) || n > maxTokenID {
		r.err = fmt.Errorf("%s %d does not fit in the %d bytes left", what, n, len(r.b)-r.off)
		return 0
	}
	return int(n)
}

// ParseGGUFVocab decodes a gguf-vocab blob and validates it.
func ParseGGUFVocab(blob []byte) (*GGUFVocab, error) {
	if len(blob) < len(ggufVocabMagic) || string(blob[:len(ggufVocabMagic)]) != ggufVocabMagic {
		return nil, errors.New("gguf vocab: bad magic")
	}
	r := &blobReader{b: blob, off: len(ggufVocabMagic)}
	v := &GGUFVocab{}
	v.Model = r.str("model")
	v.Pre = r.str("pre")
	flags := r.u32("flags")
	if flags&^vocabFlagsKnown != 0 {
		return nil, fmt.Errorf("gguf vocab: unknown flags %#x", flags)
	}
	v.AddBOS = flags&vocabFlagAddBOS != 0
	v.AddEOS = flags&vocabFlagAddEOS != 0
	v.AddSpacePrefix = flags&vocabFlagAddSpacePrefix != 0
	v.Lowercase = flags&vocabFlagLowercase != 0
	v.StripAccents = flags&vocabFlagStripAccents != 0
	ids := [5]int{}
	for i := range ids {
		ids[i] = int(int32(r.u32("special id")))
	}
	v.BOS, v.EOS, v.UNK, v.PAD, v.SEP = ids[0], ids[1], ids[2], ids[3], ids[4]
	per := 8
	if flags&vocabFlagScores != 0 {
		per = 12
	}
	n := r.count("token count", per)
	if r.err == nil {
		v.Tokens = make([]string, n)
		v.Types = make([]int32, n)
		if flags&vocabFlagScores != 0 {
			v.Scores = make([]float32, n)
		}
	}
	for i := 0; i < n && r.err == nil; i++ {
		v.Tokens[i] = r.str("token")
		if v.Scores != nil {
			v.Scores[i] = math.Float32frombits(r.u32("score"))
		}
		v.Types[i] = int32(r.u32("type"))
	}
	m := r.count("merge count", 4)
	if r.err == nil && m > 0 {
		v.Merges = make([]string, m)
	}
	for i := 0; i < m && r.err == nil; i++ {
		v.Merges[i] = r.str("merge")
	}
	if r.err != nil {
		return nil, fmt.Errorf("gguf vocab: %w", r.err)
	}
	if r.off != len(blob) {
		return nil, fmt.Errorf("gguf vocab: %d bytes after the last merge", len(blob)-r.off)
	}
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("gguf vocab: %w", err)
	}
	return v, nil
}

// FromGGUFVocabBlob builds the tokenizer a gguf-vocab blob describes.
func FromGGUFVocabBlob(blob []byte) (*Tokenizer, error) {
	v, err := ParseGGUFVocab(blob)
	if err != nil {
		return nil, err
	}
	return FromGGUFVocab(v)
}
