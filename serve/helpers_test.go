package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/demo"
	"github.com/shrink-llm/shrink/internal/loadgen/servetest"
	"github.com/shrink-llm/shrink/runtime"
)

// testTemplate is a small chat template in the style of Zephyr / TinyLlama:
// special-token strings, a loop over messages, the generation prompt.
const testTemplate = "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"

// demoModel converts the built-in model to q8 and opens it, adding
// chatTemplate to its tokenizer_config.json when not empty.
func demoModel(t testing.TB, chatTemplate string) *runtime.Model {
	t.Helper()
	if chatTemplate == "" {
		return servetest.DemoModel(t, nil)
	}
	return servetest.DemoModel(t, func(dir string) {
		raw, err := fs.ReadFile(demo.FS(), "tokenizer_config.json")
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["chat_template"] = chatTemplate
		b, _ := json.Marshal(cfg)
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// newServer is New that fails the test on an error.
func newServer(t testing.TB, m *runtime.Model, cfg Config) *Server {
	t.Helper()
	srv, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// testServer serves m on a loopback port until the test ends; it returns
// the base URL and the server.
func testServer(t testing.TB, m *runtime.Model, cfg Config) (string, *Server) {
	t.Helper()
	srv := newServer(t, m, cfg)
	url, _ := servetest.Serve(t, srv.Serve)
	return url, srv
}

func post(t testing.TB, url string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	resp, err := http.Post(url, "application/json", rd)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// sseEvents parses a server-sent event stream as OpenAI clients do: every
// "data:" line but the final "data: [DONE]" must be one JSON object.
func sseEvents(t testing.TB, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(body))
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if done {
			t.Fatalf("line after [DONE]: %q", line)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not a data line: %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("data line is not JSON: %q: %v", data, err)
		}
		out = append(out, ev)
	}
	if !done {
		t.Fatalf("stream does not end with data: [DONE]")
	}
	return out
}

// reference generates with the runtime's Generate path (what `shrink run`
// calls) and returns the text as `shrink run` prints it and the number of
// sampled tokens.
func reference(t testing.TB, m *runtime.Model, prompt []int, maxNew int, sc runtime.SamplerConfig) (string, int) {
	t.Helper()
	tok := m.Tokenizer()
	dec := tok.NewDecoder()
	for _, id := range prompt {
		if _, err := dec.Next(id); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	st, err := m.Generate(context.Background(), prompt, maxNew, sc, func(id int) error {
		if tok.IsSpecial(id) {
			return nil
		}
		s, err := dec.Next(id)
		b.WriteString(s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(dec.Flush())
	return b.String(), st.GenTokens
}
