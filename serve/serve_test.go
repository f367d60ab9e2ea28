package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/internal/loadgen/servetest"
	"github.com/shrink-llm/shrink/runtime"
)

type genCase struct {
	name   string
	prompt string
	max    int
	temp   float64
	topK   int
	topP   float64
	seed   int64
	stream bool
}

var genCases = []genCase{
	{name: "greedy", prompt: "Once upon a time", max: 40, temp: 0, topP: 1},
	{name: "greedy-stream", prompt: "Once upon a time", max: 40, temp: 0, topP: 1, stream: true},
	{name: "seeded", prompt: "The little dog", max: 48, temp: 0.8, topK: 40, topP: 0.95, seed: 42},
	{name: "seeded-stream", prompt: "The little dog", max: 48, temp: 0.8, topK: 40, topP: 0.95, seed: 42, stream: true},
	{name: "seeded-other", prompt: "Tom and Sue went", max: 30, temp: 1, topP: 0.9, seed: 7, stream: true},
	{name: "long-prompt", prompt: strings.Repeat("Lily liked to play in the park with her ball. ", 12), max: 20, temp: 0.7, topP: 1, seed: 3},
}

// streamText joins the text of a completion stream and returns its finish
// reason and usage.
func streamText(t testing.TB, evs []map[string]any, chat bool) (string, string, map[string]any) {
	t.Helper()
	var b strings.Builder
	finish := ""
	var use map[string]any
	for i, ev := range evs {
		for _, k := range []string{"id", "object", "created", "model", "choices"} {
			if _, ok := ev[k]; !ok {
				t.Fatalf("event %d lacks %q: %v", i, k, ev)
			}
		}
		want := "text_completion"
		if chat {
			want = "chat.completion.chunk"
		}
		if ev["object"] != want {
			t.Fatalf("event %d: object %v, want %s", i, ev["object"], want)
		}
		ch := ev["choices"].([]any)[0].(map[string]any)
		if chat {
			d := ch["delta"].(map[string]any)
			if i == 0 && d["role"] != "assistant" {
				t.Fatalf("first chat delta lacks the assistant role: %v", d)
			}
			if c, ok := d["content"].(string); ok {
				b.WriteString(c)
			}
		} else if s, ok := ch["text"].(string); ok {
			b.WriteString(s)
		}
		if f, ok := ch["finish_reason"].(string); ok {
			if i != len(evs)-1 {
				t.Fatalf("finish_reason before the last event")
			}
			finish = f
		}
		if u, ok := ev["usage"].(map[string]any); ok {
			use = u
		}
	}
	return b.String(), finish, use
}

// TestCompletionsMatchRun: /v1/completions, whole and streamed, all cases
// at once (so they share batched decode steps), give the text and token
// counts of the runtime's Generate path with the same sampling settings.
func TestCompletionsMatchRun(t *testing.T) {
	m := demoModel(t, "")
	url, _ := testServer(t, m, Config{Parallel: 4, PrefillChunk: 16})
	var wg sync.WaitGroup
	for _, c := range genCases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := map[string]any{"model": "x", "prompt": c.prompt, "max_tokens": c.max, "temperature": c.temp,
				"top_p": c.topP, "top_k": c.topK, "seed": c.seed, "stream": c.stream}
			resp, out := post(t, url+"/v1/completions", body)
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d: %s", c.name, resp.StatusCode, out)
				return
			}
			prompt, err := m.Tokenizer().Encode(c.prompt, true)
			if err != nil {
				t.Error(err)
				return
			}
			want, n := reference(t, m, prompt, c.max, runtime.SamplerConfig{Temperature: c.temp, TopK: c.topK, TopP: c.topP, Seed: uint64(c.seed)})
			var got, finish string
			var use map[string]any
			if c.stream {
				if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("%s: Content-Type %q", c.name, ct)
				}
				got, finish, use = streamText(t, sseEvents(t, out), false)
			} else {
				var r struct {
					Object  string
					Choices []struct {
						Text         string
						FinishReason string `json:"finish_reason"`
					}
					Usage map[string]any
				}
				if err := json.Unmarshal(out, &r); err != nil {
					t.Errorf("%s: %v: %s", c.name, err, out)
					return
				}
				if r.Object != "text_completion" || len(r.Choices) != 1 {
					t.Errorf("%s: %s", c.name, out)
					return
				}
				got, finish, use = r.Choices[0].Text, r.Choices[0].FinishReason, r.Usage
			}
			if got != want {
				t.Errorf("%s: server text\n%q\nshrink run's\n%q", c.name, got, want)
			}
			wantFinish := "length"
			if n < c.max {
				wantFinish = "stop"
			}
			if finish != wantFinish {
				t.Errorf("%s: finish_reason %q, want %q", c.name, finish, wantFinish)
			}
			if use == nil || int(use["completion_tokens"].(float64)) != n || int(use["prompt_tokens"].(float64)) != len(prompt) {
				t.Errorf("%s: usage %v, want %d prompt and %d completion tokens", c.name, use, len(prompt), n)
			}
		}()
	}
	wg.Wait()
}

