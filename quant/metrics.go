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
	// The converter measures every weight, so this loop matters: sums run
	// in float32 over short blocks (4 independent lanes, so the adds do not
	// wait on each other) and are carried across blocks in float64, which
	// keeps far more precision than the metrics need; the max is taken on
	// the integer bits of |d|, which order like the values. Only ref·ref,
	// d·d and ref·d are summed: got·got and ref·got follow from them.
	const block = 256
	var rr, ee, rd float64
	var mxBits uint32
	for lo := 0; lo < len(ref); lo += block {
		r := ref[lo:min(lo+block, len(ref))]
		g := got[lo : lo+len(r)]
		var r0, r1, r2, r3, e0, e1, e2, e3, c0, c1, c2, c3 float32
		var m0, m1 uint32
		i := 0
		for ; i+4 <= len(r); i += 4 {
			x0, x1, x2, x3 := r[i], r[i+1], r[i+2], r[i+3]
			d0, d1, d2, d3 := g[i]-x0, g[i+1]-x1, g[i+2]-x2, g[i+3]-x3
			r0 += x0 * x0
			r1 += x1 * x1
			r2 += x2 * x2
			r3 += x3 * x3
			e0 += d0 * d0
			e1 += d1 * d1
			e2 += d2 * d2
			e3 += d3 * d3
			c0 += x0 * d0
			c1 += x1 * d1
			c2 += x2 * d2
			c3 += x3 * d3
			m0 = max(m0, math.Float32bits(d0)&0x7fffffff, math.Float32bits(d1)&0x7fffffff)
			m1 = max(m1, math.Float32bits(d2)&0x7fffffff, math.Float32bits(d3)&0x7fffffff)
		}
		for ; i < len(r); i++ {
			d := g[i] - r[i]
			r0 += r[i] * r[i]
			e0 += d * d
			c0 += r[i] * d
			m0 = max(m0, math.Float32bits(d)&0x7fffffff)
		}
		rr += float64((r0 + r1) + (r2 + r3))
		ee += float64((e0 + e1) + (e2 + e3))
		rd += float64((c0 + c1) + (c2 + c3))
		mxBits = max(mxBits, m0, m1)
	}
	// |got|² = |ref|² + 2 ref·d + |d|² and ref·got = |ref|² + ref·d.
	gg := rr + 2*rd + ee
	rg := rr + rd
	mx := float64(math.Float32frombits(mxBits))
	a.refSq += rr
	a.gotSq += max(gg, 0)
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
