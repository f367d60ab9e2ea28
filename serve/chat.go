package serve

import (
	"encoding/json"
	"fmt"

	"github.com/ardanlabs/jinja"
	"github.com/shrink-llm/shrink/runtime"
)

// chatTemplate is a compiled tokenizer_config.json chat template and the
// special-token strings templates refer to.
type chatTemplate struct {
	t          *jinja.Template
	bos, eos   string
	sourceText string
}

// tokenizerConfig is the part of tokenizer_config.json the template needs.
// chat_template is a string, or a list of {name, template} of which the one
// named "default" (else the first) is used; bos_token and eos_token are
// strings or {"content": ...} objects.
type tokenizerConfig struct {
	ChatTemplate json.RawMessage `json:"chat_template"`
	BOS          json.RawMessage `json:"bos_token"`
	EOS          json.RawMessage `json:"eos_token"`
}

// loadChatTemplate compiles the template stored in the model's
// tokenizer_config.json; it returns nil and no error when there is none.
func loadChatTemplate(m *runtime.Model) (*chatTemplate, error) {
	raw, ok, err := m.Blob("tokenizer_config.json")
	if err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return parseChatTemplate(raw)
}

func parseChatTemplate(raw []byte) (*chatTemplate, error) {
	var tc tokenizerConfig
	if err := json.Unmarshal(raw, &tc); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	src, err := templateSource(tc.ChatTemplate)
	if err != nil || src == "" {
		return nil, err
	}
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: chat_template: %w", err)
	}
	return &chatTemplate{t: t, bos: tokenString(tc.BOS), eos: tokenString(tc.EOS), sourceText: src}, nil
}

func templateSource(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("tokenizer_config.json: chat_template is neither a string nor a list of named templates")
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	if len(named) > 0 {
		return named[0].Template, nil
	}
	return "", nil
}

func tokenString(raw json.RawMessage) string {
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

// render formats a conversation for generation, as transformers'
// apply_chat_template(messages, add_generation_prompt=True) does.
func (c *chatTemplate) render(roles, contents []string) (string, error) {
	msgs := make([]any, len(roles))
	for i := range roles {
		msgs[i] = map[string]any{"role": roles[i], "content": contents[i]}
	}
	return c.t.Render(map[string]any{
		"messages":              msgs,
		"add_generation_prompt": true,
		"bos_token":             c.bos,
		"eos_token":             c.eos,
	})
}