// TestChat: the template stored at conversion renders the conversation as
// the template says, and chat completions (whole and streamed) continue
// the rendered prompt exactly as Generate does.
func TestChat(t *testing.T) {
	m := demoModel(t, testTemplate)
	url, srv := testServer(t, m, Config{Parallel: 2})
	if !srv.HasChatTemplate() {
		t.Fatal("the converted model's chat template was not found")
	}
	msgs := []map[string]any{
		{"role": "system", "content": "You tell short stories."},
		{"role": "user", "content": []map[string]string{{"type": "text", "text": "Tell me about "}, {"type": "text", "text": "a cat."}}},
	}
	rendered, err := srv.chat.render([]string{"system", "user"}, []string{"You tell short stories.", "Tell me about a cat."})
	if err != nil {
		t.Fatal(err)
	}
	wantRendered := "<s><|system|>\nYou tell short stories.</s>\n<|user|>\nTell me about a cat.</s>\n<|assistant|>\n"
	if rendered != wantRendered {
		t.Fatalf("rendered\n%q\nwant\n%q", rendered, wantRendered)
	}
	prompt, err := m.Tokenizer().Encode(rendered, false)
	if err != nil {
		t.Fatal(err)
	}
	if prompt[0] != m.Tokenizer().BOS() {
		t.Fatalf("the rendered <s> did not become BOS: %v", prompt[:4])
	}
	want, n := reference(t, m, prompt, 30, runtime.SamplerConfig{Temperature: 0.9, TopP: 1, Seed: 5})
	for _, stream := range []bool{false, true} {
		resp, out := post(t, url+"/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 30, "temperature": 0.9, "seed": 5, "stream": stream})
		if resp.StatusCode != 200 {
			t.Fatalf("stream=%v: status %d: %s", stream, resp.StatusCode, out)
		}
		var got string
		var use map[string]any
		if stream {
			got, _, use = streamText(t, sseEvents(t, out), true)
		} else {
			var r struct {
				Object  string
				Choices []struct {
					Message struct{ Role, Content string }
				}
				Usage map[string]any
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			if r.Object != "chat.completion" || r.Choices[0].Message.Role != "assistant" {
				t.Fatalf("%s", out)
			}
			got, use = r.Choices[0].Message.Content, r.Usage
		}
		if got != want {
			t.Errorf("stream=%v: chat text\n%q\nGenerate's\n%q", stream, got, want)
		}
		if int(use["prompt_tokens"].(float64)) != len(prompt) || int(use["completion_tokens"].(float64)) != n {
			t.Errorf("stream=%v: usage %v, want %d/%d", stream, use, len(prompt), n)
		}
	}
}

// TestChatWithoutTemplate: the demo model has no template; chat is a 400.
func TestChatWithoutTemplate(t *testing.T) {
	m := demoModel(t, "")
	url, _ := testServer(t, m, Config{})
	resp, out := post(t, url+"/v1/chat/completions", map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}})
	if resp.StatusCode != 400 || !strings.Contains(string(out), "no chat template") {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	checkErrorObject(t, out)
}

// TestChatRequestErrors: a chat request the template cannot take is a 400
// naming what is wrong: no messages, an unknown role, content that is not
// text, a template that raises.
func TestChatRequestErrors(t *testing.T) {
	m := demoModel(t, "{% if messages[0]['role'] != 'user' %}{{ raise_exception('the first turn must be the user') }}{% endif %}{{ messages[0]['content'] }}")
	url, _ := testServer(t, m, Config{})
	for _, tc := range []struct {
		name     string
		messages any
		want     string
	}{
		{"no messages", []any{}, "must hold at least one message"},
		{"unknown role", []map[string]any{{"role": "wizard", "content": "hi"}}, "is not one of system, developer, user, assistant"},
		{"image part", []map[string]any{{"role": "user", "content": []map[string]string{{"type": "image_url"}}}}, "is not supported (text only)"},
		{"template raises", []map[string]any{{"role": "assistant", "content": "hi"}}, "chat template: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := post(t, url+"/v1/chat/completions", map[string]any{"messages": tc.messages, "max_tokens": 2})
			if resp.StatusCode != 400 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("status %d: %s; want 400 mentioning %q", resp.StatusCode, out, tc.want)
			}
			checkErrorObject(t, out)
		})
	}
	resp, out := post(t, url+"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "Once upon a time"}}, "max_tokens": 2})
	if resp.StatusCode != 200 {
		t.Fatalf("a request the template takes: status %d: %s", resp.StatusCode, out)
	}
}

