package bench

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/quant"
)

const demoModel = "../demo/llama-stories-tiny"

func TestSetStats(t *testing.T) {
	for _, tt := range []struct {
		in          []float64
		median, std float64
	}{
		{[]float64{5}, 5, 0},
		{[]float64{3, 1, 2}, 2, 1},
		{[]float64{4, 1, 3, 2}, 2.5, math.Sqrt(5.0 / 3)},
	} {
		var r Result
		r.setStats(tt.in)
		if r.TokS != tt.median || math.Abs(r.StdDev-tt.std) > 1e-12 || len(r.Samples) != len(tt.in) {
			t.Errorf("%v: median %v ± %v, want %v ± %v", tt.in, r.TokS, r.StdDev, tt.median, tt.std)
		}
	}
}

func convertDemo(t *testing.T, q quant.Encoding, embed *quant.Encoding) string {
	t.Helper()
	return demotest.Convert(t, demoModel, convert.Policy{Quant: q, Embed: embed})
}

func TestRun(t *testing.T) {
	path := convertDemo(t, quant.Q8, nil)
	var progress int
	rs, err := Run(context.Background(), path, Options{Threads: []int{1, 2}, PP: 8, TG: 4, Reps: 2, Seed: 1,
		Progress: func(r []Result) { progress += len(r) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 || progress != 4 {
		t.Fatalf("%d results, %d reported; want 4", len(rs), progress)
	}
	f, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, r := range rs {
		test, threads := []string{"pp8", "tg4"}[i%2], 1+i/2
		if r.Test != test || r.Threads != threads || len(r.Samples) != 2 || !(r.TokS > 0) {
			t.Errorf("result %d: %s threads=%d, %d samples, %v t/s", i, r.Test, r.Threads, len(r.Samples), r.TokS)
		}
		if r.Size != TensorBytes(f) || !strings.HasPrefix(r.Model, "llama ") || r.Type != WeightType(f) {
			t.Errorf("result %d describes the model as %q, %d bytes, %q", i, r.Model, r.Size, r.Type)
		}
		if (r.Test == "tg4") != (r.BytesPerToken > 0) || r.Bandwidth != 0 || r.Roofline != 0 {
			t.Errorf("result %d: %d bytes/token, bandwidth %v without a probe", i, r.BytesPerToken, r.Bandwidth)
		}
	}
	if _, err := Run(context.Background(), path, Options{Threads: []int{1}, PP: 1 << 20, Reps: 1}); err == nil || !strings.Contains(err.Error(), "exceed the model context") {
		t.Errorf("a prompt longer than the context: %v", err)
	}
}

func TestWeightType(t *testing.T) {
	f16 := quant.F16
	for _, tt := range []struct {
		q     quant.Encoding
		embed *quant.Encoding
		want  string
	}{
		{quant.F32, nil, "f32"},
		{quant.Q8, &f16, "f16+q8"}, // the demo's embeddings outweigh its projections
	} {
		f, err := format.Open(convertDemo(t, tt.q, tt.embed))
		if err != nil {
			t.Fatal(err)
		}
		if got := WeightType(f); got != tt.want {
			t.Errorf("%v with embeddings %v: %q, want %q", tt.q, tt.embed, got, tt.want)
		}
		f.Close()
	}
}
