package tokenizer

import (
	"encoding/json"
	"fmt"
)

// postProcessor adds the special tokens of a single sequence.
type postProcessor func(ids []int) []int

type hfTemplatePiece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

type hfPostProcessor struct {
	Type          string            `json:"type"`
	Processors    []json.RawMessage `json:"processors"`
	Single        []hfTemplatePiece `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
	Sep []json.RawMessage `json:"sep"`
	Cls []json.RawMessage `json:"cls"`
}

// parsePostProcessor returns the processor and the special ids it puts
// before and after the sequence (used to guess BOS/EOS when no config
// names them).
func parsePostProcessor(raw json.RawMessage) (postProcessor, []int, []int, error) {
	p, ok, err := decodeSpec[hfPostProcessor]("post_processor", raw)
	if !ok {
		return nil, nil, nil, err
	}
	switch p.Type {
	case "ByteLevel":
		return nil, nil, nil, nil // only adjusts offsets
	case "Sequence":
		var seq []postProcessor
		var before, after []int
		for i, sub := range p.Processors {
			f, b, a, err := parsePostProcessor(sub)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("post_processor Sequence[%d]: %w", i, err)
			}
			if f != nil {
				seq = append(seq, f)
				before, after = append(b, before...), append(after, a...)
			}
		}
		return func(ids []int) []int {
			for _, f := range seq {
				ids = f(ids)
			}
			return ids
		}, before, after, nil
	case "TemplateProcessing":
		var before, after []int
		seen := false
		for i, pc := range p.Single {
			switch {
			case pc.Sequence != nil:
				if pc.Sequence.ID != "A" {
					return nil, nil, nil, fmt.Errorf("post_processor TemplateProcessing: single template refers to sequence %q", pc.Sequence.ID)
				}
				if seen {
					return nil, nil, nil, fmt.Errorf("post_processor TemplateProcessing: single template uses $A twice")
				}
				seen = true
			case pc.SpecialToken != nil:
				st, ok := p.SpecialTokens[pc.SpecialToken.ID]
				if !ok {
					return nil, nil, nil, fmt.Errorf("post_processor TemplateProcessing: special token %q missing from special_tokens", pc.SpecialToken.ID)
				}
				for _, id := range st.IDs {
					if id < 0 || id > maxTokenID {
						return nil, nil, nil, fmt.Errorf("post_processor TemplateProcessing: special token %q has id %d out of range", pc.SpecialToken.ID, id)
					}
				}
				if seen {
					after = append(after, st.IDs...)
				} else {
					before = append(before, st.IDs...)
				}
			default:
				return nil, nil, nil, fmt.Errorf("post_processor TemplateProcessing: single[%d] is neither SpecialToken nor Sequence", i)
			}
		}
		if !seen {
			return nil, nil, nil, fmt.Errorf("post_processor TemplateProcessing: single template lacks $A")
		}
		return wrapIDs(before, after), before, after, nil
	case "RobertaProcessing", "BertProcessing":
		cls, err := idOfPair(p.Cls)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("post_processor %s cls: %w", p.Type, err)
		}
		sep, err := idOfPair(p.Sep)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("post_processor %s sep: %w", p.Type, err)
		}
		before, after := []int{cls}, []int{sep}
		return wrapIDs(before, after), before, after, nil
	default:
		return nil, nil, nil, fmt.Errorf("unsupported post_processor type %q", p.Type)
	}
}

func wrapIDs(before, after []int) postProcessor {
	return func(ids []int) []int {
		out := make([]int, 0, len(before)+len(ids)+len(after))
		out = append(out, before...)
		out = append(out, ids...)
		return append(out, after...)
	}
}

// idOfPair reads the id of a ["token", id] pair.
func idOfPair(pair []json.RawMessage) (int, error) {
	if len(pair) != 2 {
		return 0, fmt.Errorf("want [token, id], got %d elements", len(pair))
	}
	var id int
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return 0, err
	}
	if id < 0 || id > maxTokenID {
		return 0, fmt.Errorf("id %d out of range", id)
	}
	return id, nil
}