func checkErrorObject(t testing.TB, body []byte) {
	t.Helper()
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error object: %s", body)
	}
}

// TestBadRequests: each mistake is a 4xx with an error object, and the
// server still answers afterwards.
func TestBadRequests(t *testing.T) {
	m := demoModel(t, "")
	url, _ := testServer(t, m, Config{Context: 64, MaxBodyBytes: 4096})
	long := strings.Repeat("a little dog ", 40)
	cases := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"malformed JSON", "/v1/completions", `{"prompt": "hi",`, 400, "malformed JSON"},
		{"not an object", "/v1/completions", `[1,2]`, 400, ""},
		{"wrong type max_tokens", "/v1/completions", `{"prompt": "hi", "max_tokens": "ten"}`, 400, "max_tokens"},
		{"wrong type temperature", "/v1/completions", `{"prompt": "hi", "temperature": true}`, 400, "temperature"},
		{"wrong type prompt", "/v1/completions", `{"prompt": 12}`, 400, "prompt"},
		{"missing prompt", "/v1/completions", `{}`, 400, "required"},
		{"prompt too long", "/v1/completions", `{"prompt": "` + long + `"}`, 400, "context"},
		{"max_tokens over context", "/v1/completions", `{"prompt": "hi", "max_tokens": 100}`, 400, "exceed the context"},
		{"max_tokens zero", "/v1/completions", `{"prompt": "hi", "max_tokens": 0}`, 400, "at least 1"},
		{"temperature range", "/v1/completions", `{"prompt": "hi", "temperature": 3}`, 400, "temperature"},
		{"top_p range", "/v1/completions", `{"prompt": "hi", "top_p": 0}`, 400, "top_p"},
		{"negative seed", "/v1/completions", `{"prompt": "hi", "seed": -1}`, 400, "seed"},
		{"stop type", "/v1/completions", `{"prompt": "hi", "stop": 5}`, 400, "stop"},
		{"n", "/v1/completions", `{"prompt": "hi", "n": 2}`, 400, "n"},
		{"body too large", "/v1/completions", `{"prompt": "` + strings.Repeat("x", 5000) + `"}`, 413, "bytes"},
		{"wrong method", "/health", ``, 405, "GET"},
		{"unknown path", "/v2/nothing", `{}`, 404, "no endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := post(t, url+c.path, c.body)
			if resp.StatusCode != c.status || !strings.Contains(string(out), c.want) {
				t.Fatalf("status %d, body %s; want %d containing %q", resp.StatusCode, out, c.status, c.want)
			}
			checkErrorObject(t, out)
		})
	}
	resp, err := http.Get(url + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health after bad requests: %v %v", resp, err)
	}
	resp.Body.Close()
	resp2, out := post(t, url+"/v1/completions", `{"prompt": "Once", "max_tokens": 3, "unknown_field": {"x": 1}}`)
	if resp2.StatusCode != 200 {
		t.Fatalf("good request after bad ones: %d %s", resp2.StatusCode, out)
	}
}

