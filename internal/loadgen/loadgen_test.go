package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/internal/loadgen/servetest"
	"github.com/shrink-llm/shrink/serve"
)

// serveDemo converts the built-in model and serves it on a loopback port
// until the test ends.
func serveDemo(t *testing.T, cfg serve.Config) string {
	t.Helper()
	srv, err := serve.New(servetest.DemoModel(t, nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := servetest.Serve(t, srv.Serve)
	return url
}

func TestNewClientLoopbackOnly(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://localhost:1", true},
		{"http://[::1]:8080", true},
		{"http://10.0.0.1:8080", false},
		{"http://example.com", false},
		{"https://127.0.0.1", false},
		{"::", false},
	} {
		_, err := NewClient(c.url, "")
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok=%v", c.url, err, c.ok)
		}
	}
}

// TestSweepAndSoak runs a small sweep and a soak against the demo model:
// every request is accounted for, no 5xx but 503, malformed bodies get
// 4xx, and the server ends as it started (no sequences left, goroutines
// back to about where they were, /health answering).
func TestSweepAndSoak(t *testing.T) {
	base := serveDemo(t, serve.Config{Parallel: 4, Queue: 16})
	c, err := NewClient(base, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := Request{Prompt: "Once upon a time", MaxTokens: 16, Temperature: 0.8}
	levels, err := c.Sweep(ctx, []int{1, 4}, 8, time.Minute, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range levels {
		if l.Requests != 8 || l.Errors != 0 || l.Tokens == 0 || l.P50 <= 0 || l.P99 < l.P50 {
			t.Errorf("level %+v", l)
		}
	}
	n := 400
	if testing.Short() {
		n = 100
	}
	rep, err := c.Soak(ctx, SoakOptions{Requests: n, Streams: 16, Disconnect: 0.1, Malformed: 0.05, Seed: 3, Request: req, MaxWall: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("soak: %+v", rep)
	if rep.Requests != n || rep.Bad5xx != 0 || rep.Bad4xx != 0 || rep.MalformedNot4xx != 0 || len(rep.Errors) != 0 || !rep.Healthy {
		t.Fatalf("soak report %+v", rep)
	}
	if rep.Malformed == 0 || rep.Disconnected == 0 || rep.OK < n/2 || rep.OK+rep.Disconnected+rep.Malformed+rep.Status[503] != n {
		t.Fatalf("soak mix %+v", rep)
	}
	if rep.End.Active != 0 || rep.End.Queue != 0 {
		t.Fatalf("sequences left at the end: %+v", rep.End)
	}
	// Idle keep-alive connections of other clients may still hold a few
	// goroutines; growth with the number of requests would be hundreds.
	if rep.End.Goroutines > rep.Start.Goroutines+8 {
		t.Fatalf("goroutines grew from %d to %d", rep.Start.Goroutines, rep.End.Goroutines)
	}
}
