package simd

import (
	"math/rand/v2"
	"testing"
)

// TestMatQ4KIEqualsDefinition: the interleaved two-level q4 product equals
// dotPackedRowRef bit for bit on every kernel this CPU runs (see
// checkMatPackedI for the shapes); rows of 100 and 300 columns end inside
// a super-block of 256.
func TestMatQ4KIEqualsDefinition(t *testing.T) {
	checkMatPackedI(t, rand.New(rand.NewPCG(91, 92)), false, []int{32}, Q4KIOK, buildQ4KI)
}

func buildQ4KI(w *Packed, rows int) matPackedI {
	m := NewQ4KI(w, rows)
	m.Pack(w, 0, m.RowBlocks())
	return func(fs features, y []float32, ldy, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
		matQ4KIWith(fs, y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
	}
}

// FuzzMatQ4KI feeds arbitrary quant and sub-scale bytes and shapes to every
// kernel this CPU runs, against the definition.
func FuzzMatQ4KI(f *testing.F) {
	fuzzMatPackedI(f, 6, false, Q4KIOK, buildQ4KI)
}

// BenchmarkMatQ4KI is BenchmarkMatQ8I for the interleaved two-level q4
// product.
func BenchmarkMatQ4KI(b *testing.B) {
	benchMatI(b, func(r *rand.Rand, rows, cols, tokens int) func() {
		w := randPacked(r, packedShape{4, 32, false}, rows, cols)
		m := NewQ4KI(w, rows)
		m.Pack(w, 0, m.RowBlocks())
		xq, xs, xsum, xstride, xsstride := randActs(r, w, cols, tokens, 0)
		y := make([]float32, tokens*rows)
		return func() {
			MatQ4KI(y, rows, m, 0, rows, xq, xs, xsum, xstride, xsstride, tokens, false)
		}
	})
}
