package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client talks to one server.
type Client struct {
	Base   string // http://127.0.0.1:8080
	APIKey string
	HTTP   *http.Client
}

// NewClient checks that base is a loopback http URL: the generator is for
// measuring a local server, never for loading someone else's.
func NewClient(base, apiKey string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("loadgen: url %q: %w", base, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("loadgen: url %q: want http://", base)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("loadgen: url %q: only loopback addresses (127.0.0.1, ::1, localhost) are allowed", base)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	return &Client{Base: strings.TrimRight(base, "/"), APIKey: apiKey, HTTP: &http.Client{Transport: tr}}, nil
}

// Result is one request's outcome.
type Result struct {
	Status    int
	TTFT      time.Duration // to the first event carrying text
	Tokens    int           // usage.completion_tokens
	Err       error
	Cancelled bool // the client went away on purpose
}

// Request describes a completion to send.
type Request struct {
	Prompt      string
	MaxTokens   int
	Temperature float64
	Seed        int64
	// CachePrompt is sent as llama-server's "cache_prompt": false (the
	// default here) makes it prefill every prompt, as shrink serve does,
	// instead of reusing a slot's cached copy of the same prompt, so that
	// time to first token measures the same work on both. Servers that
	// do not know the field ignore it.
	CachePrompt bool
}

func (c *Client) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	return c.HTTP.Do(req)
}

// Stream sends a streamed completion and reads it; when stopAfter > 0 the
// client disconnects after that many events.
func (c *Client) Stream(ctx context.Context, r Request, stopAfter int) Result {
	body, _ := json.Marshal(map[string]any{"prompt": r.Prompt, "max_tokens": r.MaxTokens,
		"temperature": r.Temperature, "seed": r.Seed, "stream": true, "cache_prompt": r.CachePrompt})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	resp, err := c.post(ctx, "/v1/completions", body)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	res := Result{Status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return res
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	events, texts := 0, 0
	usage := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			// A server that reports no usage in its stream streams one
			// event per token (llama-server and shrink serve report it).
			if !usage {
				res.Tokens = texts
			}
			return res
		}
		var ev struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			res.Err = fmt.Errorf("event is not JSON: %q", data)
			return res
		}
		if ev.Error != nil {
			res.Err = fmt.Errorf("error event: %s", ev.Error.Message)
			return res
		}
		if len(ev.Choices) > 0 && ev.Choices[0].Text != "" {
			if res.TTFT == 0 {
				res.TTFT = time.Since(start)
			}
			texts++
		}
		if ev.Usage != nil {
			res.Tokens, usage = ev.Usage.CompletionTokens, true
		}
		events++
		if stopAfter > 0 && events >= stopAfter {
			res.Cancelled = true
			return res
		}
	}
	if res.Err = sc.Err(); res.Err == nil {
		res.Err = fmt.Errorf("stream ended without data: [DONE]")
	}
	return res
}

// Level is the sweep's result at one concurrency.
type Level struct {
	Streams    int
	Requests   int
	Errors     int
	Tokens     int
	Wall       time.Duration
	P50, P99   time.Duration // time to first token
	TokPerSec  float64       // aggregate generated tokens per second
	StatusSeen map[int]int
	FirstError string // the first failed request's error or status, if any
}

// Sweep runs requests at each number of concurrent streams: perLevel
// requests (at least one per stream) or until maxWall passes, whichever
// comes first.
func (c *Client) Sweep(ctx context.Context, streams []int, perLevel int, maxWall time.Duration, r Request) ([]Level, error) {
	var out []Level
	for _, n := range streams {
		if n < 1 || n > 256 {
			return out, fmt.Errorf("loadgen: %d streams: want 1 to 256", n)
		}
		total := max(perLevel, n)
		lctx, cancel := context.WithTimeout(ctx, maxWall)
		var mu sync.Mutex
		var results []Result
		start := time.Now()
		eachRequest(lctx, n, total, func(i int) {
			req := r
			req.Seed = r.Seed + int64(i)
			res := c.Stream(lctx, req, 0)
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
		})
		cancel()
		lv := Level{Streams: n, Wall: time.Since(start), StatusSeen: map[int]int{}}
		var ttft []time.Duration
		for _, res := range results {
			lv.Requests++
			lv.StatusSeen[res.Status]++
			if res.Err != nil || res.Status != http.StatusOK {
				lv.Errors++
				if lv.FirstError == "" {
					lv.FirstError = fmt.Sprintf("status %d", res.Status)
					if res.Err != nil {
						lv.FirstError += ": " + res.Err.Error()
					}
				}
				continue
			}
			lv.Tokens += res.Tokens
			if res.TTFT > 0 {
				ttft = append(ttft, res.TTFT)
			}
		}
		lv.P50, lv.P99 = percentile(ttft, 0.50), percentile(ttft, 0.99)
		if s := lv.Wall.Seconds(); s > 0 {
			lv.TokPerSec = float64(lv.Tokens) / s
		}
		out = append(out, lv)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// eachRequest runs do(i) for i = 0 … n-1 on streams goroutines, each taking
// the next index when it is done with one, until the indices run out or ctx
// ends, and waits for them.
func eachRequest(ctx context.Context, streams, n int, do func(i int)) {
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || ctx.Err() != nil {
					return
				}
				do(i)
			}
		}()
	}
	wg.Wait()
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Snapshot is the server's state as /metrics reports it.
type Snapshot struct {
	Goroutines int
	RSSBytes   int64
	Active     int
	Queue      int
}

