package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// testLevels is a level table like quant.NLLevels (this package imports
// nothing): ascending, uneven, both ends at full int8 range.
var testLevels = [16]int8{-127, -104, -85, -69, -54, -39, -25, -10, 5, 19, 33, 47, 62, 79, 99, 127}

// TestPackedNLDefinition checks the q4nl definition against a float64
// evaluation of the decoded weights d·levels[q].
func TestPackedNLDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, g := range []int{32, 64, 128} {
		s := packedShape{4, g, true}
		for _, cols := range []int{32, 37, 96, 352, 384, 1000} {
			w := randPacked(r, s, 3, cols)
			xq, xs, _, _, _ := randActs(r, w, cols, 1, 0)
			q := make([]uint8, 32*w.Blocks)
			for row := range 3 {
				w.unpackRowRef(q, row)
				var want, abs float64
				for i := range cols {
					d := float64(F16ToF32(w.Sup[row*w.SupRow+i/g]))
					v := d * float64(testLevels[q[i]]) * float64(xq[i]) * float64(xs[i/32])
					want += v
					abs += math.Abs(v)
				}
				got := dotPackedNLRowRef(w, &testLevels, row, xq, xs)
				if math.Abs(float64(got)-want) > 1e-5*abs+1e-30 {
					t.Fatalf("g%d cols %d row %d: definition %v, decoded weights give %v", g, cols, row, got, want)
				}
			}
		}
	}
}

// TestPackedNLKernels compares the q4nl row-range and tile kernels with the
// definition bit for bit on odd shapes, views not starting at row 0, with
// and without accumulation.
func TestPackedNLKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, g := range []int{32, 64, 128} {
		s := packedShape{4, g, true}
		for _, sh := range [][3]int{{1, 32, 1}, {5, 37, 3}, {4, 352, 9}, {7, 384, 2}, {9, 160, 17}, {3, 1000, 5}} {
			rows, cols, tokens := sh[0], sh[1], sh[2]
			w := randPacked(r, s, rows+2, cols)
			xq, xs, _, xstride, xsstride := randActs(r, w, cols, tokens, 1)
			v := w.Rows(1, rows+1)
			for _, add := range []bool{false, true} {
				ldy := rows + 3
				want := make([]float32, tokens*ldy)
				got := make([]float32, tokens*ldy)
				for i := range want {
					want[i] = float32(i)
					got[i] = float32(i)
				}
				for tk := range tokens {
					for row := range rows {
						y := dotPackedNLRowRef(&v, &testLevels, row, xq[tk*xstride:], xs[tk*xsstride:])
						if add {
							y += want[tk*ldy+row]
						}
						want[tk*ldy+row] = y
					}
				}
				MatPackedNL(got, ldy, &v, &testLevels, xq, xs, xstride, xsstride, rows, tokens, add)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("MatPackedNL g%d [%d, %d]×%d element %d: got %v, definition %v", g, rows, cols, tokens, i, got[i], want[i])
					}
				}
				y := make([]float32, rows)
				for i := range y {
					y[i] = float32(i)
				}
				DotPackedNLRows(y, &v, &testLevels, xq, xs, add)
				for i := range y {
					if y[i] != want[i] {
						t.Fatalf("DotPackedNLRows g%d [%d, %d] row %d: got %v, definition %v", g, rows, cols, i, y[i], want[i])
					}
				}
			}
		}
	}
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
