package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randF32(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// TestGramMatchesReference checks the BLAS Gram update and quadratic form
// against the plain loops, and against ‖M Xᵀ‖²_F computed directly from the
// activations, on odd sizes.
func TestGramMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, batches, rows, outRows int }{
		{1, 1, 1, 1}, {3, 2, 5, 4}, {17, 3, 7, 9}, {64, 2, 33, 5}, {65, 1, 1, 3},
	} {
		fast, ref := NewGram(tc.n), NewGram(tc.n)
		var all []float32
		var scratch []float64
		for range tc.batches {
			x := randF32(r, tc.rows*tc.n)
			all = append(all, x...)
			scratch = fast.Add(x, tc.rows, scratch)
			ref.addRef(x, tc.rows)
		}
		fast.Symmetrize()
		ref.Symmetrize()
		if fast.Rows != ref.Rows || fast.Rows != tc.batches*tc.rows {
			t.Fatalf("n=%d: rows %d / %d", tc.n, fast.Rows, ref.Rows)
		}
		for i := range fast.Data {
			if d := math.Abs(fast.Data[i] - ref.Data[i]); d > 1e-9*(1+math.Abs(ref.Data[i])) {
				t.Fatalf("n=%d: gram[%d] = %g, reference %g", tc.n, i, fast.Data[i], ref.Data[i])
			}
		}
		m := make([]float64, tc.outRows*tc.n)
		for i := range m {
			m[i] = r.NormFloat64()
		}
		// Direct: Σ over activation rows x and output rows m_r of (m_r·x)².
		var direct float64
		T := len(all) / tc.n
		for tok := range T {
			x := all[tok*tc.n : (tok+1)*tc.n]
			for o := range tc.outRows {
				var dot float64
				for j := range tc.n {
					dot += m[o*tc.n+j] * float64(x[j])
				}
				direct += dot * dot
			}
		}
		q, qr := fast.QuadForm(m, tc.outRows), ref.quadFormRef(m, tc.outRows)
		for _, v := range []float64{q, qr} {
			if math.Abs(v-direct) > 1e-9*direct {
				t.Errorf("n=%d: quadratic form %g, direct %g", tc.n, v, direct)
			}
		}
	}
}