// Scrape reads the process and scheduler gauges from /metrics.
func (c *Client) Scrape(ctx context.Context) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/metrics", nil)
	if err != nil {
		return Snapshot{}, err
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Snapshot{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Snapshot{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var s Snapshot
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "go_goroutines":
			s.Goroutines = int(v)
		case "process_resident_memory_bytes":
			s.RSSBytes = int64(v)
		case "shrink_active_sequences":
			s.Active = int(v)
		case "shrink_queue_depth":
			s.Queue = int(v)
		}
	}
	return s, sc.Err()
}

// Health reports whether GET /health answers 200.
func (c *Client) Health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health: %s", resp.Status)
	}
	return nil
}

// SoakOptions configure a soak.
type SoakOptions struct {
	Requests   int
	Streams    int
	Disconnect float64 // fraction of clients that go away mid-stream
	Malformed  float64 // fraction of requests with a bad body
	Seed       uint64
	Request    Request
	MaxWall    time.Duration
}

// SoakReport is a soak's outcome.
type SoakReport struct {
	Requests, OK, Disconnected, Malformed int
	Status                                map[int]int
	Bad5xx                                int // 5xx other than 503
	Bad4xx                                int // well-formed requests answered 4xx
	MalformedNot4xx                       int // malformed bodies not answered 4xx
	Errors                                []string
	Start, End                            Snapshot
	Healthy                               bool
}

// malformedBodies are the kinds of bad request the soak sends; each must
// get a 4xx.
var malformedBodies = []string{
	`{"prompt": "Once upon a time", "max_tokens": `,
	`{"prompt": "Once upon a time", "max_tokens": "many"}`,
	`{"prompt": ["a", "b"], "max_tokens": 4}`,
	`{"prompt": "Once", "max_tokens": 100000000}`,
	`{"prompt": "Once", "temperature": -1}`,
	`not json at all`,
	`{"prompt": "Once", "stop": {"x": 1}}`,
}

// Soak runs o.Requests requests over o.Streams concurrent clients.
func (c *Client) Soak(ctx context.Context, o SoakOptions) (SoakReport, error) {
	rep := SoakReport{Status: map[int]int{}}
	ctx, cancel := context.WithTimeout(ctx, o.MaxWall)
	defer cancel()
	var err error
	if rep.Start, err = c.Scrape(ctx); err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	type plan struct {
		malformed  int // index+1 into malformedBodies, 0 = good
		stopAfter  int
		disconnect bool
	}
	plans := make([]plan, o.Requests)
	for i := range plans {
		switch u := rng.Float64(); {
		case u < o.Malformed:
			plans[i].malformed = 1 + rng.IntN(len(malformedBodies))
		case u < o.Malformed+o.Disconnect:
			plans[i].disconnect = true
			plans[i].stopAfter = 1 + rng.IntN(max(1, o.Request.MaxTokens))
		}
	}
	var mu sync.Mutex
	eachRequest(ctx, o.Streams, len(plans), func(i int) {
		p := plans[i]
		var status int
		var rerr error
		var res Result
		if p.malformed > 0 {
			resp, err := c.post(ctx, "/v1/completions", []byte(malformedBodies[p.malformed-1]))
			if err == nil {
				status = resp.StatusCode
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			rerr = err
		} else {
			req := o.Request
			req.Seed = int64(i)
			stop := 0
			if p.disconnect {
				stop = p.stopAfter
			}
			res = c.Stream(ctx, req, stop)
			status, rerr = res.Status, res.Err
		}
		if status == http.StatusServiceUnavailable {
			// Full: back off as Retry-After asks, briefly, so
			// rejected clients do not spin.
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		rep.Requests++
		rep.Status[status]++
		switch {
		case rerr != nil:
			if len(rep.Errors) < 10 {
				rep.Errors = append(rep.Errors, fmt.Sprintf("request %d: %v", i, rerr))
			}
		case status >= 500 && status != http.StatusServiceUnavailable:
			rep.Bad5xx++
		case p.malformed > 0:
			rep.Malformed++
			if status < 400 || status >= 500 {
				rep.MalformedNot4xx++
			}
		case status >= 400 && status < 500:
			rep.Bad4xx++
		case res.Cancelled:
			rep.Disconnected++
		case status == http.StatusOK:
			rep.OK++
		}
		mu.Unlock()
	})
	if ctx.Err() != nil {
		return rep, fmt.Errorf("loadgen: soak stopped after %d of %d requests: %w", rep.Requests, o.Requests, ctx.Err())
	}
	// Let the server finish dropping the last disconnected streams and
	// notice the closed connections (each holds a goroutine until it
	// does), for up to five seconds, then look at it again.
	c.HTTP.CloseIdleConnections()
	for range 50 {
		if rep.End, err = c.Scrape(ctx); err != nil {
			return rep, err
		}
		if rep.End.Active == 0 && rep.End.Queue == 0 && rep.End.Goroutines <= rep.Start.Goroutines {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.Healthy = c.Health(ctx) == nil
	return rep, nil
}
