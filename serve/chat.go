package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ardanlabs/jinja"
	"github.com/shrink-llm/shrink/runtime"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// chatTemplate is a compiled tokenizer_config.json chat template and the
// special-token strings templates refer to.
type chatTemplate struct {
	t          *jinja.Template
	bos, eos   string
	sourceText string

	// slot admits one bounded render at a time (renders take
	// microseconds); stuck is set once a render overran its time limit.
	// The engine cannot be interrupted, so the overrunning render keeps
	// its slot until it ends, if ever, and every later chat gets an error
	// at once: at most one render is ever in flight past its limit.
	slot  chan struct{}
	stuck atomic.Bool
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
	return &chatTemplate{t: t, bos: tokenizer.TokenContent(tc.BOS), eos: tokenizer.TokenContent(tc.EOS), sourceText: src, slot: make(chan struct{}, 1)}, nil
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

// errTemplateStuck answers every chat once a render has overrun its limit.
var errTemplateStuck = errors.New("the model's chat template did not finish rendering in time earlier; chat is disabled until the server restarts")

// templateTimeout wraps the error of a render that overran its limit.
type templateTimeout struct{ limit time.Duration }

func (e templateTimeout) Error() string {
	return fmt.Sprintf("the model's chat template did not finish rendering within %v; chat is disabled until the server restarts", e.limit)
}

// renderWithin is render bounded in time: the template comes from the
// model file and the Jinja engine has no limits of its own, so a template
// that loops for long (a range over a huge count, say) must not hold a
// request, or the scheduler's clients, for ever. A render that overruns
// limit disables chat (see chatTemplate.slot); a panic in the engine is an
// error. It waits for the slot at most limit, or until ctx ends.
func (c *chatTemplate) renderWithin(ctx context.Context, limit time.Duration, roles, contents []string) (string, error) {
	if c.stuck.Load() {
		return "", errTemplateStuck
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case c.slot <- struct{}{}:
	case <-timer.C:
		return "", templateTimeout{limit}
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if c.stuck.Load() { // the slot freed by a render that had overrun
		<-c.slot
		return "", errTemplateStuck
	}
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-c.slot }()
		defer func() {
			if r := recover(); r != nil {
				done <- result{err: fmt.Errorf("chat template: the engine failed: %v", r)}
			}
		}()
		text, err := c.render(roles, contents)
		done <- result{text, err}
	}()
	timer.Reset(limit)
	select {
	case r := <-done:
		return r.text, r.err
	case <-timer.C:
		c.stuck.Store(true)
		return "", templateTimeout{limit}
	case <-ctx.Done():
		// The render goes on in the background and frees the slot when
		// it ends; a later request waits for it at most its own limit.
		return "", ctx.Err()
	}
}

// probe renders a small conversation once, so that a template that cannot
// render even that within limit is refused when the server starts rather
// than at the first chat. Template errors (a template that refuses a
// system message, say) are for requests to report, not the server.
func (c *chatTemplate) probe(limit time.Duration) error {
	_, err := c.renderWithin(context.Background(), limit, []string{"system", "user"}, []string{"You are helpful.", "Hello"})
	var to templateTimeout
	if errors.As(err, &to) {
		return err
	}
	return nil
}
