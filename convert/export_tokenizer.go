package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// GGUF token types (llama.cpp's llama_token_type, SentencePiece's numbering).
const (
	tokNormal      = 1
	tokUnknown     = 2
	tokControl     = 3
	tokUserDefined = 4
	tokUnused      = 5
	tokByte        = 6
)

var bytePiece = regexp.MustCompile(`^<0x[0-9A-Fa-f]{2}>$`)

// exportTokenizer writes the .shrink's tokenizer as tokenizer.ggml.*
// metadata. A file without a tokenizer gets none (llama.cpp then needs
// --vocab-only elsewhere; shrink reads it as weights only).
func exportTokenizer(w *gguf.Writer, f *format.File, cfg format.ModelConfig) error {
	kind := f.Header().TokenizerKind
	blob := func(name string) ([]byte, error) {
		b, err := f.Blob(name)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		return b, nil
	}
	var v *tokenizer.GGUFVocab
	var err error
	switch kind {
	case format.TokenizerNone:
		return nil
	case format.TokenizerGGUF:
		b, err := blob(format.BlobGGUFVocab)
		if err != nil {
			return err
		}
		if v, err = tokenizer.ParseGGUFVocab(b); err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
	case format.TokenizerLlama2c:
		b, err := blob(format.BlobTokenizerBin)
		if err != nil {
			return err
		}
		if v, err = tokenizer.VocabFromLlama2C(b, 0, configIDs(cfg)); err != nil {
			return err // named tokenizer.bin: already
		}
	case format.TokenizerSPM:
		b, err := blob(format.BlobTokenizerModel)
		if err != nil {
			return err
		}
		if v, err = tokenizer.VocabFromSentencePiece(b, nil, configIDs(cfg)); err != nil {
			return err // named tokenizer.model: already
		}
	case format.TokenizerHF:
		b, err := blob(format.BlobTokenizerJSON)
		if err != nil {
			return err
		}
		if v, err = vocabFromHF(b, cfg); err != nil {
			return fmt.Errorf("tokenizer.json: %w", err)
		}
	default:
		return fmt.Errorf("tokenizer kind %q has no GGUF form", kind)
	}
	if err != nil {
		return err
	}
	padVocab(v, cfg.VocabSize)
	if err := setVocab(w, v); err != nil {
		return err
	}
	return exportChatTemplate(w, f)
}

// exportChatTemplate carries tokenizer_config.json's chat_template (a
// string, or the list entry named "default", else the first) into
// tokenizer.chat_template, where llama.cpp's chat mode reads it.
func exportChatTemplate(w *gguf.Writer, f *format.File) error {
	if !f.HasBlob(format.BlobTokenizerConfig) {
		return nil
	}
	b, err := f.Blob(format.BlobTokenizerConfig)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	var tc struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if json.Unmarshal(b, &tc) != nil || len(tc.ChatTemplate) == 0 {
		return nil // not ours to judge here: the converter checked the file is JSON
	}
	var one string
	if json.Unmarshal(tc.ChatTemplate, &one) != nil {
		var named []struct{ Name, Template string }
		if json.Unmarshal(tc.ChatTemplate, &named) != nil || len(named) == 0 {
			return nil
		}
		one = named[0].Template
		for _, n := range named {
			if n.Name == "default" {
				one = n.Template
			}
		}
	}
	if one == "" {
		return nil
	}
	return w.Set(ggufKeyChat, gguf.StringValue(one))
}

// padVocab fills the vocabulary up to the embedding's rows, as llama.cpp's
// converters do: llama.cpp requires one token per row.
func padVocab(v *tokenizer.GGUFVocab, n int) {
	for i := len(v.Tokens); i < n; i++ {
		v.Tokens = append(v.Tokens, fmt.Sprintf("[PAD%d]", i))
		v.Types = append(v.Types, tokUnused)
		if v.Scores != nil {
			v.Scores = append(v.Scores, 0)
		}
	}
}

