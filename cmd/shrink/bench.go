package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/membw"
	"github.com/shrink-llm/shrink/runtime"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure prompt processing and generation speed (like llama-bench) against the memory-bandwidth roofline",
		Description: "For each thread count: ppN prefills N random tokens into an empty cache (logits of the last\n" +
			"position only); tgN decodes N tokens one at a time from an empty cache. Each test runs once to\n" +
			"warm up, then --reps times; t/s is the median ± the standard deviation. Right before the\n" +
			"decode test, and again right after it, the memory read bandwidth is measured with the same\n" +
			"thread count; roofline is t/s × weight bytes read per decoded token / the larger of the two.",
		ArgsUsage: "FILE.shrink",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "threads", Aliases: []string{"t"}, Value: cli.NewStringSlice("1", "2"), Usage: "thread counts `N` (repeatable or a comma list)"},
			&cli.IntFlag{Name: "pp", Value: 128, Usage: "prompt `TOKENS` for the prefill test (0 = skip)"},
			&cli.IntFlag{Name: "tg", Value: 64, Usage: "generated `TOKENS` for the decode test (0 = skip)"},
			&cli.IntFlag{Name: "reps", Aliases: []string{"r"}, Value: 5, Usage: "timed `REPETITIONS` of each test"},
			&cli.Int64Flag{Name: "bw-mib", Value: membw.DefaultBytes >> 20, Usage: "bandwidth probe buffer `MIB` (0 = no bandwidth measurement)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random `SEED` for the prompt tokens"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "one .shrink file"); err != nil {
				return err
			}
			threads, err := parseThreads(c.StringSlice("threads"))
			if err != nil {
				return err
			}
			a := benchArgs{
				path: c.Args().First(), threads: threads, pp: c.Int("pp"), tg: c.Int("tg"),
				reps: c.Int("reps"), bwBytes: c.Int64("bw-mib") << 20, seed: c.Uint64("seed"), json: c.Bool("json"),
			}
			if a.pp < 0 || a.tg < 0 || a.pp+a.tg == 0 {
				return usagef("bench: --pp %d and --tg %d must be non-negative and not both 0", a.pp, a.tg)
			}
			if a.reps < 1 {
				return usagef("bench: --reps %d: want at least 1", a.reps)
			}
			if a.bwBytes < 0 {
				return usagef("bench: --bw-mib must not be negative")
			}
			return doBench(c.Context, c.App.Writer, c.App.ErrWriter, a)
		},
	}
}

// parseThreads reads "1,2" style lists, possibly given several times.
func parseThreads(vals []string) ([]int, error) {
	var out []int
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > runtime.MaxThreads {
				return nil, usagef("--threads: %q is not a thread count from 1 to %d", clip(f), runtime.MaxThreads)
			}
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--threads: no thread count given")
	}
	return out, nil
}

type benchArgs struct {
	path         string
	threads      []int
	pp, tg, reps int
	bwBytes      int64
	seed         uint64
	json         bool
}

// benchResult is one row of the table (and one JSON record).
type benchResult struct {
	Model   string    `json:"model"`
	Size    int64     `json:"size_bytes"`
	Params  int64     `json:"params"`
	Type    string    `json:"type"`
	Threads int       `json:"threads"`
	Test    string    `json:"test"`
	Tokens  int       `json:"tokens"`
	TokS    float64   `json:"tok_s"`   // median
	StdDev  float64   `json:"stddev"`  // of the per-repetition tok/s
	Samples []float64 `json:"samples"` // tok/s of each repetition
	// Decode only: weight bytes read per token, the bandwidth with the same
	// thread count (the larger of two measurements, right before and right
	// after the test), and t/s × bytes / bw.
	BytesPerToken int64   `json:"bytes_per_token,omitempty"`
	Bandwidth     float64 `json:"bandwidth_bytes_s,omitempty"`
	Roofline      float64 `json:"roofline,omitempty"`
}

func doBench(ctx context.Context, stdout, stderr io.Writer, a benchArgs) error {
	f, err := format.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg := f.Config()
	var params int64
	for _, t := range f.Tensors() {
		params += numel(t.Shape)
	}
	info := benchResult{
		Model:  fmt.Sprintf("%s %s", cfg.Arch, humanCount(params)),
		Size:   tensorBytes(f),
		Params: params,
		Type:   weightType(f),
	}
	// Positions the cache must hold; a small model may not fit the defaults.
	need := max(a.pp, a.tg)
	if need > cfg.ContextLength {
		return fmt.Errorf("bench: --pp %d / --tg %d exceed the model context of %d tokens", a.pp, a.tg, cfg.ContextLength)
	}
	r := rand.New(rand.NewPCG(a.seed, a.seed^0x5bd1e995))
	prompt := make([]int, a.pp)
	for i := range prompt {
		prompt[i] = r.IntN(cfg.VocabSize)
	}
	gen := make([]int, a.tg)
	for i := range gen {
		gen[i] = r.IntN(cfg.VocabSize)
	}
	var probe *membw.Probe
	if a.tg > 0 && a.bwBytes > 0 {
		if probe, err = membw.New(a.bwBytes); err != nil {
			return err
		}
	}
	var results []benchResult
	for _, th := range a.threads {
		m, err := runtime.New(runtime.FileSource{F: f}, nil, runtime.Options{Threads: th})
		if err != nil {
			return fmt.Errorf("%s: %w", a.path, err)
		}
		rs, err := benchModel(ctx, m, info, a, prompt, gen, probe)
		m.Close()
		if err != nil {
			return err
		}
		results = append(results, rs...)
		if !a.json {
			// Rows appear as they are measured; the final table repeats them.
			for _, r := range rs {
				fmt.Fprintf(stderr, "%s threads=%d: %.2f t/s\n", r.Test, r.Threads, r.TokS)
			}
		}
	}
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	printBench(stdout, results)
	return nil
}

