package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// ModelProto field numbers (sentencepiece_model.proto).
const (
	mpPieces         = 1
	mpTrainerSpec    = 2
	mpNormalizerSpec = 3

	spPiece = 1
	spScore = 2
	spType  = 3

	tsModelType                = 3
	tsTreatWhitespaceAsSuffix  = 24
	tsByteFallback             = 35
	tsUnkID, tsBosID, tsEosID  = 40, 41, 42
	tsPadID                    = 43
	nsName                     = 1
	nsPrecompiledCharsmap      = 2
	nsAddDummyPrefix           = 3
	nsRemoveExtraWhitespaces   = 4
	nsEscapeWhitespaces        = 5
	spModelTypeUnigram         = 1
	spModelTypeBPE             = 2
	maxSentencePieceVocabulary = maxTokenID
)

// spModelProto is the part of a SentencePiece ModelProto this package uses.
type spModelProto struct {
	pieces []string
	scores []float32
	types  []pieceType

	modelType                int32
	byteFallback             bool
	treatWhitespaceAsSuffix  bool
	unkID, bosID, eosID      int32
	padID                    int32
	normName                 string
	charsmapLen              int
	addDummyPrefix           bool
	removeExtraWhitespaces   bool
	escapeWhitespaces        bool
	hasTrainer, hasNormalize bool
}

// ErrNotSentencePiece is returned (wrapped) when bytes do not parse as a
// SentencePiece model at all, as opposed to a model this package refuses.
var ErrNotSentencePiece = errors.New("not a SentencePiece model")

