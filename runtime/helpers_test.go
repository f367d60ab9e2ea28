package runtime

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

var allEncodings = []quant.Encoding{quant.F32, quant.F16, quant.BF16, quant.Q8Group(32), quant.Q8Group(64), quant.Q8Group(128), quant.Q4, quant.QK(3, 32), quant.QK(5, 64), quant.QK(6, 128), quant.Q4S(32), quant.Q4NL(32), quant.Q4NL(128)}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 12345)) }

// randn fills n normal values with standard deviation sd.
func randn(r *rand.Rand, n int, sd float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * sd)
	}
	return out
}

func decodeT(tb testing.TB, p *WeightPart) []float64 {
	tb.Helper()
	rows, cols, err := dims2(p.Shape)
	if err != nil {
		tb.Fatal(err)
	}
	f := make([]float32, rows*cols)
	if err := quant.Decode(p.Encoding, f, p.Data, rows, cols); err != nil {
		tb.Fatal(err)
	}
	return testshared.Convert[float64](f)
}

// denseT encodes a random [rows, cols] matrix as a dense weight.
func denseT(tb testing.TB, r *rand.Rand, name string, enc quant.Encoding, rows, cols int, sd float64) *Weight {
	data := testshared.Encode(tb, enc, randn(r, rows*cols, sd), rows, cols)
	return DenseWeight(name, []int64{int64(rows), int64(cols)}, enc, data)
}

// lowRankT builds a random low-rank (or LoRC when lorc) weight of rank k.
func lowRankT(tb testing.TB, r *rand.Rand, name string, enc quant.Encoding, rows, cols, k int, lorc bool, sd float64) *Weight {
	w := &Weight{Name: name, Shape: []int64{int64(rows), int64(cols)}, Kind: format.KindLowRank}
	if lorc {
		w.Kind = format.KindLoRC
		w.Parts = append(w.Parts, WeightPart{Role: "w", Shape: w.Shape, Encoding: enc,
			Data: testshared.Encode(tb, enc, randn(r, rows*cols, sd), rows, cols)})
	}
	sab := math.Sqrt(sd / math.Sqrt(float64(k)))
	w.Parts = append(w.Parts,
		WeightPart{Role: "a", Shape: []int64{int64(rows), int64(k)}, Encoding: enc,
			Data: testshared.Encode(tb, enc, randn(r, rows*k, sab), rows, k)},
		WeightPart{Role: "b", Shape: []int64{int64(k), int64(cols)}, Encoding: enc,
			Data: testshared.Encode(tb, enc, randn(r, k*cols, sab), k, cols)})
	return w
}

// kindT builds a random weight of kind "dense", "lowrank" or "lorc" (rank k
// for the low-rank kinds) and its Matrix.
func kindT(tb testing.TB, r *rand.Rand, name string, enc quant.Encoding, kind string, rows, cols, k int, sd float64) (*Weight, *Matrix) {
	tb.Helper()
	var w *Weight
	if kind == "dense" {
		w = denseT(tb, r, name, enc, rows, cols, sd)
	} else {
		w = lowRankT(tb, r, name, enc, rows, cols, k, kind == "lorc", sd)
	}
	mat, err := NewMatrix(w)
	if err != nil {
		tb.Fatal(err)
	}
	return w, mat
}

// vecT encodes a 1-D tensor of n values around mean.
func vecT(tb testing.TB, r *rand.Rand, name string, enc quant.Encoding, n int, mean, sd float64) *Weight {
	v := randn(r, n, sd)
	for i := range v {
		v[i] += float32(mean)
	}
	return DenseWeight(name, []int64{int64(n)}, enc, testshared.Encode(tb, enc, v, 1, n))
}

// denseOf reconstructs any weight kind as a float64 [rows, cols] matrix from
// its encoded parts, independently of the kernels: Q + A·B.
func denseOf(tb testing.TB, w *Weight) (m []float64, rows, cols int) {
	tb.Helper()
	rows, cols, err := dims2(w.Shape)
	if err != nil {
		tb.Fatal(err)
	}
	m = make([]float64, rows*cols)
	if p, ok := w.part("w"); ok {
		copy(m, decodeT(tb, p))
	}
	if pa, ok := w.part("a"); ok {
		pb, _ := w.part("b")
		a, b := decodeT(tb, pa), decodeT(tb, pb)
		k := int(pa.Shape[1])
		for r := range rows {
			for j := range k {
				arj := a[r*k+j]
				for c := range cols {
					m[r*cols+c] += arj * b[j*cols+c]
				}
			}
		}
	}
	return m, rows, cols
}

func maxAbsDiff32(a []float32, b []float64) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}
