package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestMatQ8EqualsRows: every (row, token) result of a q8 matrix-matrix
// product is bit for bit what the Rows kernel gives that token alone over
// the same rows. Batched decode depends on it: a sequence decoded in a
// batch must get exactly the logits it gets decoded alone. Shapes cover
// the register tile (group 32, whole pairs of groups), odd group counts
// and other group sizes (Rows only), row counts off the tile height, odd
// token counts (the last token goes through Rows), add, and tokens whose
// activations are all zero (the sign of a zero sum).
func TestMatQ8EqualsRows(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, fs := range testFeatureSets() {
		for _, group := range []int{32, 64, 48} {
			for _, n := range []int{32, 64, 96, 128, 192, 288, 512, 576, 2048} {
				ng := (n + group - 1) / group
				for _, rows := range []int{1, 4, 5, 8, 13, 32} {
					for _, tokens := range []int{1, 2, 3, 4, 5, 6, 7, 8, 11} {
						for _, add := range []bool{false, true} {
							name := fmt.Sprintf("%s g=%d n=%d rows=%d tokens=%d add=%v", fs.name, group, n, rows, tokens, add)
							stride, sstride, xstride, xsstride, ldy := n+64, ng+3, n+32, ng+1, rows+1
							wq := randQ8(r, (rows-1)*stride+n, -128)
							ws := randF16(r, (rows-1)*sstride+ng)
							xq := randQ8(r, (tokens-1)*xstride+n, -127)
							xs := randF32(r, (tokens-1)*xsstride+ng)
							if tokens > 2 {
								clear(xq[xstride : xstride+n]) // token 1: a zero vector
							}
							y0 := randF32(r, (tokens-1)*ldy+rows)
							y := append([]float32(nil), y0...)
							matQ8With(fs.f, y, ldy, wq, ws, stride, sstride, xq, xs, xstride, xsstride, rows, tokens, n, group, add)
							for tok := range tokens {
								one := append([]float32(nil), y0[tok*ldy:tok*ldy+rows]...)
								dotQ8RowsWith(fs.f, one, wq, ws, stride, sstride, xq[tok*xstride:tok*xstride+n], xs[tok*xsstride:tok*xsstride+ng], group, add)
								for row, want := range one {
									if got := y[tok*ldy+row]; math.Float32bits(got) != math.Float32bits(want) {
										t.Fatalf("%s: row %d token %d: matrix product %v (%#08x), Rows alone %v (%#08x)",
											name, row, tok, got, math.Float32bits(got), want, math.Float32bits(want))
									}
								}
							}
						}
					}
				}
			}
		}
	}
}
