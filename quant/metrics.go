package quant

import (
	"fmt"
	"math"
)

// Metrics measures how far an approximation got is from its reference ref
// (typically a float32 tensor and its decoded encoding), with err = got−ref:
//
//   - RelFrobenius = ‖err‖ / ‖ref‖ (Euclidean norms over all elements).
//   - SNRdB = 10·log10(‖ref‖² / ‖err‖²), signal-to-noise ratio in decibels.
//   - Cosine = ⟨ref, got⟩ / (‖ref‖·‖got‖), clamped to [−1, 1].
//   - MaxAbs = max |err_i|.
//
// Edge cases, chosen so a perfect encoding always reads as perfect and a
// hopeless one never as good:
//
//   - identical (err = 0 everywhere, including both all-zero or empty):
//     RelFrobenius 0, SNRdB +Inf, Cosine 1, MaxAbs 0;
//   - zero reference with nonzero error: RelFrobenius +Inf, SNRdB −Inf,
//     Cosine 0;
//   - exactly one of ref and got all zero (and not identical): Cosine 0;
//   - any NaN or ±Inf among the inputs: all four are NaN.
type Metrics struct {
	RelFrobenius float64
	SNRdB        float64
	Cosine       float64
	MaxAbs       float64
}

func (m Metrics) String() string {
	return fmt.Sprintf("rel %.3g, snr %.2f dB, cos %.6f, max %.3g", m.RelFrobenius, m.SNRdB, m.Cosine, m.MaxAbs)
}

// ErrorAccumulator gathers Metrics over data that arrives in pieces (a
// tensor decoded row by row, or many tensors), summing in float64. The zero
// value is ready to use; it is not safe for concurrent use.
type ErrorAccumulator struct {
	refSq, gotSq, errSq, dot float64
	maxAbs                   float64
	nonFinite                bool
}

// Add folds in one more piece; ref and got must have the same length (a
// mismatch is a caller bug and panics).
func (a *ErrorAccumulator) Add(ref, got []float32) {
	if len(ref) != len(got) {
		panic(fmt.Sprintf("quant.ErrorAccumulator.Add: %d reference values but %d approximations", len(ref), len(got)))
	}
	got = got[:len(ref)]
	// Local partial sums keep long streams accurate (each Add contributes one
	// rounded sum) and let the loop stay in registers.
	// Two interleaved sets of sums halve the dependency chains, which is
	// what limits this loop (the converter measures every weight).
	var rr, gg, ee, rg, mx float64
	var rr1, gg1, ee1, rg1, mx1 float64
	i := 0
	for ; i+2 <= len(ref); i += 2 {
		x, y := float64(ref[i]), float64(got[i])
		x1, y1 := float64(ref[i+1]), float64(got[i+1])
		d := y - x // exact: both are float32
		d1 := y1 - x1
		rr += x * x
		rr1 += x1 * x1
		gg += y * y
		gg1 += y1 * y1
		ee += d * d
		ee1 += d1 * d1
		rg += x * y
		rg1 += x1 * y1
		mx = max(mx, math.Abs(d))
		mx1 = max(mx1, math.Abs(d1))
	}
	for ; i < len(ref); i++ {
		x, y := float64(ref[i]), float64(got[i])
		d := y - x
		rr += x * x
		gg += y * y
		ee += d * d
		rg += x * y
		mx = max(mx, math.Abs(d))
	}
	rr, gg, ee, rg, mx = rr+rr1, gg+gg1, ee+ee1, rg+rg1, max(mx, mx1)
	a.refSq += rr
	a.gotSq += gg
	a.errSq += ee
	a.dot += rg
	a.maxAbs = max(a.maxAbs, mx)
	// A NaN or Inf input makes at least one sum NaN or Inf; checking the
	// partial sums afterwards keeps the loop free of branches.
	if math.IsNaN(rr+gg+ee+rg+mx) || math.IsInf(rr+gg+ee+rg+mx, 0) {
		for i, r := range ref {
			if isNonFinite32(r) || isNonFinite32(got[i]) {
				a.nonFinite = true
				break
			}
		}
	}
}

func isNonFinite32(f float32) bool { return math.Float32bits(f)&0x7f800000 == 0x7f800000 }

// Merge folds in another accumulator's pieces, so that parts of one tensor
// measured in parallel give the metrics of the whole.
func (a *ErrorAccumulator) Merge(b *ErrorAccumulator) {
	a.refSq += b.refSq
	a.gotSq += b.gotSq
	a.errSq += b.errSq
	a.dot += b.dot
	a.maxAbs = max(a.maxAbs, b.maxAbs)
	a.nonFinite = a.nonFinite || b.nonFinite
}

// Metrics reports what has been added so far.
func (a *ErrorAccumulator) Metrics() Metrics {
	if a.nonFinite {
		nan := math.NaN()
		return Metrics{nan, nan, nan, nan}
	}
	if a.errSq == 0 {
		return Metrics{RelFrobenius: 0, SNRdB: math.Inf(1), Cosine: 1, MaxAbs: 0}
	}
	m := Metrics{MaxAbs: a.maxAbs}
	if a.refSq == 0 {
		m.RelFrobenius, m.SNRdB = math.Inf(1), math.Inf(-1)
	} else {
		m.RelFrobenius = math.Sqrt(a.errSq / a.refSq)
		m.SNRdB = 10 * math.Log10(a.refSq/a.errSq)
	}
	if a.refSq != 0 && a.gotSq != 0 {
		m.Cosine = max(-1, min(1, a.dot/(math.Sqrt(a.refSq)*math.Sqrt(a.gotSq))))
	}
	return m
}

// Compare is Metrics over one pair of equally long slices.
func Compare(ref, got []float32) Metrics {
	var a ErrorAccumulator
	a.Add(ref, got)
	return a.Metrics()
}