// TestStopStrings: generation ends at the first stop string, which is not
// returned, whole or streamed.
func TestStopStrings(t *testing.T) {
	m := demoModel(t, "")
	url, _ := testServer(t, m, Config{})
	prompt, _ := m.Tokenizer().Encode("Once upon a time", true)
	full, _ := reference(t, m, prompt, 40, runtime.SamplerConfig{})
	// Stop at the second word boundary after some text.
	i := strings.Index(full[5:], " ") + 5
	stop := full[i : i+3]
	want := full[:strings.Index(full, stop)]
	for _, stream := range []bool{false, true} {
		resp, out := post(t, url+"/v1/completions", map[string]any{"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": []string{"zzzz", stop}, "stream": stream})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
		var got, finish string
		if stream {
			got, finish, _ = streamText(t, sseEvents(t, out), false)
		} else {
			var r struct {
				Choices []struct {
					Text         string
					FinishReason string `json:"finish_reason"`
				}
			}
			json.Unmarshal(out, &r)
			got, finish = r.Choices[0].Text, r.Choices[0].FinishReason
		}
		if got != want || finish != "stop" {
			t.Errorf("stream=%v: %q (%s), want %q before stop %q", stream, got, finish, want, stop)
		}
	}
}

// TestQueueFull: with one slot and a queue of one, a third request gets 503
// with Retry-After. The scheduler is not started, so the queue stays full.
func TestQueueFull(t *testing.T) {
	m := demoModel(t, "")
	srv := newServer(t, m, Config{Parallel: 1, Queue: 1})
	h := srv.Handler()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rec := &nullWriter{h: http.Header{}}
		req, _ := http.NewRequestWithContext(ctx, "POST", "/v1/completions", strings.NewReader(`{"prompt": "Once", "max_tokens": 3}`))
		h.ServeHTTP(rec, req)
	}()
	for deadline := time.Now().Add(10 * time.Second); len(srv.sched.queue) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the first request never queued")
		}
		time.Sleep(time.Millisecond)
	}
	rec := &nullWriter{h: http.Header{}}
	req, _ := http.NewRequest("POST", "/v1/completions", strings.NewReader(`{"prompt": "Once", "max_tokens": 3}`))
	h.ServeHTTP(rec, req)
	if rec.code != 503 || rec.h.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %s", rec.code, rec.h.Get("Retry-After"), rec.body.String())
	}
	checkErrorObject(t, []byte(rec.body.String()))
	cancel()
	wg.Wait()
}

type nullWriter struct {
	h    http.Header
	code int
	body strings.Builder
}

func (w *nullWriter) Header() http.Header { return w.h }
func (w *nullWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return w.body.Write(b)
}
func (w *nullWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
}

