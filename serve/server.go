package serve

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shrink-llm/shrink/runtime"
)

// Config configures a Server. Zero values take the defaults named.
type Config struct {
	// ModelName is the id /v1/models lists and responses carry.
	ModelName string
	// Parallel is how many sequences generate at once (default 4); each
	// holds a KV cache of Context tokens.
	Parallel int
	// Queue is how many requests may wait for a slot (default 4·Parallel);
	// beyond it requests get 503 with Retry-After.
	Queue int
	// Context is the tokens (prompt plus generated) one request may use
	// (default and maximum: the model's context length).
	Context int
	// MaxKVBytes bounds the memory of the session pool, Parallel sessions
	// of Context tokens each (KV caches and their scratch; see
	// runtime.Model.SessionBytes): New refuses a configuration beyond it
	// rather than failing later, mid-request, when the last slots fill.
	// Default: half the machine's memory (8 GiB where it is unknown).
	MaxKVBytes int64
	// TemplateTimeout bounds the rendering of one chat (default 2
	// seconds); see chatTemplate.render.
	TemplateTimeout time.Duration
	// PrefillChunk is the most prompt tokens one scheduler step pushes
	// (default 64).
	PrefillChunk int
	// TiledBatch decodes float and packed weights with their
	// register-tiled matrix kernels instead of the exact per-sequence
	// ones (see runtime.Batch; q8 weights are tiled and exact either
	// way): more arithmetic per weight byte, but a request may then
	// generate other tokens than `shrink run` with the same seed when two
	// candidates nearly tie.
	TiledBatch bool
	// APIKey, when set, must be sent as "Authorization: Bearer KEY" to every
	// endpoint but /health.
	APIKey string
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds one request from arrival to its last token
	// (default 10 minutes).
	RequestTimeout time.Duration
	// WriteTimeout bounds each write of a response (default 30 seconds): a
	// client that stops reading loses its slot.
	WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 60 seconds).
	IdleTimeout time.Duration
	// ShutdownGrace is how long running requests may finish after Serve's
	// context ends before they are cancelled (default 10 seconds).
	ShutdownGrace time.Duration
}

// MaxParallel is the most sequences a server decodes at once: a batch
// step's scratch grows with it, and far fewer already saturate the
// arithmetic of a CPU.
const MaxParallel = 256

// ConfigError is New's error for a Config it refuses (as opposed to a
// model it cannot serve).
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErrorf(format string, a ...any) error {
	return &ConfigError{fmt.Sprintf(format, a...)}
}

// Server serves one model.
type Server struct {
	cfg     Config
	m       *runtime.Model
	chat    *chatTemplate
	sched   *scheduler
	met     *metrics
	keyHash [32]byte
	created int64
	stopped chan struct{} // closed when the scheduler has exited
	once    sync.Once
}

