package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// GGUF tokenizer models (tokenizer.ggml.model) this package runs.
const (
	GGUFModelLlama = "llama" // SentencePiece-style BPE over scores, byte fallback
	GGUFModelGPT2  = "gpt2"  // byte-level BPE over merges, split by a pre-tokenizer
	GGUFModelBERT  = "bert"  // WordPiece, longest match first
)

// GGUF metadata keys of the tokenizer.
const (
	ggufKeyModel          = "tokenizer.ggml.model"
	ggufKeyPre            = "tokenizer.ggml.pre"
	ggufKeyTokens         = "tokenizer.ggml.tokens"
	ggufKeyScores         = "tokenizer.ggml.scores"
	ggufKeyTokenType      = "tokenizer.ggml.token_type"
	ggufKeyMerges         = "tokenizer.ggml.merges"
	ggufKeyBOS            = "tokenizer.ggml.bos_token_id"
	ggufKeyEOS            = "tokenizer.ggml.eos_token_id"
	ggufKeyUNK            = "tokenizer.ggml.unknown_token_id"
	ggufKeyPAD            = "tokenizer.ggml.padding_token_id"
	ggufKeyAddBOS         = "tokenizer.ggml.add_bos_token"
	ggufKeyAddEOS         = "tokenizer.ggml.add_eos_token"
	ggufKeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
	ggufKeySEP            = "tokenizer.ggml.seperator_token_id" // sic
	ggufKeyAddSEP         = "tokenizer.ggml.add_sep_token"
	ggufKeyLowercase      = "tokenizer.ggml.normalizer.lowercase"
	ggufKeyStripAccents   = "tokenizer.ggml.normalizer.strip_accents"
)

// GGUFVocab is a tokenizer as GGUF metadata describes it, with llama.cpp's
// defaults already applied, so that it alone decides how text is tokenized.
// It is what a .shrink stores for a model converted from GGUF (MarshalBinary,
// format/SPEC.md "gguf-vocab").
type GGUFVocab struct {
	Model  string    // GGUFModelLlama or GGUFModelGPT2
	Pre    string    // gpt2: the pre-tokenizer name (tokenizer.ggml.pre); llama: ""
	Tokens []string  // token texts; the id is the index
	Scores []float32 // per token (llama: merge priority); zeros when absent
	Types  []int32   // per token: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
	Merges []string  // gpt2: "left right", highest priority first

	BOS, EOS, UNK, PAD int // -1: none
	AddBOS, AddEOS     bool
	AddSpacePrefix     bool // llama: prepend a space to text that follows BOS or a special token

	// bert only: the separator appended by Encode(…, true), and BERT's
	// normalizer options.
	SEP                     int // -1: none
	Lowercase, StripAccents bool
}

// GGUFMetadata is the part of a GGUF reader VocabFromGGUF needs: typed
// lookups of metadata values that fail on a missing key or a wrong type.
type GGUFMetadata interface {
	Has(key string) bool
	String(key string) (string, error)
	Strings(key string) ([]string, error)
	Floats(key string) ([]float32, error)
	Ints(key string) ([]int64, error)
	Uint(key string) (uint64, error)
	Bool(key string) (bool, error)
}

// preSplit describes how a pre-tokenizer name (tokenizer.ggml.pre) splits
// text, following llama.cpp's llama-vocab.cpp.
type preSplit struct {
	rule         string // "gpt2", "llama3", "qwen2", "digits+gpt2"
	ignoreMerges bool
	addBOS       bool // llama.cpp's default add_bos for this pre-tokenizer
}

var ggufPreTokenizers = func() map[string]preSplit {
	m := map[string]preSplit{}
	set := func(p preSplit, names ...string) {
		for _, n := range names {
			m[n] = p
		}
	}
	set(preSplit{rule: "gpt2"}, "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
		"a.x-4.0", "mellum", "modern-bert", "exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling",
		"jina-v1-en", "jina-v2-code", "roberta-bpe")
	set(preSplit{rule: "llama3", ignoreMerges: true, addBOS: true}, "llama3", "llama-v3", "llama-bpe", "falcon3",
		"falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano")
	set(preSplit{rule: "llama3"}, "dbrx", "smaug-bpe", "glm4", "chatglm-bpe")
	set(preSplit{rule: "qwen2"}, "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "megrez", "hunyuan",
		"solar-open", "grok-2")
	set(preSplit{rule: "digits+gpt2"}, "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
		"minerva-7b", "mellum2")
	return m
}()

