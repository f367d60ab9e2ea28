package tokenizer

import (
	"fmt"
	"strings"
)

// GGUF metadata for tokenizers that did not come from GGUF, for writing
// GGUF files: the tokenizer.ggml.* values llama.cpp's own converters write
// for the same tokenizer. Keys map one to one to GGUFVocab's fields (Model →
// tokenizer.ggml.model, Tokens → tokens, Scores → scores, Types →
// token_type, Merges → merges, BOS/EOS/UNK/PAD → *_token_id when ≥ 0,
// AddBOS/AddEOS → add_bos_token/add_eos_token, AddSpacePrefix →
// add_space_prefix).

// SpecialIDs are the BOS and EOS ids of a model (−1: none) where they come
// from the model's config rather than from the tokenizer file, as llama.cpp's
// converters take them from config.json.
type SpecialIDs struct{ BOS, EOS int }

// VocabFromSentencePiece describes a SentencePiece tokenizer.model as a
// "llama" GGUF vocabulary: the pieces with their scores and types, the
// trainer's special ids, add_bos_token/add_eos_token from the optional
// tokenizer_config.json (default BOS only) and the dummy prefix as
// add_space_prefix. llama.cpp merges by score, as sentencepiece does.
// Non-nil ids replace the trainer's BOS and EOS; BOS is then added only
// when there is one.
func VocabFromSentencePiece(model, tokenizerConfig []byte, ids *SpecialIDs) (*GGUFVocab, error) {
	p, err := parseSentencePiece(model)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.model: %w", err)
	}
	if p.modelType != spModelTypeBPE {
		return nil, fmt.Errorf("tokenizer.model: model type %d is not BPE", p.modelType)
	}
	v := &GGUFVocab{Model: GGUFModelLlama, Tokens: p.pieces, Scores: p.scores, Types: make([]int32, len(p.types)),
		AddBOS: true, AddSpacePrefix: p.addDummyPrefix, SEP: -1}
	for i, t := range p.types {
		v.Types[i] = int32(t)
	}
	if err := p.checkIDs(spID{"unk_id", p.unkID, &v.UNK}, spID{"bos_id", p.bosID, &v.BOS}, spID{"eos_id", p.eosID, &v.EOS}, spID{"pad_id", p.padID, &v.PAD}); err != nil {
		return nil, fmt.Errorf("tokenizer.model: %w", err)
	}
	if ids != nil {
		v.BOS, v.EOS, v.AddBOS = ids.BOS, ids.EOS, ids.BOS >= 0
	}
	if err := readAddSpecial(tokenizerConfig, &v.AddBOS, &v.AddEOS); err != nil {
		return nil, err
	}
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("tokenizer.model: %w", err)
	}
	return v, nil
}

// VocabFromLlama2C describes a llama2.c tokenizer.bin of vocabSize tokens
// (<= 0: to the end) as a "llama" GGUF vocabulary: id 0 is <unk>, BOS and
// EOS (1 and 2, or non-nil ids' where ≥ 0) are the control tokens <s> and
// </s> (llama2.c writes them as "\n<s>\n"), <0xXX> pieces are byte tokens,
// spaces become U+2581 again.
func VocabFromLlama2C(tokenizerBin []byte, vocabSize int, ids *SpecialIDs) (*GGUFVocab, error) {
	l, err := parseLlama2C(tokenizerBin, vocabSize)
	if err != nil {
		return nil, err
	}
	n := len(l.pieces)
	v := &GGUFVocab{Model: GGUFModelLlama, Tokens: make([]string, n), Scores: l.scores, Types: make([]int32, n),
		BOS: 1, EOS: 2, UNK: 0, PAD: -1, SEP: -1, AddBOS: true, AddSpacePrefix: true}
	if ids != nil && ids.BOS >= 0 {
		v.BOS = ids.BOS
	}
	if ids != nil && ids.EOS >= 0 {
		v.EOS = ids.EOS
	}
	for i, s := range l.pieces {
		switch {
		case i == v.UNK:
			v.Tokens[i], v.Types[i] = strings.TrimSpace(s), int32(typeUnknown)
		case i == v.BOS || i == v.EOS:
			v.Tokens[i], v.Types[i] = strings.TrimSpace(s), int32(typeControl)
		default:
			v.Tokens[i], v.Types[i] = escapeSpaces(s), int32(typeNormal)
			if _, ok := byteToken(s); ok {
				v.Types[i] = int32(typeByte)
			}
		}
	}
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("tokenizer.bin: %w", err)
	}
	return v, nil
}