// parseSentencePiece decodes a ModelProto with proto2 defaults for absent
// fields. Unknown fields are skipped, as protobuf readers do.
func parseSentencePiece(data []byte) (*spModelProto, error) {
	m := &spModelProto{
		modelType: spModelTypeUnigram, unkID: 0, bosID: 1, eosID: 2, padID: -1,
		addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true,
	}
	err := eachField(data, func(f protoField) error {
		var read func([]byte) error
		name := ""
		switch f.num {
		case mpPieces:
			read = m.addPiece
		case mpTrainerSpec:
			read, name = m.readTrainer, "trainer_spec"
		case mpNormalizerSpec:
			read, name = m.readNormalizer, "normalizer_spec"
		default:
			return nil
		}
		b, err := f.message()
		if err == nil {
			err = read(b)
		}
		if err != nil {
			if f.num == mpPieces {
				name = fmt.Sprintf("piece %d", len(m.pieces))
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSentencePiece, err)
	}
	if len(m.pieces) == 0 {
		return nil, fmt.Errorf("%w: no pieces", ErrNotSentencePiece)
	}
	return m, nil
}

func (m *spModelProto) addPiece(b []byte) error {
	if len(m.pieces) >= maxSentencePieceVocabulary {
		return fmt.Errorf("more than %d pieces", maxSentencePieceVocabulary)
	}
	var piece string
	var score float32
	typ := typeNormal
	hasPiece := false
	err := eachField(b, func(f protoField) error {
		switch f.num {
		case spPiece:
			p, err := f.message()
			if err != nil {
				return err
			}
			piece, hasPiece = string(p), true
		case spScore:
			var err error
			if score, err = f.float32(); err != nil {
				return err
			}
			if math.IsNaN(float64(score)) {
				return errors.New("score is NaN")
			}
		case spType:
			t, err := f.int32()
			if err != nil {
				return err
			}
			if t < int32(typeNormal) || t > int32(typeByte) {
				return fmt.Errorf("unknown piece type %d", t)
			}
			typ = pieceType(t)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !hasPiece || piece == "" {
		return errors.New("empty piece")
	}
	m.pieces = append(m.pieces, piece)
	m.scores = append(m.scores, score)
	m.types = append(m.types, typ)
	return nil
}

func (m *spModelProto) readTrainer(b []byte) error {
	m.hasTrainer = true
	return eachField(b, func(f protoField) (err error) {
		switch f.num {
		case tsModelType:
			m.modelType, err = f.int32()
		case tsByteFallback:
			m.byteFallback, err = f.bool()
		case tsTreatWhitespaceAsSuffix:
			m.treatWhitespaceAsSuffix, err = f.bool()
		case tsUnkID:
			m.unkID, err = f.int32()
		case tsBosID:
			m.bosID, err = f.int32()
		case tsEosID:
			m.eosID, err = f.int32()
		case tsPadID:
			m.padID, err = f.int32()
		}
		return err
	})
}

func (m *spModelProto) readNormalizer(b []byte) error {
	m.hasNormalize = true
	return eachField(b, func(f protoField) (err error) {
		var s []byte
		switch f.num {
		case nsName:
			s, err = f.message()
			m.normName = string(s)
		case nsPrecompiledCharsmap:
			s, err = f.message()
			m.charsmapLen = len(s)
		case nsAddDummyPrefix:
			m.addDummyPrefix, err = f.bool()
		case nsRemoveExtraWhitespaces:
			m.removeExtraWhitespaces, err = f.bool()
		case nsEscapeWhitespaces:
			m.escapeWhitespaces, err = f.bool()
		}
		return err
	})
}

// spID is a special id of the trainer spec (-1 = none), its field name and
// where it goes once checked.
type spID struct {
	name string
	id   int32
	dst  *int
}

// checkIDs checks each id against the pieces, in order, and stores it.
func (m *spModelProto) checkIDs(ids ...spID) error {
	for _, sp := range ids {
		if sp.id < -1 || int(sp.id) >= len(m.pieces) {
			return fmt.Errorf("%s %d is outside the %d pieces", sp.name, sp.id, len(m.pieces))
		}
		*sp.dst = int(sp.id)
	}
	return nil
}

// FromSentencePiece builds a tokenizer from a SentencePiece tokenizer.model
// (a serialized ModelProto of model type BPE) plus the optional
// tokenizer_config.json bytes (nil when absent), encoding as Hugging Face's
// slow LlamaTokenizer does (legacy mode): the text is split on the control
// and unknown pieces (<s>, </s>, <unk>), and every other part is normalized
// (dummy prefix, whitespace escaping) and encoded by sentencepiece's BPE
// with byte fallback. With addSpecial, BOS is prepended (and EOS appended)
// as tokenizer_config.json's add_bos_token/add_eos_token say, by default
// BOS only. Only the identity normalization is supported: a model with a
// precompiled character map (nmt_nfkc and the like) is refused.
func FromSentencePiece(model, tokenizerConfig []byte) (*Tokenizer, error) {
	p, err := parseSentencePiece(model)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.model: %w", err)
	}
	if p.modelType != spModelTypeBPE {
		name := map[int32]string{spModelTypeUnigram: "unigram", 3: "word", 4: "char"}[p.modelType]
		if name == "" {
			name = fmt.Sprint(p.modelType)
		}
		return nil, fmt.Errorf("tokenizer.model: model type %s is not supported (only BPE)", name)
	}
	if p.charsmapLen > 0 {
		return nil, fmt.Errorf("tokenizer.model: normalization rule %q uses a precompiled character map, which is not supported (only identity)", p.normName)
	}
	var unk, bos, eos int
	if err := p.checkIDs(spID{"unk_id", p.unkID, &unk}, spID{"bos_id", p.bosID, &bos}, spID{"eos_id", p.eosID, &eos}); err != nil {
		return nil, fmt.Errorf("tokenizer.model: %w", err)
	}
	if unk < 0 || p.types[unk] != typeUnknown {
		return nil, fmt.Errorf("tokenizer.model: unk_id %d is not an unknown piece", unk)
	}
	for id, ty := range p.types {
		if ty == typeByte && !p.byteFallback {
			return nil, fmt.Errorf("tokenizer.model: piece %d %q is a byte piece but byte_fallback is off", id, p.pieces[id])
		}
	}
	sm, err := newSPMModel(p.pieces, p.scores, p.types, unk, true, p.byteFallback)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.model: %w", err)
	}
	sm.rankByID = true
	cfg := configInfo{addBos: true}
	if err := readAddSpecial(tokenizerConfig, &cfg.addBos, &cfg.addEos); err != nil {
		return nil, err
	}

	n := len(p.pieces)
	t := &Tokenizer{
		idToToken: p.pieces,
		hasToken:  make([]bool, n),
		special:   make([]bool, n),
		tokenToID: sm.lookup,
		bos:       bos,
		eos:       eos,
		byteRuns:  true,
		decode:    spmDecoder(p.addDummyPrefix && !p.treatWhitespaceAsSuffix),
	}
	split := newAddedMatcher()
	for id, ty := range p.types {
		t.hasToken[id] = true
		if ty == typeControl || ty == typeUnknown {
			t.special[id] = true
			split.add(p.pieces[id], &addedToken{ID: id, Content: p.pieces[id], Special: true})
		}
	}
	norm := spNormalizer{addDummyPrefix: p.addDummyPrefix, removeExtra: p.removeExtraWhitespaces,
		escape: p.escapeWhitespaces, suffix: p.treatWhitespaceAsSuffix}
	t.encode = func(text string, addSpecial bool) ([]int, error) {
		var ids []int
		if addSpecial && cfg.addBos && bos >= 0 {
			ids = append(ids, bos)
		}
		for _, sg := range split.split(text, true, nil) {
			if sg.id >= 0 {
				ids = append(ids, sg.id)
				continue
			}
			ids = sm.encode(norm.normalize(sg.s), ids)
		}
		if addSpecial && cfg.addEos && eos >= 0 {
			ids = append(ids, eos)
		}
		return ids, nil
	}
	return t, nil
}

// spmDecoder joins pieces as SentencePiece does: U+2581 becomes a space,
// <0xXX> runs become their bytes, and (with a dummy prefix) one leading
// space is dropped.
func spmDecoder(stripPrefix bool) decoder {
	return func(toks []string) []string {
		joined := strings.Join(decodeByteFallback(toks), "")
		joined = strings.ReplaceAll(joined, spaceSymbol, " ")
		if stripPrefix {
			joined = strings.TrimPrefix(joined, " ")
		}
		return []string{joined}
	}
}

// spNormalizer is sentencepiece's whitespace handling under the identity
// normalization rule.
type spNormalizer struct {
	addDummyPrefix, removeExtra, escape, suffix bool
}

func (n spNormalizer) normalize(s string) string {
	if !utf8.ValidString(s) {
		s = replaceInvalidBytes(s)
	}
	if n.removeExtra {
		s = strings.TrimLeft(s, " ")
	}
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	space := " "
	if n.escape {
		space = spaceSymbol
	}
	if n.addDummyPrefix && !n.suffix {
		b.WriteString(space)
	}
	prevSpace := n.removeExtra
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			b.WriteString(space)
			prevSpace = n.removeExtra
			continue
		}
		b.WriteByte(c)
		prevSpace = false
	}
	out := b.String()
	if n.removeExtra {
		for strings.HasSuffix(out, space) {
			out = strings.TrimSuffix(out, space)
		}
	}
	if n.addDummyPrefix && n.suffix {
		out += space
	}
	return out
}

// replaceInvalidBytes replaces every byte that does not start a valid UTF-8
// sequence with U+FFFD, one per byte, as sentencepiece's normalizer does.
func replaceInvalidBytes(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}
