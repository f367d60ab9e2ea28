package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// maxTokenID bounds ids read from files so that a corrupt file cannot make
// us allocate an enormous id table.
const maxTokenID = 1<<24 - 1

// Tokenizer encodes text to token ids and decodes them back. It is safe for
// concurrent use.
type Tokenizer struct {
	idToToken []string
	hasToken  []bool
	special   []bool // special tokens, skipped by Decode(…, true)
	tokenToID map[string]int
	bos, eos  int

	encode func(text string, addSpecial bool) ([]int, error)
	decode decoder // nil: tokens are joined with spaces
	// byteRuns is set when the decoder joins runs of <0xXX> tokens
	// (ByteFallback); stream decoding then holds such runs until they end.
	byteRuns bool
}

// hfPipeline is the encoding half of a tokenizer.json.
type hfPipeline struct {
	rawAdded  *addedMatcher // added tokens matched before normalization
	normAdded *addedMatcher // added tokens matched in normalized text
	norm      normalizer
	pre       preTokenizer
	model     *bpeModel
	post      postProcessor
}

type hfFile struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	Model         json.RawMessage `json:"model"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
}

// hfConfig holds the fields of tokenizer_config.json and
// special_tokens_map.json that matter here.
type hfConfig struct {
	BosToken    json.RawMessage `json:"bos_token"`
	EosToken    json.RawMessage `json:"eos_token"`
	AddBosToken *bool           `json:"add_bos_token"`
	AddEosToken *bool           `json:"add_eos_token"`
}

// FromHF builds a tokenizer from tokenizer.json bytes plus the optional
// tokenizer_config.json and special_tokens_map.json bytes (nil when absent),
// which supply BOS/EOS and, when tokenizer.json has no post-processor,
// add_bos_token/add_eos_token.
func FromHF(tokenizerJSON, tokenizerConfig, specialTokensMap []byte) (*Tokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if isNull(f.Model) {
		return nil, fmt.Errorf("tokenizer.json: no model")
	}
	model, err := parseBPE(f.Model)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	p := &hfPipeline{model: model, rawAdded: newAddedMatcher(), normAdded: newAddedMatcher()}
	if p.norm, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if p.pre, err = parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	post, before, after, err := parsePostProcessor(f.PostProcessor)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	p.post = post
	dec, err := parseDecoder(f.Decoder)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}

	// The id table: model vocab first, added tokens override.
	maxID, count := -1, len(model.vocab)+len(f.AddedTokens)
	for _, id := range model.vocab {
		maxID = max(maxID, id)
	}
	for i, at := range f.AddedTokens {
		if at.ID < 0 || at.ID > maxTokenID {
			return nil, fmt.Errorf("tokenizer.json: added_tokens[%d] %q has id %d out of range", i, at.Content, at.ID)
		}
		maxID = max(maxID, at.ID)
	}
	if maxID+1 > 2*count+4096 {
		return nil, fmt.Errorf("tokenizer.json: ids are too sparse (max id %d for %d tokens)", maxID, count)
	}
	// The post-processor's ids are inserted into every encoding as they
	// are: each must name a token of the table, or Encode would hand the
	// model an id outside its vocabulary.
	for _, id := range append(append([]int(nil), before...), after...) {
		if id > maxID {
			return nil, fmt.Errorf("tokenizer.json: post_processor inserts id %d, outside the vocabulary of %d tokens", id, maxID+1)
		}
	}
	t := &Tokenizer{
		idToToken: make([]string, maxID+1),
		hasToken:  make([]bool, maxID+1),
		special:   make([]bool, maxID+1),
		tokenToID: make(map[string]int, count),
		bos:       -1,
		eos:       -1,
		decode:    dec,
		byteRuns:  usesByteFallback(f.Decoder),
	}
	for tok, id := range model.vocab {
		// Several strings may share an id; keep the smallest for determinism.
		if !t.hasToken[id] || tok < t.idToToken[id] {
			t.idToToken[id] = tok
		}
		t.hasToken[id] = true
		t.tokenToID[tok] = id
	}
	// Special tokens are registered before the others, as the library does;
	// for identical patterns the first registered wins.
	for pass := 0; pass < 2; pass++ {
		for i := range f.AddedTokens {
			at := &f.AddedTokens[i]
			if at.Special != (pass == 0) || at.Content == "" {
				continue
			}
			t.idToToken[at.ID], t.hasToken[at.ID] = at.Content, true
			t.special[at.ID] = at.Special
			t.tokenToID[at.Content] = at.ID
			if at.Normalized {
				pat := at.Content
				if p.norm != nil {
					pat = p.norm(pat)
				}
				p.normAdded.add(pat, at)
			} else {
				p.rawAdded.add(at.Content, at)
			}
		}
	}

	cfg, err := readConfigs(tokenizerConfig, specialTokensMap)
	if err != nil {
		return nil, err
	}
	t.bos, t.eos = t.lookupSpecial(cfg.bos), t.lookupSpecial(cfg.eos)
	if t.bos < 0 && len(before) > 0 {
		t.bos = before[0]
	}
	if t.bos < 0 {
		t.bos = t.firstKnown("<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>")
	}
	if t.eos < 0 && len(after) > 0 {
		t.eos = after[len(after)-1]
	}
	if t.eos < 0 {
		t.eos = t.firstKnown("</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>")
	}
	if p.post == nil {
		var pre, suf []int
		if cfg.addBos && t.bos >= 0 {
			pre = []int{t.bos}
		}
		if cfg.addEos && t.eos >= 0 {
			suf = []int{t.eos}
		}
		if pre != nil || suf != nil {
			p.post = wrapIDs(pre, suf)
		}
	}
	t.encode = p.encode
	return t, nil
}

type configInfo struct {
	bos, eos       string
	addBos, addEos bool
}

func readConfigs(tokenizerConfig, specialTokensMap []byte) (configInfo, error) {
	var ci configInfo
	for _, src := range []struct {
		name string
		data []byte
	}{{"tokenizer_config.json", tokenizerConfig}, {"special_tokens_map.json", specialTokensMap}} {
		if len(src.data) == 0 {
			continue
		}
		var c hfConfig
		if err := json.Unmarshal(src.data, &c); err != nil {
			return ci, fmt.Errorf("%s: %w", src.name, err)
		}
		if ci.bos == "" {
			ci.bos = TokenContent(c.BosToken)
		}
		if ci.eos == "" {
			ci.eos = TokenContent(c.EosToken)
		}
		if src.name == "tokenizer_config.json" {
			ci.addBos = c.AddBosToken != nil && *c.AddBosToken
			ci.addEos = c.AddEosToken != nil && *c.AddEosToken
		}
	}
	return ci, nil
}

// readAddSpecial sets addBos and addEos from tokenizer_config.json's
// add_bos_token and add_eos_token where it has them (tokenizerConfig may be
// nil), keeping the caller's defaults otherwise.
func readAddSpecial(tokenizerConfig []byte, addBos, addEos *bool) error {
	if len(tokenizerConfig) == 0 {
		return nil
	}
	var c hfConfig
	if err := json.Unmarshal(tokenizerConfig, &c); err != nil {
		return fmt.Errorf("tokenizer_config.json: %w", err)
	}
	if c.AddBosToken != nil {
		*addBos = *c.AddBosToken
	}
	if c.AddEosToken != nil {
		*addEos = *c.AddEosToken
	}
	return nil
}

// TokenContent reads a special token as tokenizer_config.json and
// special_tokens_map.json give it: "text" or {"content": "text", ...}; ""
// when it is absent or neither.
func TokenContent(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Content
	}
	return ""
}

func (t *Tokenizer) lookupSpecial(s string) int {
	if s == "" {
		return -1
	}
	if id, ok := t.tokenToID[s]; ok {
		return id
	}
	return -1
}

func (t *Tokenizer) firstKnown(names ...string) int {
	for _, n := range names {
		if id, ok := t.tokenToID[n]; ok {
			return id
		}
	}
	return -1
}

// encode runs the tokenizer.json pipeline: added tokens, normalizer,
// pre-tokenizer, model, and (with addSpecial) the post-processor.
func (p *hfPipeline) encode(text string, addSpecial bool) ([]int, error) {
	ids := make([]int, 0, len(text)/3+2)
	var err error
	var pieces []piece
	for _, sg := range p.rawAdded.split(text, true, nil) {
		if sg.id >= 0 {
			ids = append(ids, sg.id)
			continue
		}
		s := sg.s
		if p.norm != nil {
			s = p.norm(s)
		}
		for _, sub := range p.normAdded.split(s, sg.atStart, nil) {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				continue
			}
			pieces = append(pieces[:0], piece{s: sub.s, atStart: sub.atStart})
			if p.pre != nil {
				pieces = p.pre(pieces)
			}
			for _, pc := range pieces {
				if ids, err = p.model.tokenize(pc.s, ids); err != nil {
					return nil, fmt.Errorf("encode: %w", err)
				}
			}
		}
	}
	if addSpecial && p.post != nil {
		ids = p.post(ids)
	}
	return ids, nil
}

// Encode turns text into token ids; addSpecial applies the post-processor
// (e.g. prepends BOS). Added tokens in the text are recognised either way,
// as in the tokenizers library.
func (t *Tokenizer) Encode(text string, addSpecial bool) ([]int, error) {
	return t.encode(text, addSpecial)
}

// Decode turns ids back into text through the decoder chain; skipSpecial
// drops special tokens. An id without a token is an error.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id >= len(t.hasToken) || !t.hasToken[id] {
			return "", fmt.Errorf("decode: token id %d is not in the vocabulary (size %d)", id, len(t.hasToken))
		}
		if skipSpecial && t.special[id] {
			continue
		}
		toks = append(toks, t.idToToken[id])
	}
	if t.decode == nil {
		return strings.Join(toks, " "), nil
	}
	return strings.Join(t.decode(toks), ""), nil
}

// VocabSize is one more than the largest token id, counting added tokens.
func (t *Tokenizer) VocabSize() int { return len(t.idToToken) }

// BOS is the beginning-of-sequence id, or -1 if none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence id, or -1 if none.
func (t *Tokenizer) EOS() int { return t.eos }

// TokenID looks up a token string (added tokens first).
func (t *Tokenizer) TokenID(s string) (int, bool) {
	id, ok := t.tokenToID[s]
	return id, ok
}

// Token returns the string of id, or "" if there is none.
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.idToToken) {
		return ""
	}
	return t.idToToken[id]
}

// IsSpecial reports whether id is a special token.
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.special) && t.special[id]
}