func supportedPreNames() string {
	names := make([]string, 0, len(ggufPreTokenizers))
	for n := range ggufPreTokenizers {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// VocabFromGGUF reads the tokenizer.ggml.* metadata of a GGUF file and
// applies llama.cpp's defaults (special ids, add-BOS/EOS, space prefix) for
// the keys that are absent. It refuses tokenizer models and pre-tokenizers
// this package cannot run, so that a converted model never tokenizes
// differently from llama.cpp without saying so.
func VocabFromGGUF(m GGUFMetadata) (*GGUFVocab, error) {
	model, err := m.String(ggufKeyModel)
	if err != nil {
		return nil, err
	}
	v := &GGUFVocab{Model: model, BOS: -1, EOS: -1, UNK: -1, PAD: -1, SEP: -1}
	switch model {
	case GGUFModelLlama:
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case GGUFModelBERT:
		// llama.cpp's defaults: [CLS] 101 as BOS, [UNK] 100, [SEP] 102,
		// [PAD] 0, lowercase with accents stripped.
		v.BOS, v.UNK, v.SEP, v.PAD = 101, 100, 102, 0
		v.AddBOS, v.Lowercase = true, true
		if m.Has(ggufKeyLowercase) {
			if v.Lowercase, err = m.Bool(ggufKeyLowercase); err != nil {
				return nil, err
			}
		}
		v.StripAccents = v.Lowercase
		if m.Has(ggufKeyStripAccents) {
			if v.StripAccents, err = m.Bool(ggufKeyStripAccents); err != nil {
				return nil, err
			}
		}
	case GGUFModelGPT2:
		v.BOS, v.EOS = 11, 11
		if !m.Has(ggufKeyPre) {
			return nil, fmt.Errorf("%s: no %s (llama.cpp falls back to a generic split that shrink does not implement)", ggufKeyModel, ggufKeyPre)
		}
		if v.Pre, err = m.String(ggufKeyPre); err != nil {
			return nil, err
		}
		ps, ok := ggufPreTokenizers[v.Pre]
		if !ok {
			return nil, fmt.Errorf("%s %q is not supported (known: %s)", ggufKeyPre, v.Pre, supportedPreNames())
		}
		v.AddBOS = ps.addBOS
		if v.Merges, err = m.Strings(ggufKeyMerges); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s %q is not supported (only %q, %q and %q)", ggufKeyModel, model, GGUFModelLlama, GGUFModelGPT2, GGUFModelBERT)
	}
	if v.Tokens, err = m.Strings(ggufKeyTokens); err != nil {
		return nil, err
	}
	n := len(v.Tokens)
	if n == 0 || n > maxTokenID {
		return nil, fmt.Errorf("%s has %d tokens", ggufKeyTokens, n)
	}
	if m.Has(ggufKeyScores) {
		scores, err := m.Floats(ggufKeyScores)
		if err != nil {
			// llama.cpp also accepts integer scores.
			ints, ierr := m.Ints(ggufKeyScores)
			if ierr != nil {
				return nil, err
			}
			scores = make([]float32, len(ints))
			for i, x := range ints {
				scores[i] = float32(x)
			}
		}
		if len(scores) < n {
			return nil, fmt.Errorf("%s has %d values for %d tokens", ggufKeyScores, len(scores), n)
		}
		v.Scores = scores[:n]
	}
	if m.Has(ggufKeyTokenType) {
		types, err := m.Ints(ggufKeyTokenType)
		if err != nil {
			return nil, err
		}
		if len(types) < n {
			return nil, fmt.Errorf("%s has %d values for %d tokens", ggufKeyTokenType, len(types), n)
		}
		v.Types = make([]int32, n)
		for i := range v.Types {
			if t := types[i]; t >= int64(typeUndefined) && t <= int64(typeByte) {
				v.Types[i] = int32(t)
			} // other values: undefined (0), as llama.cpp maps them
		}
	}
	for _, sp := range []struct {
		key string
		id  *int
	}{{ggufKeyBOS, &v.BOS}, {ggufKeyEOS, &v.EOS}, {ggufKeyUNK, &v.UNK}, {ggufKeyPAD, &v.PAD}, {ggufKeySEP, &v.SEP}} {
		if *sp.id >= n {
			*sp.id = -1 // a default outside the vocab is disabled
		}
		if !m.Has(sp.key) {
			continue
		}
		id, err := m.Uint(sp.key)
		if err != nil {
			return nil, err
		}
		if id < uint64(n) { // llama.cpp keeps the default for an id outside the vocab
			*sp.id = int(id)
		}
	}
	for _, fl := range []struct {
		key string
		v   *bool
	}{{ggufKeyAddBOS, &v.AddBOS}, {ggufKeyAddEOS, &v.AddEOS}, {ggufKeyAddSpacePrefix, &v.AddSpacePrefix}} {
		if !m.Has(fl.key) {
			continue
		}
		if *fl.v, err = m.Bool(fl.key); err != nil {
			return nil, err
		}
	}
	if model != GGUFModelLlama {
		v.AddSpacePrefix = false
	}
	if model != GGUFModelBERT {
		v.SEP = -1
	}
	if err := v.check(); err != nil {
		return nil, err
	}
	return v, nil
}

// normalized returns v with SEP set to -1 unless the model is bert, so that
// callers may leave SEP at its zero value for the other models.
func (v *GGUFVocab) normalized() *GGUFVocab {
	if v.Model == GGUFModelBERT || v.SEP == -1 {
		return v
	}
	c := *v
	c.SEP = -1
	return &c
}

// check validates a vocabulary read from metadata or from a blob.
func (v *GGUFVocab) check() error {
	n := len(v.Tokens)
	if n == 0 || n > maxTokenID {
		return fmt.Errorf("%d tokens", n)
	}
	switch v.Model {
	case GGUFModelLlama, GGUFModelBERT:
		if v.Pre != "" || len(v.Merges) != 0 {
			return fmt.Errorf("model %q has a pre-tokenizer or merges", v.Model)
		}
		if v.Model == GGUFModelBERT && (v.AddSpacePrefix || v.AddBOS && v.SEP < 0) {
			return errors.New("a bert vocabulary adds no space prefix and needs a separator")
		}
	case GGUFModelGPT2:
		if _, ok := ggufPreTokenizers[v.Pre]; !ok {
			return fmt.Errorf("pre-tokenizer %q is not supported (known: %s)", v.Pre, supportedPreNames())
		}
		if v.AddSpacePrefix {
			return errors.New("a gpt2 vocabulary cannot add a space prefix")
		}
	default:
		return fmt.Errorf("tokenizer model %q is not supported (only %q, %q and %q)", v.Model, GGUFModelLlama, GGUFModelGPT2, GGUFModelBERT)
	}
	if v.Model != GGUFModelBERT && (v.SEP != -1 || v.Lowercase || v.StripAccents) {
		return fmt.Errorf("model %q has bert settings", v.Model)
	}
	if v.Scores != nil && len(v.Scores) != n || v.Types != nil && len(v.Types) != n {
		return fmt.Errorf("%d tokens but %d scores and %d types", n, len(v.Scores), len(v.Types))
	}
	for i, s := range v.Scores {
		if math.IsNaN(float64(s)) {
			return fmt.Errorf("token %d has a NaN score", i)
		}
	}
	for i, t := range v.Types {
		if t < int32(typeUndefined) || t > int32(typeByte) {
			return fmt.Errorf("token %d has type %d", i, t)
		}
	}
	for _, sp := range []struct {
		name string
		id   int
	}{{"bos", v.BOS}, {"eos", v.EOS}, {"unk", v.UNK}, {"pad", v.PAD}, {"sep", v.SEP}} {
		if sp.id < -1 || sp.id >= n {
			return fmt.Errorf("%s id %d is outside the %d tokens", sp.name, sp.id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return errors.New("add_bos_token is set but there is no bos token")
	}
	if v.AddEOS && v.EOS < 0 {
		return errors.New("add_eos_token is set but there is no eos token")
	}
	return nil
}

// Token attributes as llama.cpp keeps them (a bit set: promotions add bits).
type tokenAttr uint16

const (
	attrUndefined   tokenAttr = 0
	attrUnknown     tokenAttr = 1 << 0
	attrUnused      tokenAttr = 1 << 1
	attrNormal      tokenAttr = 1 << 2
	attrControl     tokenAttr = 1 << 3
	attrUserDefined tokenAttr = 1 << 4
	attrByte        tokenAttr = 1 << 5
)

func attrOf(t int32) tokenAttr {
	switch pieceType(t) {
	case typeUnknown:
		return attrUnknown
	case typeUnused:
		return attrUnused
	case typeNormal:
		return attrNormal
	case typeControl:
		return attrControl
	case typeUserDefined:
		return attrUserDefined
	case typeByte:
		return attrByte
	}
	return attrUndefined
}

// controlByName are the token texts llama.cpp marks as control tokens
// whatever their stored type (end-of-turn, end-of-generation and
// fill-in-the-middle markers), which keeps them whole only when special
// tokens are parsed.
var controlByName = map[string]bool{}

func init() {
	for _, s := range []string{
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
		"_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>", "<|eom_id|>",
		"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
		"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
		"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>",
		"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
		"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
		"<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "</s>", "[EOS]", "<eos>", "<turn|>", "<|tool_response>", "[e~[",
	} {
		controlByName[s] = true
	}
}

// ggufTokenizer is the encoding state built from a GGUFVocab.
type ggufTokenizer struct {
	v       *GGUFVocab
	attrs   []tokenAttr
	special []int // partition order: CONTROL, USER_DEFINED or UNKNOWN tokens, longest text first
	spm     *spmModel
	bpe     *ggufBPE
	wpm     *ggufWPM
}

// FromGGUFVocab builds a tokenizer that encodes as llama.cpp does for the
// same GGUF metadata. Encode(text, false) is llama.cpp's tokenize with
// add_special and parse_special off (its tokenizer tests); Encode(text, true)
// turns both on: BOS/EOS as the vocabulary says, and control tokens written
// in the text become their ids. User-defined tokens are matched either way.
func FromGGUFVocab(v *GGUFVocab) (*Tokenizer, error) {
	v = v.normalized()
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("gguf vocab: %w", err)
	}
	n := len(v.Tokens)
	g := &ggufTokenizer{v: v, attrs: make([]tokenAttr, n)}
	tokens := make([]string, n)
	lookup := make(map[string]int, n)
	for i, s := range v.Tokens {
		if s == "" {
			s = "[EMPTY_" + strconv.Itoa(i) + "]" // as llama.cpp renames empty tokens
		}
		if prev, dup := lookup[s]; dup {
			return nil, fmt.Errorf("gguf vocab: token %q has ids %d and %d", s, prev, i)
		}
		lookup[s] = i
		tokens[i] = s
		g.attrs[i] = attrNormal
		if v.Types != nil {
			g.attrs[i] = attrOf(v.Types[i])
		}
		if controlByName[s] {
			g.attrs[i] |= attrControl
		}
	}
	g.applyNameFixes(lookup)
	for id, a := range g.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			g.special = append(g.special, id)
		}
	}
	sort.SliceStable(g.special, func(a, b int) bool { return len(tokens[g.special[a]]) > len(tokens[g.special[b]]) })

	t := &Tokenizer{
		idToToken: tokens,
		hasToken:  make([]bool, n),
		special:   make([]bool, n),
		tokenToID: lookup,
		bos:       v.BOS,
		eos:       v.EOS,
	}
	for id, a := range g.attrs {
		t.hasToken[id] = true
		t.special[id] = a&(attrControl|attrUnknown) != 0
	}
	switch v.Model {
	case GGUFModelLlama:
		scores := v.Scores
		if scores == nil {
			scores = make([]float32, n)
		}
		types := make([]pieceType, n)
		for i := range types {
			types[i] = typeNormal
			if v.Types != nil {
				types[i] = pieceType(v.Types[i])
			}
		}
		sm, err := newSPMModel(tokens, scores, types, v.UNK, false, true)
		if err != nil {
			return nil, fmt.Errorf("gguf vocab: %w", err)
		}
		g.spm = sm
		t.byteRuns = true
		t.decode = spmDecoder(v.AddSpacePrefix)
	case GGUFModelGPT2:
		b, err := newGGUFBPE(v, lookup)
		if err != nil {
			return nil, fmt.Errorf("gguf vocab: %w", err)
		}
		g.bpe = b
		t.decode = decodeByteLevel
	case GGUFModelBERT:
		g.wpm = newGGUFWPM(v, lookup)
		t.decode = spmDecoder(true) // word-initial U+2581 become spaces; the first is dropped
	}
	t.encode = g.encode
	return t, nil
}

// applyNameFixes reproduces llama.cpp's load-time attribute overrides that
// depend on which tokens exist.
func (g *ggufTokenizer) applyNameFixes(lookup map[string]int) {
	for _, s := range []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"} {
		if id, ok := lookup[s]; ok {
			g.attrs[id] = attrUserDefined
		}
	}
	_, ret := lookup["<|return|>"]
	_, call := lookup["<|call|>"]
	_, calls := lookup["<|calls|>"]
	_, flush := lookup["<|flush|>"]
	if end, ok := lookup["<|end|>"]; ok && ((ret && call) || (calls && flush)) {
		g.attrs[end] = attrUserDefined
	}
	if s, ok := lookup["</s>"]; ok {
		if _, tr := lookup["<|tool_response>"]; tr {
			g.attrs[s] = attrNormal
		}
	}
}

// fragment is a piece of the input: raw text (id < 0) or a special token.
type fragment struct {
	text string
	id   int
}

// partition splits text at the special tokens, longest first, as llama.cpp's
// tokenizer_st_partition does.
func (g *ggufTokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{text: text, id: -1}}
	for _, id := range g.special {
		if !parseSpecial && g.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		tok := g.v.Tokens[id]
		if tok == "" {
			continue
		}
		var next []fragment
		changed := false
		for _, f := range frags {
			if f.id >= 0 || !strings.Contains(f.text, tok) {
				next = append(next, f)
				continue
			}
			changed = true
			s := f.text
			for {
				k := strings.Index(s, tok)
				if k < 0 {
					if s != "" {
						next = append(next, fragment{text: s, id: -1})
					}
					break
				}
				if k > 0 {
					next = append(next, fragment{text: s[:k], id: -1})
				}
				next = append(next, fragment{id: id})
				s = s[k+len(tok):]
			}
		}
		if changed {
			frags = next
		}
	}
	return frags
}

func (g *ggufTokenizer) encode(text string, addSpecial bool) ([]int, error) {
	var out []int
	v := g.v
	if addSpecial && v.AddBOS {
		out = append(out, v.BOS)
	}
	if text != "" {
		prevSpecial := true
		for _, f := range g.partition(text, addSpecial) {
			if f.id >= 0 {
				out = append(out, f.id)
				prevSpecial = true
				continue
			}
			if g.spm != nil {
				s := f.text
				if v.AddSpacePrefix && prevSpecial {
					s = " " + s
				}
				out = g.spm.encode(escapeSpaces(s), out)
			} else if g.bpe != nil {
				out = g.bpe.encode(f.text, out)
			} else {
				out = g.wpm.encode(f.text, out)
			}
			prevSpecial = false
		}
	}
	if addSpecial && v.AddEOS {
		out = append(out, v.EOS)
	}
	if addSpecial && v.Model == GGUFModelBERT && v.AddBOS {
		out = append(out, v.SEP) // [CLS] … [SEP]
	}
	return out, nil
}
