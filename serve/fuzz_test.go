package serve

import (
	"testing"
)

// FuzzRequest feeds arbitrary bodies through parsing and validation: no
// panic, and every rejection is a 4xx with a message.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"prompt": "Once", "max_tokens": 4, "temperature": 0.5, "top_p": 0.9, "top_k": 3, "seed": 1, "stop": ["a", "b"]}`,
		`{"prompt": ["Once"], "stop": "x", "stream": true}`,
		`{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_completion_tokens": 2}`,
		`{"prompt": 1}`, `{"max_tokens": "a"}`, `[`, `null`, `{"stop": [1]}`, `{"n": 2, "seed": -3}`,
	} {
		f.Add([]byte(s))
	}
	s := &Server{cfg: Config{Context: 64}}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(e *apiError) {
			if e != nil && (e.status < 400 || e.status >= 500 || e.Message == "") {
				t.Fatalf("bad rejection %+v", e)
			}
		}
		req, e := decodeRequest(body)
		check(e)
		if e != nil {
			return
		}
		_, e = req.promptText()
		check(e)
		for i := range req.Messages {
			_, e = req.Messages[i].text(i)
			check(e)
		}
		prompt := make([]int, 1+len(body)%80)
		j, e := s.buildJob(req, prompt)
		check(e)
		if e == nil && (j.maxNew < 1 || len(prompt)+j.maxNew > s.cfg.Context || len(j.stops) > 4) {
			t.Fatalf("accepted job out of bounds: %d prompt + %d new, %d stops", len(prompt), j.maxNew, len(j.stops))
		}
	})
}

// FuzzChatTemplateConfig parses arbitrary tokenizer_config.json bytes the
// way a model file's are read: no panic.
func FuzzChatTemplateConfig(f *testing.F) {
	f.Add([]byte(`{"chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}", "bos_token": {"content": "<s>"}}`))
	f.Add([]byte(`{"chat_template": [{"name": "default", "template": "{{ messages[0].content }}"}]}`))
	f.Add([]byte(`{"chat_template": 3}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ct, err := parseChatTemplate(raw)
		if err != nil || ct == nil {
			return
		}
		_, _ = ct.render([]string{"user"}, []string{"hi"})
	})
}
