package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// testLevels is a level table like quant.NLLevels (this package imports
// nothing): ascending, uneven, both ends at full int8 range.
var testLevels = [16]int8{-127, -104, -85, -69, -54, -39, -25, -10, 5, 19, 33, 47, 62, 79, 99, 127}

// nlShapes are the layouts q4nl has: 4-bit, one scale per group.
var nlShapes = []packedShape{{4, 32, true}, {4, 64, true}, {4, 128, true}}

// TestPackedNLDefinition checks the q4nl definition against a float64
// evaluation of the decoded weights d·levels[q].
func TestPackedNLDefinition(t *testing.T) {
	checkDefinition(t, rand.New(rand.NewPCG(11, 12)), nlShapes,
		func(w *Packed, row int, xq []int8, xs []float32, _ []int32) float32 {
			return dotPackedNLRowRef(w, &testLevels, row, xq, xs)
		},
		func(w *Packed, row, i int, q uint8) (float64, float64) {
			v := float64(F16ToF32(w.Sup[row*w.SupRow+i/w.Group])) * float64(testLevels[q])
			return v, math.Abs(v)
		})
}

// checkPackedNLKernels compares the q4nl row-range and tile kernels with the
// definition bit for bit (xsum is not used: q4nl has no offsets).
func checkPackedNLKernels(t *testing.T, s packedShape, v *Packed, cols int, xq []int8, xs []float32, _ []int32, xstride, xsstride, rows, tokens int, add bool) {
	t.Helper()
	ldy, want, got, y := presetOutputs(rows, tokens)
	for tk := range tokens {
		for row := range rows {
			d := dotPackedNLRowRef(v, &testLevels, row, xq[tk*xstride:], xs[tk*xsstride:])
			if add {
				d += want[tk*ldy+row]
			}
			want[tk*ldy+row] = d
		}
	}
	exact := func(int) float64 { return 0 }
	MatPackedNL(got, ldy, v, &testLevels, xq, xs, xstride, xsstride, rows, tokens, add)
	compareExact(t, "MatPackedNL", s, rows, cols, got, want, exact)
	DotPackedNLRows(y, v, &testLevels, xq, xs, add)
	compareExact(t, "DotPackedNLRows", s, rows, cols, y, want[:rows], exact)
}

func TestPackedNLViewPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	w := randPacked(r, packedShape{4, 32, true}, 2, 64)
	xq, xs, _, _, _ := randActs(r, w, 64, 1, 0)
	for name, f := range map[string]func(){
		"short acts":    func() { DotPackedNLRows(make([]float32, 2), w, &testLevels, xq[:32], xs, false) },
		"two-level":     func() { v := *w; v.SubRow = 3; DotPackedNLRows(make([]float32, 2), &v, &testLevels, xq, xs, false) },
		"too many rows": func() { DotPackedNLRows(make([]float32, 3), w, &testLevels, xq, xs, false) },
		"hi plane":      func() { v := *w; v.HiBits = 1; DotPackedNLRows(make([]float32, 2), &v, &testLevels, xq, xs, false) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