// New prepares a server for m, which must have a tokenizer. The server
// does not own m.
func New(m *runtime.Model, cfg Config) (*Server, error) {
	if m.Tokenizer() == nil {
		return nil, fmt.Errorf("serve: the model has no tokenizer")
	}
	ctxLen := m.Config().ContextLength
	switch {
	case cfg.Context == 0:
		cfg.Context = ctxLen
	case cfg.Context < 2 || cfg.Context > ctxLen:
		return nil, configErrorf("serve: context %d must be between 2 and the model's %d", cfg.Context, ctxLen)
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 4
	}
	if cfg.Parallel < 1 || cfg.Parallel > MaxParallel {
		return nil, configErrorf("serve: parallel %d must be between 1 and %d", cfg.Parallel, MaxParallel)
	}
	if cfg.MaxKVBytes <= 0 {
		cfg.MaxKVBytes = 8 << 30
		if mem := physicalMemory(); mem > 0 {
			cfg.MaxKVBytes = mem / 2
		}
	}
	if need := int64(cfg.Parallel) * m.SessionBytes(cfg.Context); need > cfg.MaxKVBytes {
		return nil, configErrorf("serve: parallel %d × context %d needs %.1f GiB of KV cache, over the limit of %.1f GiB: lower the parallel sequences or the context",
			cfg.Parallel, cfg.Context, float64(need)/(1<<30), float64(cfg.MaxKVBytes)/(1<<30))
	}
	if cfg.TemplateTimeout <= 0 {
		cfg.TemplateTimeout = 2 * time.Second
	}
	if cfg.Queue == 0 {
		cfg.Queue = 4 * cfg.Parallel
	}
	if cfg.Queue < 0 {
		return nil, configErrorf("serve: queue %d must not be negative", cfg.Queue)
	}
	if cfg.PrefillChunk <= 0 {
		cfg.PrefillChunk = 64
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Minute
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.ModelName == "" {
		cfg.ModelName = "shrink"
	}
	chat, err := loadChatTemplate(m)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if chat != nil {
		if err := chat.probe(cfg.TemplateTimeout); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
	}
	s := &Server{cfg: cfg, m: m, chat: chat, created: time.Now().Unix(), stopped: make(chan struct{})}
	s.keyHash = sha256.Sum256([]byte(cfg.APIKey))
	var q func() float64
	s.met = newMetrics(func() float64 { return q() })
	s.sched, err = newScheduler(m, cfg.Parallel, cfg.Queue, cfg.Context, cfg.PrefillChunk, s.met)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.sched.batch.SetTiled(cfg.TiledBatch)
	q = func() float64 { return float64(len(s.sched.queue)) }
	return s, nil
}

// HasChatTemplate reports whether /v1/chat/completions is available.
func (s *Server) HasChatTemplate() bool { return s.chat != nil }

// Serve answers requests on ln until ctx ends, then shuts down: it stops
// accepting, lets running requests finish for ShutdownGrace, cancels the
// rest and returns nil (or the listener's error if serving failed).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	schedCtx, stopSched := context.WithCancel(context.Background())
	defer stopSched()
	go func() {
		defer close(s.stopped)
		s.sched.run(schedCtx)
	}()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       s.cfg.IdleTimeout,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stopSched()
		<-s.stopped
		return err
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(grace); err != nil {
		// Grace is over: cancel what still runs (each handler gets a final
		// event and returns), then drop the connections.
		stopSched()
		<-s.stopped
		hard, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		if srv.Shutdown(hard) != nil {
			srv.Close()
		}
	}
	stopSched()
	<-s.stopped
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler is the server's HTTP interface. Serve runs the scheduler that
// the generation endpoints need.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.counted("/health", http.MethodGet, false, s.health))
	mux.Handle("/metrics", s.counted("/metrics", http.MethodGet, true, promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}).ServeHTTP))
	mux.HandleFunc("/v1/models", s.counted("/v1/models", http.MethodGet, true, s.models))
	mux.HandleFunc("/v1/completions", s.counted("/v1/completions", http.MethodPost, true, s.completions))
	mux.HandleFunc("/v1/chat/completions", s.counted("/v1/chat/completions", http.MethodPost, true, s.chatCompletions))
	mux.HandleFunc("/", s.counted("other", "", false, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path), Type: errInvalidRequest})
	}))
	return mux
}

// statusWriter records the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// counted wraps a handler with the method and API-key checks and the
// request counter.
func (s *Server) counted(name, method string, auth bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.met.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		}()
		if method != "" && r.Method != method {
			sw.Header().Set("Allow", method)
			writeError(sw, &apiError{status: http.StatusMethodNotAllowed, Message: fmt.Sprintf("%s takes %s, not %s", r.URL.Path, method, r.Method), Type: errInvalidRequest})
			return
		}
		if auth && s.cfg.APIKey != "" && !s.authorized(r) {
			sw.Header().Set("WWW-Authenticate", "Bearer")
			writeError(sw, &apiError{status: http.StatusUnauthorized, Message: "missing or wrong API key (send Authorization: Bearer KEY)", Type: errAuth})
			return
		}
		h(sw, r)
	}
}

// authorized compares the bearer token with the key in constant time
// (hashes of equal length, so not even the key's length leaks).
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], s.keyHash[:]) == 1 && ok
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]string{"status": "ok"})
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"object": "list", "data": []any{map[string]any{
		"id": s.cfg.ModelName, "object": "model", "created": s.created, "owned_by": "shrink",
	}}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// readRequest reads and parses a bounded body.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) (*request, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body over %d bytes", mb.Limit), Type: errInvalidRequest}
		}
		return nil, badRequest("", "reading the request body: %v", err)
	}
	return decodeRequest(body)
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	s.complete(w, r, false, s.completionPrompt)
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	if s.chat == nil {
		writeError(w, badRequest("messages", "model %q has no chat template (tokenizer_config.json carries no chat_template); use /v1/completions", s.cfg.ModelName))
		return
	}
	s.complete(w, r, true, s.chatPrompt)
}