func benchModel(ctx context.Context, m *runtime.Model, info benchResult, a benchArgs, prompt, gen []int, probe *membw.Probe) ([]benchResult, error) {
	s, err := m.NewSession(max(a.pp, a.tg))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	info.Threads = m.Threads()
	var out []benchResult
	if a.pp > 0 {
		samples, err := repeat(ctx, a.reps, a.pp, func() error {
			s.Reset()
			_, err := s.Prefill(ctx, prompt, false)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("bench pp%d: %w", a.pp, err)
		}
		r := info
		r.Test, r.Tokens = fmt.Sprintf("pp%d", a.pp), a.pp
		r.setStats(samples)
		out = append(out, r)
	}
	if a.tg > 0 {
		r := info
		r.Test, r.Tokens = fmt.Sprintf("tg%d", a.tg), a.tg
		r.BytesPerToken = m.DecodeBytes()
		if probe != nil {
			if r.Bandwidth, err = probe.Measure(ctx, m.Threads(), 5); err != nil {
				return nil, err
			}
		}
		samples, err := repeat(ctx, a.reps, a.tg, func() error {
			s.Reset()
			for _, t := range gen {
				if _, err := s.Decode(ctx, t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("bench tg%d: %w", a.tg, err)
		}
		r.setStats(samples)
		if probe != nil {
			// Memory bandwidth drifts from minute to minute on shared
			// machines (the 2-thread figure most); the roofline uses the
			// larger of the measurements taken right before and right
			// after the decode test.
			after, err := probe.Measure(ctx, m.Threads(), 5)
			if err != nil {
				return nil, err
			}
			r.Bandwidth = max(r.Bandwidth, after)
			r.Roofline = r.TokS * float64(r.BytesPerToken) / r.Bandwidth
		}
		out = append(out, r)
	}
	return out, nil
}

// repeat runs f once untimed, then reps timed times, and returns tokens/s of
// each timed run.
func repeat(ctx context.Context, reps, tokens int, f func() error) ([]float64, error) {
	if err := f(); err != nil {
		return nil, err
	}
	samples := make([]float64, 0, reps)
	for range reps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		samples = append(samples, float64(tokens)/time.Since(start).Seconds())
	}
	return samples, nil
}

func (r *benchResult) setStats(samples []float64) {
	r.Samples = samples
	s := slices.Clone(samples)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		r.TokS = s[n/2]
	} else {
		r.TokS = (s[n/2-1] + s[n/2]) / 2
	}
	if n < 2 {
		return
	}
	var mean, ss float64
	for _, v := range s {
		mean += v
	}
	mean /= float64(n)
	for _, v := range s {
		ss += (v - mean) * (v - mean)
	}
	r.StdDev = math.Sqrt(ss / float64(n-1))
}

func printBench(w io.Writer, results []benchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "model\tsize\tparams\ttype\tthreads\ttest\tt/s\tweights/token\tmem GB/s\troofline\t")
	for _, r := range results {
		bpt, bw, roof := "-", "-", "-"
		if r.BytesPerToken > 0 {
			bpt = humanBytes(r.BytesPerToken)
		}
		if r.Bandwidth > 0 {
			bw = fmt.Sprintf("%.1f", r.Bandwidth/1e9)
			roof = fmt.Sprintf("%.0f%%", 100*r.Roofline)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%.2f ± %.2f\t%s\t%s\t%s\t\n",
			r.Model, humanBytes(r.Size), humanCount(r.Params), r.Type, r.Threads, r.Test, r.TokS, r.StdDev, bpt, bw, roof)
	}
	tw.Flush()
}

// tensorBytes is the size of all tensor data in the file.
func tensorBytes(f *format.File) int64 {
	var n int64
	for _, t := range f.Tensors() {
		for i := range t.Parts {
			n += int64(len(f.PartData(&t.Parts[i])))
		}
	}
	return n
}

// weightType names the encodings of the 2-D tensors, largest share first
// ("q8", or "q8+f16" when the embeddings are kept at f16).
func weightType(f *format.File) string {
	bytes := map[string]int64{}
	for _, t := range f.Tensors() {
		if len(t.Shape) != 2 {
			continue
		}
		for i := range t.Parts {
			p := &t.Parts[i]
			bytes[p.Encoding.String()] += int64(len(f.PartData(p)))
		}
	}
	names := make([]string, 0, len(bytes))
	for n := range bytes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if bytes[names[i]] != bytes[names[j]] {
			return bytes[names[i]] > bytes[names[j]]
		}
		return names[i] < names[j]
	})
	return strings.Join(names, "+")
}