// TestDisconnectFreesSlot: a client that goes away mid-stream loses its
// only slot at the next step, so the next request is served.
func TestDisconnectFreesSlot(t *testing.T) {
	m := demoModel(t, "")
	url, srv := testServer(t, m, Config{Parallel: 1, Queue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/completions",
		strings.NewReader(`{"prompt": "Once upon a time", "max_tokens": 400, "temperature": 1, "seed": 1, "stream": true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := io.ReadAtLeast(resp.Body, buf, 16); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	r2, out := post(t, url+"/v1/completions", map[string]any{"prompt": "Once", "max_tokens": 5, "temperature": 0})
	if r2.StatusCode != 200 {
		t.Fatalf("after a disconnect: %d %s", r2.StatusCode, out)
	}
	metrics := get(t, url+"/metrics")
	for _, want := range []string{"shrink_cancelled_requests_total", "shrink_time_to_first_token_seconds_bucket", "shrink_queue_depth 0", "go_goroutines", "shrink_generated_tokens_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_ = srv
}

func get(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestAPIKey: with a key, every endpoint but /health wants it.
func TestAPIKey(t *testing.T) {
	m := demoModel(t, "")
	url, _ := testServer(t, m, Config{APIKey: "sekrit"})
	cases := []struct {
		path, auth string
		status     int
	}{
		{"/health", "", 200},
		{"/v1/models", "", 401},
		{"/v1/models", "Bearer wrong", 401},
		{"/v1/models", "sekrit", 401},
		{"/v1/models", "Bearer sekrit", 200},
		{"/metrics", "", 401},
		{"/metrics", "Bearer sekrit", 200},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", url+c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s with %q: %d, want %d: %s", c.path, c.auth, resp.StatusCode, c.status, b)
		}
		if c.path == "/v1/models" && c.status == 200 && !strings.Contains(string(b), `"object":"list"`) {
			t.Errorf("models: %s", b)
		}
	}
}

// TestShutdown: ending Serve's context while streams run stops the server
// within the grace period; running requests end (finished or cancelled)
// with a well-formed stream, and Serve returns nil.
func TestShutdown(t *testing.T) {
	m := demoModel(t, "")
	srv := newServer(t, m, Config{Parallel: 2, ShutdownGrace: 200 * time.Millisecond})
	url, stop := servetest.Serve(t, srv.Serve)
	var wg sync.WaitGroup
	bodies := make([][]byte, 3)
	started := make(chan struct{}, 3)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(url+"/v1/completions", "application/json",
				strings.NewReader(fmt.Sprintf(`{"prompt": "Once upon a time", "max_tokens": 450, "temperature": 1, "seed": %d, "stream": true}`, i)))
			if err != nil {
				t.Error(err)
				started <- struct{}{}
				return
			}
			defer resp.Body.Close()
			started <- struct{}{}
			bodies[i], _ = io.ReadAll(resp.Body)
		}()
	}
	for range bodies {
		<-started
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	wg.Wait()
	for i, b := range bodies {
		if !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Errorf("stream %d does not end with [DONE]: …%q", i, b[max(0, len(b)-200):])
		}
	}
}

// TestPromptEndingInByteTokens: a prompt whose last characters are byte
// tokens (held by the stream decoder until a later token completes them)
// does not leak into the completion: the text is the decoding of prompt
// and completion minus the decoding of the prompt.
func TestPromptEndingInByteTokens(t *testing.T) {
	m := demoModel(t, "")
	url, _ := testServer(t, m, Config{})
	tok := m.Tokenizer()
	text := "Once upon a time there was a dog 🐶"
	prompt, err := tok.Encode(text, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Token(prompt[len(prompt)-1]), "<0x") {
		t.Skipf("the prompt does not end in byte tokens: %q", tok.Token(prompt[len(prompt)-1]))
	}
	ids := demotest.Greedy(t, m, prompt, 12)
	whole, _ := tok.Decode(append(append([]int{}, prompt...), ids...), false)
	head, _ := tok.Decode(prompt, false)
	want := whole[len(head):]
	resp, out := post(t, url+"/v1/completions", map[string]any{"prompt": text, "max_tokens": 12, "temperature": 0})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	var r struct{ Choices []struct{ Text string } }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Choices[0].Text != want {
		t.Fatalf("completion %q, want %q", r.Choices[0].Text, want)
	}
}