// complete is both endpoints' path: read the request, make its prompt ids
// with prompt, generate; an error from either step is the response.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, chat bool, prompt func(context.Context, *request) ([]int, *apiError)) {
	req, e := s.readRequest(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	ids, e := prompt(r.Context(), req)
	if e != nil {
		writeError(w, e)
		return
	}
	s.generate(w, r, req, ids, chat)
}

// completionPrompt tokenizes a completion's prompt, BOS included.
func (s *Server) completionPrompt(_ context.Context, req *request) ([]int, *apiError) {
	text, e := req.promptText()
	if e != nil {
		return nil, e
	}
	prompt, err := s.m.Tokenizer().Encode(text, true)
	if err != nil {
		return nil, badRequest("prompt", "tokenizing the prompt: %v", err)
	}
	return prompt, nil
}

// chatPrompt renders a chat's messages with the model's template and
// tokenizes the result.
func (s *Server) chatPrompt(ctx context.Context, req *request) ([]int, *apiError) {
	if len(req.Messages) == 0 {
		return nil, badRequest("messages", "field \"messages\" must hold at least one message")
	}
	roles := make([]string, len(req.Messages))
	contents := make([]string, len(req.Messages))
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Role {
		case "system", "user", "assistant", "developer":
		default:
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d]: role %q is not one of system, developer, user, assistant", i, m.Role)
		}
		roles[i] = m.Role
		var e *apiError
		if contents[i], e = m.text(i); e != nil {
			return nil, e
		}
	}
	text, err := s.chat.renderWithin(ctx, s.cfg.TemplateTimeout, roles, contents)
	var to templateTimeout
	switch {
	case errors.As(err, &to) || errors.Is(err, errTemplateStuck):
		// The model's template, not the request, is at fault.
		return nil, &apiError{status: http.StatusInternalServerError, Message: err.Error(), Type: errServer}
	case err != nil:
		return nil, badRequest("messages", "chat template: %v", err)
	}
	// The template writes the special tokens (BOS included) itself.
	prompt, err := s.m.Tokenizer().Encode(text, false)
	if err != nil {
		return nil, badRequest("messages", "tokenizing the rendered chat: %v", err)
	}
	return prompt, nil
}

// buildJob validates the sampling fields against the prompt.
func (s *Server) buildJob(req *request, prompt []int) (*job, *apiError) {
	if len(prompt) == 0 {
		return nil, badRequest("prompt", "the prompt is empty (no tokens)")
	}
	if len(prompt) >= s.cfg.Context {
		return nil, badRequest("prompt", "the prompt is %d tokens; the context is %d, which leaves no room to generate", len(prompt), s.cfg.Context)
	}
	if req.N != nil && *req.N != 1 {
		return nil, badRequest("n", "field \"n\": only 1 choice per request is supported")
	}
	room := s.cfg.Context - len(prompt)
	maxNew := room
	mt := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		mt = req.MaxCompletionTokens
	}
	if mt != nil {
		switch {
		case *mt < 1:
			return nil, badRequest("max_tokens", "max_tokens %d must be at least 1", *mt)
		case *mt > room:
			return nil, badRequest("max_tokens", "max_tokens %d plus the prompt's %d tokens exceed the context of %d", *mt, len(prompt), s.cfg.Context)
		}
		maxNew = *mt
	}
	sc := runtime.SamplerConfig{Temperature: 1, TopP: 1}
	if req.Temperature != nil {
		if t := *req.Temperature; !(t >= 0 && t <= 2) {
			return nil, badRequest("temperature", "temperature %v must be between 0 and 2", t)
		}
		sc.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		if p := *req.TopP; !(p > 0 && p <= 1) {
			return nil, badRequest("top_p", "top_p %v must be in (0, 1]", p)
		}
		sc.TopP = *req.TopP
	}
	if req.TopK != nil {
		if *req.TopK < 0 {
			return nil, badRequest("top_k", "top_k %d must not be negative", *req.TopK)
		}
		sc.TopK = *req.TopK
	}
	if req.Seed != nil {
		if *req.Seed < 0 {
			return nil, badRequest("seed", "seed %d must not be negative", *req.Seed)
		}
		sc.Seed = uint64(*req.Seed)
	} else {
		sc.Seed = rand.Uint64()
	}
	stops, e := req.stops()
	if e != nil {
		return nil, e
	}
	return &job{prompt: prompt, maxNew: maxNew, sc: sc, stops: stops,
		events: make(chan event, maxNew+3), queued: time.Now()}, nil
}

