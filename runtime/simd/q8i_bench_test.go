package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMatQ8I times the interleaved q8 product at decode and batched
// token counts, on a matrix that stays in L2 (128 KiB) and on one that
// streams from memory (32 MiB), in multiply-adds per second.
func BenchmarkMatQ8I(b *testing.B) {
	benchMatI(b, func(r *rand.Rand, rows, cols, tokens int) func() {
		c := newQ8ICase(r, rows, cols, 32, tokens)
		m := NewQ8I(rows, cols, 32)
		m.Pack(c.wq, c.ws, 0, m.Blocks())
		y := make([]float32, (tokens-1)*c.ldy+rows)
		return func() {
			MatQ8I(y, c.ldy, m, 0, rows, c.xq, c.xs, c.xe, c.xstride, c.xsstride, tokens, false)
		}
	})
}

// benchMatI runs an interleaved product's benchmark over BenchmarkMatQ8I's
// shapes (2048 columns; 64 and 16384 rows; 1, 4 and 8 tokens): setup packs
// the matrix and draws the activations, untimed, and returns the product
// call to time.
func benchMatI(b *testing.B, setup func(r *rand.Rand, rows, cols, tokens int) func()) {
	const cols = 2048
	for _, rows := range []int{64, 16384} {
		for _, tokens := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("rows=%d/tokens=%d", rows, tokens), func(b *testing.B) {
				run := setup(rand.New(rand.NewPCG(1, 2)), rows, cols, tokens)
				b.ResetTimer()
				for range b.N {
					run()
				}
				b.ReportMetric(float64(rows*cols*tokens)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}
