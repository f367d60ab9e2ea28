package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/membw"
	"github.com/shrink-llm/shrink/runtime"
)

// Options are the tests Run performs.
type Options struct {
	Threads []int // one set of tests per thread count
	PP, TG  int   // prompt and generated tokens (0 skips that test)
	Reps    int   // timed repetitions of each test, after one untimed
	// BandwidthBytes is the bandwidth probe's buffer (0: no bandwidth
	// measurement, no roofline).
	BandwidthBytes int64
	Seed           uint64 // of the random prompt and generated tokens
	// Progress, if set, receives each thread count's results as they are
	// measured.
	Progress func([]Result)
}

// Result is one test at one thread count.
type Result struct {
	Model   string    `json:"model"`
	Size    int64     `json:"size_bytes"`
	Params  int64     `json:"params"`
	Type    string    `json:"type"`
	Threads int       `json:"threads"`
	Test    string    `json:"test"`
	Tokens  int       `json:"tokens"`
	TokS    float64   `json:"tok_s"`   // median
	StdDev  float64   `json:"stddev"`  // of the per-repetition rates
	Samples []float64 `json:"samples"` // tokens per second of each repetition
	// Decode only: weight bytes read per token, the bandwidth with the same
	// thread count (the larger of two measurements, right before and right
	// after the test), and t/s × bytes / bw.
	BytesPerToken int64   `json:"bytes_per_token,omitempty"`
	Bandwidth     float64 `json:"bandwidth_bytes_s,omitempty"`
	Roofline      float64 `json:"roofline,omitempty"`
}

// Run opens the .shrink file at path and runs the tests at every thread
// count.
func Run(ctx context.Context, path string, o Options) ([]Result, error) {
	f, err := format.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg := f.Config()
	var params int64
	for _, t := range f.Tensors() {
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		params += n
	}
	info := Result{
		Model:  fmt.Sprintf("%s %s", cfg.Arch, eval.HumanCount(params)),
		Size:   TensorBytes(f),
		Params: params,
		Type:   WeightType(f),
	}
	// Positions the cache must hold; a small model may not fit the defaults.
	if need := max(o.PP, o.TG); need > cfg.ContextLength {
		return nil, fmt.Errorf("bench: --pp %d / --tg %d exceed the model context of %d tokens", o.PP, o.TG, cfg.ContextLength)
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5bd1e995))
	prompt := make([]int, o.PP)
	for i := range prompt {
		prompt[i] = r.IntN(cfg.VocabSize)
	}
	gen := make([]int, o.TG)
	for i := range gen {
		gen[i] = r.IntN(cfg.VocabSize)
	}
	var probe *membw.Probe
	if o.TG > 0 && o.BandwidthBytes > 0 {
		if probe, err = membw.New(o.BandwidthBytes); err != nil {
			return nil, err
		}
	}
	var results []Result
	for _, th := range o.Threads {
		rs, err := benchThreads(ctx, f, th, info, o, prompt, gen, probe)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		// The model just closed is garbage now, but the collector would
		// not run before the heap had grown by about its size: loading the
		// next thread count's model (its interleaved weight copies are on
		// the Go heap) would then hold most of two models at once. Return
		// the first to the OS before loading the next (BENCHMARKS.md §1
		// has the peak RSS either way).
		debug.FreeOSMemory()
		results = append(results, rs...)
		if o.Progress != nil {
			o.Progress(rs)
		}
	}
	return results, nil
}

// benchThreads loads the model with th threads, runs the tests and closes
// it.
func benchThreads(ctx context.Context, f *format.File, th int, info Result, o Options, prompt, gen []int, probe *membw.Probe) ([]Result, error) {
	m, err := runtime.New(runtime.FileSource{F: f}, nil, runtime.Options{Threads: th})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return benchModel(ctx, m, info, o, prompt, gen, probe)
}

func benchModel(ctx context.Context, m *runtime.Model, info Result, o Options, prompt, gen []int, probe *membw.Probe) ([]Result, error) {
	s, err := m.NewSession(max(o.PP, o.TG))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	info.Threads = m.Threads()
	var out []Result
	if o.PP > 0 {
		samples, err := repeat(ctx, o.Reps, o.PP, func() error {
			s.Reset()
			_, err := s.Prefill(ctx, prompt, false)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("bench pp%d: %w", o.PP, err)
		}
		r := info
		r.Test, r.Tokens = fmt.Sprintf("pp%d", o.PP), o.PP
		r.setStats(samples)
		out = append(out, r)
	}
	if o.TG > 0 {
		r := info
		r.Test, r.Tokens = fmt.Sprintf("tg%d", o.TG), o.TG
		r.BytesPerToken = m.DecodeBytes()
		if probe != nil {
			if r.Bandwidth, err = probe.Measure(ctx, m.Threads(), 5); err != nil {
				return nil, err
			}
		}
		samples, err := repeat(ctx, o.Reps, o.TG, func() error {
			s.Reset()
			for _, t := range gen {
				if _, err := s.Decode(ctx, t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("bench tg%d: %w", o.TG, err)
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

// setStats sets the median and the sample standard deviation of samples.
func (r *Result) setStats(samples []float64) {
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

// TensorBytes is the size of all tensor data in the file.
func TensorBytes(f *format.File) int64 {
	var n int64
	for _, t := range f.Tensors() {
		for i := range t.Parts {
			n += int64(len(f.PartData(&t.Parts[i])))
		}
	}
	return n
}

// WeightType names the encodings of the 2-D tensors, largest share first
// ("q8", or "q8+f16" when the embeddings are kept at f16).
func WeightType(f *format.File) string {
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