// generate queues the job and writes its result, whole or as events.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, req *request, prompt []int, chat bool) {
	j, e := s.buildJob(req, prompt)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	j.ctx = ctx
	select {
	case <-s.stopped:
		writeError(w, &apiError{status: http.StatusServiceUnavailable, Message: errShutdown.Error(), Type: errUnavailable})
		return
	default:
	}
	if !s.sched.submit(j) {
		w.Header().Set("Retry-After", "1")
		writeError(w, &apiError{status: http.StatusServiceUnavailable, Message: fmt.Sprintf("all %d slots are busy and %d requests are waiting; retry later", s.cfg.Parallel, s.cfg.Queue), Type: errUnavailable})
		return
	}
	s.met.promptTokens.Add(float64(len(prompt)))
	id := fmt.Sprintf("%s-%016x", map[bool]string{false: "cmpl", true: "chatcmpl"}[chat], rand.Uint64())
	base := response{ID: id, Created: time.Now().Unix(), Model: s.cfg.ModelName}
	if req.Stream {
		s.stream(w, ctx, j, base, chat)
		return
	}
	var text strings.Builder
	for {
		ev, ok := s.next(ctx, j)
		if !ok {
			return // client gone or deadline: the scheduler drops the job
		}
		if !ev.final {
			text.WriteString(ev.text)
			continue
		}
		if ev.err != nil {
			writeError(w, jobError(ev.err))
			return
		}
		txt := text.String()
		c := choice{FinishReason: &ev.finish}
		if chat {
			base.Object = "chat.completion"
			c.Message = &message{Role: "assistant", Content: txt}
		} else {
			base.Object = "text_completion"
			c.Text = &txt
		}
		base.Choices = []choice{c}
		base.Usage = &ev.usage
		writeJSON(w, base)
		return
	}
}

// next waits for the job's next event; false when the request's context
// ended first or the scheduler is gone.
func (s *Server) next(ctx context.Context, j *job) (event, bool) {
	select {
	case ev := <-j.events:
		return ev, true
	case <-ctx.Done():
		return event{}, false
	case <-s.stopped:
		// The scheduler sent every job a final event before stopping.
		select {
		case ev := <-j.events:
			return ev, true
		default:
			return event{final: true, err: errShutdown}, true
		}
	}
}

func jobError(err error) *apiError {
	switch {
	case errors.Is(err, errShutdown):
		return &apiError{status: http.StatusServiceUnavailable, Message: err.Error(), Type: errUnavailable}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, Message: "the request timed out", Type: errServer}
	}
	return &apiError{status: http.StatusInternalServerError, Message: err.Error(), Type: errServer}
}

// stream writes the job as server-sent events in OpenAI's chunk format,
// ending with "data: [DONE]". Each write has a deadline, so a client that
// stops reading is cut off and its slot freed.
func (s *Server) stream(w http.ResponseWriter, ctx context.Context, j *job, base response, chat bool) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	if chat {
		base.Object = "chat.completion.chunk"
	} else {
		base.Object = "text_completion"
	}
	send := func(resp any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		b, _ := json.Marshal(resp)
		bw.WriteString("data: ")
		bw.Write(b)
		bw.WriteString("\n\n")
		if bw.Flush() != nil || rc.Flush() != nil {
			return false
		}
		return true
	}
	chunk := func(txt string, finish *string, u *usage) response {
		c := choice{FinishReason: finish}
		if chat {
			c.Delta = &delta{}
			if finish == nil {
				c.Delta.Content = &txt
			}
		} else {
			c.Text = &txt
		}
		r := base
		r.Choices = []choice{c}
		r.Usage = u
		return r
	}
	if chat {
		first := chunk("", nil, nil)
		first.Choices[0].Delta.Role = "assistant"
		if !send(first) {
			return
		}
	}
	for {
		ev, ok := s.next(ctx, j)
		if !ok {
			return
		}
		if !ev.final {
			if !send(chunk(ev.text, nil, nil)) {
				return // the request context ends with the handler: the job is dropped
			}
			continue
		}
		if ev.err != nil {
			e := jobError(ev.err)
			send(map[string]any{"error": e})
		} else if !send(chunk("", &ev.finish, &ev.usage)) {
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		bw.WriteString("data: [DONE]\n\n")
		bw.Flush()
		rc.Flush()
		return
	}
}
