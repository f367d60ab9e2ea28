package runtime

import (
	"math"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
)

func TestSamplerConfigValidation(t *testing.T) {
	bad := []SamplerConfig{
		{Temperature: -1, TopP: 1},
		{Temperature: math.NaN(), TopP: 1},
		{Temperature: math.Inf(1), TopP: 1},
		{TopK: -1, TopP: 1},
		{TopP: 1.5},
		{TopP: math.NaN()},
		{TopP: -0.1},
	}
	for _, c := range bad {
		if _, err := NewSampler(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	good := []SamplerConfig{{}, {TopP: 1}, {Temperature: 0.7, TopK: 40, TopP: 0.9}, {Temperature: 2, TopP: 0.01}}
	for _, c := range good {
		if _, err := NewSampler(c); err != nil {
			t.Errorf("%+v rejected: %v", c, err)
		}
	}
}

func TestSamplerGreedyIsArgmax(t *testing.T) {
	s, _ := NewSampler(SamplerConfig{TopP: 1})
	r := newRand(1)
	for range 100 {
		l := randn(r, 1+r.IntN(50), 3)
		want := 0
		for i, v := range l {
			if v > l[want] {
				want = i
			}
		}
		if got := s.Sample(l); got != want {
			t.Fatalf("greedy %d, argmax %d", got, want)
		}
	}
	if got := s.Sample([]float32{1, 3, 3, 2}); got != 1 {
		t.Fatalf("tie: %d, want the first maximum", got)
	}
	if got := s.Sample([]float32{float32(math.NaN()), 0, 1}); got != 2 {
		t.Fatalf("NaN logit chosen: %d", got)
	}
}

// TestSamplerDistributions counts draws on a fixed seed and compares the
// frequencies with the probabilities each configuration should give.
func TestSamplerDistributions(t *testing.T) {
	probs := []float64{0.5, 0.3, 0.15, 0.05}
	logits := make([]float32, len(probs))
	for i, p := range probs {
		logits[i] = float32(math.Log(p))
	}
	softT := func(T float64, keep int) []float64 {
		w := make([]float64, len(probs))
		var s float64
		for i := range keep {
			w[i] = math.Pow(probs[i], 1/T)
			s += w[i]
		}
		for i := range w {
			w[i] /= s
		}
		return w
	}
	tests := []struct {
		name string
		cfg  SamplerConfig
		want []float64
	}{
		{"T1", SamplerConfig{Temperature: 1, TopP: 1}, softT(1, 4)},
		{"T0.5", SamplerConfig{Temperature: 0.5, TopP: 1}, softT(0.5, 4)},
		{"T2", SamplerConfig{Temperature: 2, TopP: 1}, softT(2, 4)},
		{"topk2", SamplerConfig{Temperature: 1, TopK: 2, TopP: 1}, softT(1, 2)},
		{"topk1", SamplerConfig{Temperature: 1, TopK: 1, TopP: 1}, softT(1, 1)},
		{"topp0.7", SamplerConfig{Temperature: 1, TopP: 0.7}, softT(1, 2)},
		{"topp0.85", SamplerConfig{Temperature: 1, TopP: 0.85}, softT(1, 3)},
		{"topp0.1", SamplerConfig{Temperature: 1, TopP: 0.1}, softT(1, 1)},
		{"topk3+topp0.7", SamplerConfig{Temperature: 1, TopK: 3, TopP: 0.7}, softT(1, 2)},
	}
	const n = 40000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Seed = 42
			s, err := NewSampler(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			counts := make([]int, len(probs))
			for range n {
				counts[s.Sample(logits)]++
			}
			for i, c := range counts {
				f := float64(c) / n
				if tc.want[i] == 0 && c != 0 {
					t.Fatalf("token %d drawn %d times, must never be", i, c)
				}
				if math.Abs(f-tc.want[i]) > 0.01 {
					t.Fatalf("token %d frequency %.4f, want %.4f", i, f, tc.want[i])
				}
			}
		})
	}
}

func TestSamplerSeedReproducible(t *testing.T) {
	l := randn(newRand(3), 100, 2)
	a, _ := NewSampler(SamplerConfig{Temperature: 1, TopP: 0.9, Seed: 7})
	b, _ := NewSampler(SamplerConfig{Temperature: 1, TopP: 0.9, Seed: 7})
	c, _ := NewSampler(SamplerConfig{Temperature: 1, TopP: 0.9, Seed: 8})
	same, diff := true, false
	for range 200 {
		x, y, z := a.Sample(l), b.Sample(l), c.Sample(l)
		same = same && x == y
		diff = diff || x != z
	}
	if !same || !diff {
		t.Fatalf("seeding: same seed equal %v, other seed differs %v", same, diff)
	}
}

// TestRopeLlama3Table checks the scaled frequencies of Llama 3.1's rope
// settings (head_dim 128, θ 500000, factor 8, low 1, high 4, original 8192)
// band by band.
func TestRopeLlama3Table(t *testing.T) {
	rs := &format.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
	got, err := ropeInvFreq(128, 500000, rs)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := ropeInvFreq(128, 500000, nil)
	var high, med, low int
	for i := range got {
		f := math.Pow(500000, -float64(2*i)/128)
		wl := 2 * math.Pi / f
		var want float64
		switch {
		case wl < 8192.0/4: // high frequency band: kept
			want = f
			high++
		case wl > 8192.0/1: // low frequency band: divided by the factor
			want = f / 8
			low++
		default: // interpolated band
			s := (8192/wl - 1) / (4 - 1)
			want = (1-s)*f/8 + s*f
			med++
			if !(float64(got[i]) < f && float64(got[i]) > f/8) {
				t.Errorf("i=%d: interpolated %g not between %g and %g", i, got[i], f/8, f)
			}
		}
		if math.Abs(float64(got[i])-want) > 1e-6*want {
			t.Errorf("i=%d: inv_freq %g, want %g", i, got[i], want)
		}
		if math.Abs(float64(plain[i])-f) > 1e-6*f {
			t.Errorf("i=%d: unscaled inv_freq %g, want %g", i, plain[i], f)
		}
	}
	if high == 0 || med == 0 || low == 0 {
		t.Fatalf("bands high %d, medium %d, low %d: all must occur", high, med, low)
	}
	if got[0] != 1 {
		t.Errorf("inv_freq[0] = %v, want 1", got[0])
	}
}

func TestApplyRopeRotateHalf(t *testing.T) {
	r := newRand(4)
	const heads, d, pos = 3, 10, 17
	inv, _ := ropeInvFreq(d, 10000, nil)
	x := randn(r, heads*d, 1)
	want := testshared.Convert[float64](x)
	cos, sin := make([]float32, d/2), make([]float32, d/2)
	ropeTable(cos, sin, inv, pos, 1)
	applyRope(x, heads, d, cos, sin)
	invRef := make([]float64, d/2)
	for i := range invRef {
		invRef[i] = math.Pow(10000, -float64(2*i)/d)
	}
	for h := range heads {
		rotate(want[h*d:(h+1)*d], pos, invRef)
	}
	if diff := maxAbsDiff32(x, want); diff > 1e-5 {
		t.Fatalf("rope differs by %g", diff)
	}
}
