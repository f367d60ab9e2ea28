package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestCompareHandComputed(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	tests := []struct {
		name     string
		ref, got []float32
		want     Metrics
	}{
		{"identical", []float32{3, 4}, []float32{3, 4}, Metrics{0, inf, 1, 0}},
		{"identical zero", []float32{0, 0}, []float32{0, float32(math.Copysign(0, -1))}, Metrics{0, inf, 1, 0}},
		{"empty", nil, nil, Metrics{0, inf, 1, 0}},
		// err = (−3, −4): ‖err‖ = ‖ref‖ = 5.
		{"got zero", []float32{3, 4}, []float32{0, 0}, Metrics{1, 0, 0, 4}},
		// err = (0, 1); cos = 1/√2.
		{"one off", []float32{1, 0}, []float32{1, 1}, Metrics{1, 0, 1 / math.Sqrt2, 1}},
		// ‖ref‖² = 4, ‖err‖² = 1/16: rel 1/8, SNR 10·log10(64); cos = 2/√4.0625.
		{"small error", []float32{2, 0, 0, 0}, []float32{2, 0.25, 0, 0}, Metrics{0.125, 10 * math.Log10(64), 2 / math.Sqrt(4.0625), 0.25}},
		// err = (−2, −4): rel 2, SNR 10·log10(5/20).
		{"negated", []float32{1, 2}, []float32{-1, -2}, Metrics{2, 10 * math.Log10(0.25), -1, 4}},
		{"zero reference", []float32{0, 0}, []float32{0, -0.5}, Metrics{inf, math.Inf(-1), 0, 0.5}},
		{"nan", []float32{1, float32(nan)}, []float32{1, 1}, Metrics{nan, nan, nan, nan}},
		{"inf both", []float32{float32(inf)}, []float32{float32(inf)}, Metrics{nan, nan, nan, nan}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.ref, tc.got)
			check := func(what string, g, w float64) {
				t.Helper()
				switch {
				case math.IsNaN(w):
					if !math.IsNaN(g) {
						t.Errorf("%s = %v, want NaN", what, g)
					}
				case math.IsInf(w, 0):
					if g != w {
						t.Errorf("%s = %v, want %v", what, g, w)
					}
				case math.Abs(g-w) > 1e-12*max(1, math.Abs(w)):
					t.Errorf("%s = %.15g, want %.15g", what, g, w)
				}
			}
			check("RelFrobenius", got.RelFrobenius, tc.want.RelFrobenius)
			check("SNRdB", got.SNRdB, tc.want.SNRdB)
			check("Cosine", got.Cosine, tc.want.Cosine)
			check("MaxAbs", got.MaxAbs, tc.want.MaxAbs)
		})
	}
}

// TestAccumulatorStreams checks that feeding pieces gives the metrics of the
// whole, and compares against a direct float64 computation.
func TestAccumulatorStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	n := 10007
	ref, got := make([]float32, n), make([]float32, n)
	var rr, gg, ee, rg, mx float64
	for i := range ref {
		ref[i] = float32(r.NormFloat64())
		got[i] = ref[i] + float32(r.NormFloat64()*0.01)
		x, y := float64(ref[i]), float64(got[i])
		rr, gg, ee, rg = rr+x*x, gg+y*y, ee+(y-x)*(y-x), rg+x*y
		mx = max(mx, math.Abs(y-x))
	}
	var a ErrorAccumulator
	for lo := 0; lo < n; {
		hi := min(n, lo+1+r.IntN(1000))
		a.Add(ref[lo:hi], got[lo:hi])
		lo = hi
	}
	want := Metrics{math.Sqrt(ee / rr), 10 * math.Log10(rr/ee), rg / math.Sqrt(rr*gg), mx}
	// Sums run in float32 within short blocks (for speed), so agreement
	// with the float64 reference is to about 1e-6 relative: far below the
	// three significant digits the metrics are reported with.
	for _, m := range []Metrics{a.Metrics(), Compare(ref, got)} {
		if math.Abs(m.RelFrobenius-want.RelFrobenius) > 1e-6*want.RelFrobenius ||
			math.Abs(m.SNRdB-want.SNRdB) > 1e-5 ||
			math.Abs(m.Cosine-want.Cosine) > 1e-7 ||
			m.MaxAbs != want.MaxAbs {
			t.Errorf("metrics %+v, want %+v", m, want)
		}
	}
	if want.SNRdB < 35 || want.SNRdB > 45 {
		t.Errorf("SNR of 1%% noise is %v dB, want about 40", want.SNRdB)
	}
}

func TestAccumulatorLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Add with different lengths did not panic")
		}
	}()
	var a ErrorAccumulator
	a.Add(make([]float32, 3), make([]float32, 2))
}

func BenchmarkCompare(b *testing.B) {
	ref := benchData(1 << 16)
	got := make([]float32, len(ref))
	for i := range got {
		got[i] = ref[i] * 1.001
	}
	b.SetBytes(8 << 16)
	for b.Loop() {
		Compare(ref, got)
	}
}

func TestErrorAccumulatorMerge(t *testing.T) {
	ref := []float32{1, -2, 3, 0.5, 7, -1}
	got := []float32{1.1, -2, 2.5, 0.5, 7.25, -0.75}
	var whole, a, b ErrorAccumulator
	whole.Add(ref, got)
	a.Add(ref[:2], got[:2])
	b.Add(ref[2:], got[2:])
	a.Merge(&b)
	if w, m := whole.Metrics(), a.Metrics(); math.Abs(w.RelFrobenius-m.RelFrobenius) > 1e-7 ||
		math.Abs(w.Cosine-m.Cosine) > 1e-7 || w.MaxAbs != m.MaxAbs || math.Abs(w.SNRdB-m.SNRdB) > 1e-5 {
		t.Errorf("merged %+v, whole %+v", m, w)
	}
}
