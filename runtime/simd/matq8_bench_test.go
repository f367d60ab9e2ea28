package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMatQ8 is the q8 matrix-matrix kernel over a block of rows that
// stays in cache (rows=32, the runtime's row block) and over a matrix that
// streams from memory (rows=4096), for 1 to 16 tokens: ns/op divided by
// the token count, against tokens=1, is the kernel's gain from batching.
// SetBytes counts weight bytes, so MB/s is weight bandwidth per call.
func BenchmarkMatQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	const n, group = 2048, 32
	ng := n / group
	for _, rows := range []int{32, 4096} {
		wq, ws := randQ8(r, rows*n, -128), randF16(r, rows*ng)
		for _, tokens := range []int{1, 2, 4, 8, 16} {
			xq, xs := randQ8(r, tokens*n, -127), randF32(r, tokens*ng)
			y := make([]float32, tokens*rows)
			b.Run(fmt.Sprintf("rows=%d/tokens=%d", rows, tokens), func(b *testing.B) {
				b.SetBytes(int64(rows * (n + 2*ng)))
				for b.Loop() {
					MatQ8(y, rows, wq, ws, n, ng, xq, xs, n, ng, rows, tokens, n, group, false)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens*rows*n/64), "ns/out-chunk")
			})
		}
	}
}

// BenchmarkMatQ8Stream walks a matrix larger than the last-level cache
// (the 32000×2048 output head of a 1.1B model) in blocks of 32 rows, all
// tokens per block, as the runtime's tiles do: the weights stream from
// memory once per call, and the kernel must overlap that with the work.
func BenchmarkMatQ8Stream(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	const rows, n, group, blk = 32000, 2048, 32, 32
	ng := n / group
	wq, ws := randQ8(r, rows*n, -128), randF16(r, rows*ng)
	for _, tokens := range []int{1, 8} {
		xq, xs := randQ8(r, tokens*n, -127), randF32(r, tokens*ng)
		y := make([]float32, tokens*rows)
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			b.SetBytes(int64(rows * (n + 2*ng)))
			for b.Loop() {
				for r0 := 0; r0 < rows; r0 += blk {
					MatQ8(y[r0:], rows, wq[r0*n:(r0+blk)*n], ws[r0*ng:(r0+blk)*ng], n, ng, xq, xs, n, ng, blk, tokens, n, group, false)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens*rows*n/64), "ns/out-chunk")
		})
	}
}
