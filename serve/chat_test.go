package serve

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestChatTemplates renders the template styles models ship (ChatML as in
// Qwen2; Zephyr/TinyLlama; Llama 2 with its system block and
// raise_exception) from a tokenizer_config.json, with bos/eos given as
// strings or as added-token objects.
func TestChatTemplates(t *testing.T) {
	roles := []string{"system", "user"}
	contents := []string{"Be brief.", "Hi there"}
	cases := []struct {
		name, template string
		bos, eos       any
		want           string
	}{
		{"chatml",
			"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
			nil, "<|im_end|>",
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"},
		{"zephyr",
			"{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
			"<s>", map[string]any{"content": "</s>", "lstrip": false},
			// transformers renders with trim_blocks: no newline after a
			// block tag, the ones after expressions stay.
			"<|system|>\nBe brief.</s>\n<|user|>\nHi there</s>\n<|assistant|>\n"},
		{"llama2",
			"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
			map[string]any{"content": "<s>"}, "</s>",
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := map[string]any{"chat_template": c.template}
			if c.bos != nil {
				cfg["bos_token"] = c.bos
			}
			cfg["eos_token"] = c.eos
			raw, _ := json.Marshal(cfg)
			ct, err := parseChatTemplate(raw)
			if err != nil || ct == nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := ct.render(roles, contents)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("rendered\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	// raise_exception surfaces as an error (a 400 for the request).
	raw, _ := json.Marshal(map[string]any{"chat_template": "{{ raise_exception('roles must alternate') }}"})
	ct, err := parseChatTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ct.render(roles, contents); err == nil {
		t.Fatal("raise_exception: no error")
	}
	// No template, or an empty one: nil, not an error.
	for _, raw := range []string{`{}`, `{"chat_template": null}`, `{"chat_template": ""}`} {
		if ct, err := parseChatTemplate([]byte(raw)); ct != nil || err != nil {
			t.Errorf("%s: %v %v", raw, ct, err)
		}
	}
}

// TestChatTemplateBounded: a template that renders for long is cut off at
// the limit (an error naming it), disables chat for later requests at
// once, and is refused by the start-up probe; an ordinary one renders
// within the bound as render does.
func TestChatTemplateBounded(t *testing.T) {
	ok, _ := json.Marshal(map[string]any{"chat_template": "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"})
	// About ten million loop iterations: seconds, far beyond the limit.
	slow, _ := json.Marshal(map[string]any{"chat_template": "{% for i in range(3200) %}{% for j in range(3200) %}{% endfor %}{% endfor %}x"})
	ctx := context.Background()
	ct, err := parseChatTemplate(ok)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.probe(time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := ct.renderWithin(ctx, time.Minute, []string{"user"}, []string{"hi"})
	if err != nil || got != "[user]hi" {
		t.Fatalf("bounded render: %q, %v", got, err)
	}

	ct, err = parseChatTemplate(slow)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ct.renderWithin(ctx, 20*time.Millisecond, []string{"user"}, []string{"hi"})
	var to templateTimeout
	if !errors.As(err, &to) {
		t.Fatalf("slow template: %v, want a timeout", err)
	}
	if _, err := ct.renderWithin(ctx, time.Minute, []string{"user"}, []string{"hi"}); !errors.Is(err, errTemplateStuck) {
		t.Fatalf("after a timeout: %v, want chat disabled", err)
	}

	ct, err = parseChatTemplate(slow)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.probe(20 * time.Millisecond); !errors.As(err, &to) {
		t.Fatalf("probe of a slow template: %v, want a timeout", err)
	}
}
