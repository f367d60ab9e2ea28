// Command shrink-load measures a running `shrink serve` over loopback: a
// sweep of aggregate generated tokens/s and time to first token at several
// numbers of concurrent streams, or a soak with disconnecting clients and
// malformed bodies. Every run is bounded in requests and time.
//
//	shrink-load --url http://127.0.0.1:8080 --streams 1,4,8,16 --requests 32 --max-tokens 128
//	shrink-load --url http://127.0.0.1:8080 --soak --requests 2000 --streams 16
//
// The sweep also drives llama.cpp's llama-server (its OpenAI-compatible
// /v1/completions), so both servers are measured by the same client.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/shrink-llm/shrink/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shrink-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "server `URL` (loopback only)")
	key := fs.String("api-key", os.Getenv("SHRINK_API_KEY"), "bearer `KEY`")
	streams := fs.String("streams", "1,4,8,16", "concurrent streams: a comma-separated `LIST` (sweep) or one number (soak)")
	requests := fs.Int("requests", 32, "requests per level (sweep) or in all (soak), at most 100000")
	maxTokens := fs.Int("max-tokens", 128, "max_tokens of each request")
	prompt := fs.String("prompt", "Once upon a time", "prompt `TEXT`")
	temp := fs.Float64("temperature", 0.8, "sampling temperature")
	wall := fs.Duration("max-time", 10*time.Minute, "stop a level (or the soak) after `DURATION`")
	soak := fs.Bool("soak", false, "soak: random disconnects and malformed bodies, server goroutines and RSS at start and end")
	disconnect := fs.Float64("disconnect", 0.10, "soak: fraction of clients that disconnect mid-stream")
	malformed := fs.Float64("malformed", 0.05, "soak: fraction of malformed request bodies")
	seed := fs.Uint64("seed", 1, "soak: `SEED` of the request mix")
	cachePrompt := fs.Bool("cache-prompt", false, "let llama-server reuse its cached copy of a repeated prompt (its cache_prompt; off: every request is prefilled, as shrink serve does)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var levels []int
	for _, s := range strings.Split(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			fmt.Fprintf(stderr, "shrink-load: --streams %q: want numbers from 1 to 256\n", *streams)
			return 2
		}
		levels = append(levels, n)
	}
	if *requests < 1 || *requests > 100000 || *maxTokens < 1 || *wall <= 0 {
		fmt.Fprintln(stderr, "shrink-load: --requests must be 1 to 100000, --max-tokens and --max-time positive")
		return 2
	}
	c, err := loadgen.NewClient(*base, *key)
	if err != nil {
		fmt.Fprintf(stderr, "shrink-load: %v\n", err)
		return 2
	}
	req := loadgen.Request{Prompt: *prompt, MaxTokens: *maxTokens, Temperature: *temp, CachePrompt: *cachePrompt}
	if *soak {
		if len(levels) != 1 {
			fmt.Fprintln(stderr, "shrink-load: --soak takes one --streams number")
			return 2
		}
		rep, err := c.Soak(ctx, loadgen.SoakOptions{Requests: *requests, Streams: levels[0], Disconnect: *disconnect,
			Malformed: *malformed, Seed: *seed, Request: req, MaxWall: *wall})
		printSoak(stdout, rep)
		if err != nil {
			fmt.Fprintf(stderr, "shrink-load: %v\n", err)
			return 1
		}
		if rep.Bad5xx > 0 || rep.Bad4xx > 0 || rep.MalformedNot4xx > 0 || len(rep.Errors) > 0 || !rep.Healthy {
			return 1
		}
		return 0
	}
	res, err := c.Sweep(ctx, levels, *requests, *wall, req)
	fmt.Fprintf(stdout, "%8s %9s %7s %7s %12s %11s %11s\n", "streams", "requests", "errors", "tokens", "gen tok/s", "TTFT p50", "TTFT p99")
	for _, l := range res {
		fmt.Fprintf(stdout, "%8d %9d %7d %7d %12.1f %11s %11s\n", l.Streams, l.Requests, l.Errors, l.Tokens, l.TokPerSec,
			l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond))
	}
	for _, l := range res {
		if l.FirstError != "" {
			fmt.Fprintf(stderr, "shrink-load: %d streams: %d failed requests, the first: %s\n", l.Streams, l.Errors, l.FirstError)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "shrink-load: %v\n", err)
		return 1
	}
	return 0
}

func printSoak(w io.Writer, r loadgen.SoakReport) {
	fmt.Fprintf(w, "requests %d: %d completed, %d disconnected on purpose, %d malformed (answered 4xx: %d)\n",
		r.Requests, r.OK, r.Disconnected, r.Malformed, r.Malformed-r.MalformedNot4xx)
	fmt.Fprintf(w, "status codes: %v\n", r.Status)
	fmt.Fprintf(w, "5xx other than 503: %d; unexpected 4xx: %d; client errors: %d\n", r.Bad5xx, r.Bad4xx, len(r.Errors))
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintf(w, "server at start: %d goroutines, RSS %.1f MiB\n", r.Start.Goroutines, float64(r.Start.RSSBytes)/(1<<20))
	fmt.Fprintf(w, "server at end:   %d goroutines, RSS %.1f MiB, %d active, %d queued\n", r.End.Goroutines, float64(r.End.RSSBytes)/(1<<20), r.End.Active, r.End.Queue)
	fmt.Fprintf(w, "health at end: %v\n", map[bool]string{true: "ok", false: "FAILED"}[r.Healthy])
}