func setVocab(w *gguf.Writer, v *tokenizer.GGUFVocab) error {
	set := func(k string, val gguf.Value) error { return w.Set("tokenizer.ggml."+k, val) }
	types := make([]int64, len(v.Types))
	for i, t := range v.Types {
		types[i] = int64(t)
	}
	steps := []func() error{
		func() error { return set("model", gguf.StringValue(v.Model)) },
		func() error {
			if v.Model == tokenizer.GGUFModelGPT2 {
				return set("pre", gguf.StringValue(v.Pre))
			}
			return nil
		},
		func() error { return set("tokens", gguf.StringsValue(v.Tokens)) },
		func() error {
			if len(v.Scores) == len(v.Tokens) {
				return set("scores", gguf.Float32sValue(v.Scores))
			}
			return nil
		},
		func() error { return set("token_type", gguf.IntsValue(gguf.TypeInt32, types)) },
		func() error {
			if len(v.Merges) > 0 {
				return set("merges", gguf.StringsValue(v.Merges))
			}
			return nil
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	for _, id := range []struct {
		k  string
		id int
	}{{"bos_token_id", v.BOS}, {"eos_token_id", v.EOS}, {"unknown_token_id", v.UNK}, {"padding_token_id", v.PAD}} {
		if id.id >= 0 {
			if err := set(id.k, gguf.Uint32Value(uint32(id.id))); err != nil {
				return err
			}
		}
	}
	if err := set("add_bos_token", gguf.BoolValue(v.AddBOS)); err != nil {
		return err
	}
	if err := set("add_eos_token", gguf.BoolValue(v.AddEOS)); err != nil {
		return err
	}
	if v.Model == tokenizer.GGUFModelLlama {
		return set("add_space_prefix", gguf.BoolValue(v.AddSpacePrefix))
	}
	return nil
}

func firstEOS(cfg format.ModelConfig) int {
	if len(cfg.EOS) > 0 {
		return cfg.EOS[0]
	}
	return -1
}

// configIDs are the BOS and EOS the converted checkpoint's config named,
// which the export writes in place of the tokenizer file's own.
func configIDs(cfg format.ModelConfig) *tokenizer.SpecialIDs {
	return &tokenizer.SpecialIDs{BOS: cfg.BOS, EOS: firstEOS(cfg)}
}

// llamaTokenType classifies a SentencePiece-style piece.
func llamaTokenType(id int, piece string, unk int, control map[int]bool) int32 {
	switch {
	case id == unk:
		return tokUnknown
	case control[id]:
		return tokControl
	case bytePiece.MatchString(piece):
		return tokByte
	}
	return tokNormal
}

// hfTokenizerJSON is the part of tokenizer.json the export reads.
type hfTokenizerJSON struct {
	Model struct {
		Type         string            `json:"type"`
		Vocab        map[string]int    `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		ByteFallback bool              `json:"byte_fallback"`
		UnkToken     *string           `json:"unk_token"`
	} `json:"model"`
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
}

// vocabFromHF maps a Hugging Face BPE tokenizer.json to llama.cpp's two BPE
// forms: byte-level BPE (GPT-2, Qwen2) becomes model "gpt2" with its merges
// and the pre-tokenizer of the architecture; SentencePiece-style BPE with
// "▁" and byte fallback (Llama) becomes model "llama", whose merge order is
// given to llama.cpp as scores (−rank of the merge that makes a token).
func vocabFromHF(b []byte, cfg format.ModelConfig) (*tokenizer.GGUFVocab, error) {
	var t hfTokenizerJSON
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	if t.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q has no GGUF form (only BPE)", t.Model.Type)
	}
	n := 0
	for _, id := range t.Model.Vocab {
		n = max(n, id+1)
	}
	for _, a := range t.AddedTokens {
		n = max(n, a.ID+1)
	}
	if n > cfg.VocabSize {
		return nil, fmt.Errorf("%d tokens, the model's vocabulary has %d", n, cfg.VocabSize)
	}
	tokens := make([]string, n)
	have := make([]bool, n)
	for s, id := range t.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("token %q has id %d", s, id)
		}
		tokens[id], have[id] = s, true
	}
	control, user := map[int]bool{}, map[int]bool{}
	for _, a := range t.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added token %q has id %d", a.Content, a.ID)
		}
		tokens[a.ID], have[a.ID] = a.Content, true
		if a.Special {
			control[a.ID] = true
		} else {
			user[a.ID] = true
		}
	}
	merges := make([]string, 0, len(t.Model.Merges))
	for i, m := range t.Model.Merges {
		var s string
		var pair []string
		switch {
		case json.Unmarshal(m, &s) == nil:
		case json.Unmarshal(m, &pair) == nil && len(pair) == 2:
			s = pair[0] + " " + pair[1]
		default:
			return nil, fmt.Errorf("merge %d is neither \"a b\" nor [a, b]", i)
		}
		merges = append(merges, s)
	}
	v := &tokenizer.GGUFVocab{BOS: cfg.BOS, EOS: firstEOS(cfg), UNK: -1, PAD: -1, Tokens: tokens}
	if t.Model.UnkToken != nil {
		if id, ok := t.Model.Vocab[*t.Model.UnkToken]; ok {
			v.UNK = id
		}
	}
	byteLevel := strings.Contains(string(t.PreTokenizer), `"ByteLevel"`)
	v.Types = make([]int32, n)
	for id := range tokens {
		switch {
		case !have[id]:
			tokens[id] = fmt.Sprintf("[PAD%d]", id)
			v.Types[id] = tokUnused
		case control[id] || id == v.BOS || id == v.EOS:
			v.Types[id] = tokControl
		case user[id]:
			v.Types[id] = tokUserDefined
		case byteLevel:
			v.Types[id] = tokNormal
		default:
			v.Types[id] = llamaTokenType(id, tokens[id], v.UNK, nil)
		}
	}
	if byteLevel {
		v.Model, v.Merges = tokenizer.GGUFModelGPT2, merges
		switch cfg.Arch {
		case "gpt2":
			v.Pre = "gpt-2"
		case "qwen2":
			v.Pre = "qwen2"
		default:
			v.Pre = "llama-bpe"
			v.AddBOS = cfg.BOS >= 0
		}
		return v, nil
	}
	if !t.Model.ByteFallback && !strings.Contains(string(t.Normalizer)+string(t.PreTokenizer), "▁") {
		return nil, errors.New("a BPE tokenizer that is neither byte-level nor SentencePiece-style has no GGUF form")
	}
	v.Model = tokenizer.GGUFModelLlama
	v.AddBOS = cfg.BOS >= 0
	v.AddSpacePrefix = strings.Contains(string(t.Normalizer), `"Prepend"`) ||
		strings.Contains(string(t.PreTokenizer), `"prepend_scheme":"always"`) || strings.Contains(string(t.PreTokenizer), `"prepend_scheme":"first"`) ||
		strings.Contains(string(t.PreTokenizer), `"add_prefix_space":true`)
	// A token's score is minus the rank of the first merge that makes it,
	// so llama.cpp's highest-score-first merging follows the BPE ranks.
	v.Scores = make([]float32, n)
	rank := map[string]int{}
	for r, m := range merges {
		l, rgt, ok := strings.Cut(m, " ")
		if !ok {
			return nil, fmt.Errorf("merge %d %q has no space", r, m)
		}
		if _, seen := rank[l+rgt]; !seen {
			rank[l+rgt] = r
		}
	}
	for id, tok := range tokens {
		if r, ok := rank[tok]; ok {
			v.Scores[id] = -float32(r)
		} else if v.Types[id] == tokNormal && len([]rune(tok)) > 1 {
			v.Scores[id] = -float32(len(merges)) // reachable by no merge: last
		}
	}
	return v, nil
}
