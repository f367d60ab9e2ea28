package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMatQKIEqualsDefinition: the interleaved two-level q4 and q6 products
// equal dotPackedRowRef bit for bit on every kernel this CPU runs (see
// checkMatPackedI for the shapes); rows of 100 and 300 columns end inside
// a super-block of 256.
func TestMatQKIEqualsDefinition(t *testing.T) {
	for _, bits := range []int{4, 6} {
		checkMatPackedI(t, rand.New(rand.NewPCG(91, uint64(bits))), []packedShape{{bits, 32, false}}, QKIOK, buildQKI)
	}
}

// buildQKI repacks w's rows for the interleaved two-level product.
func buildQKI(w *Packed, rows int) matPackedI {
	m := NewQKI(w, rows)
	m.Pack(w, 0, m.RowBlocks())
	return func(fs features, y []float32, ldy, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
		matQKIWith(fs, y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
	}
}

// FuzzMatQKI feeds arbitrary quant, high-bit and sub-scale bytes and shapes
// to every kernel this CPU runs, against the definition.
func FuzzMatQKI(f *testing.F) {
	fuzzMatPackedI(f, 6, []int{32}, func(r *rand.Rand, group int) packedShape { return packedShape{4 + 2*r.IntN(2), group, false} }, QKIOK, buildQKI)
}

// BenchmarkMatQKI is BenchmarkMatQ8I for the interleaved two-level q4 and
// q6 products.
func BenchmarkMatQKI(b *testing.B) {
	for _, bits := range []int{4, 6} {
		b.Run(fmt.Sprintf("q%d", bits), func(b *testing.B) {
			benchMatPackedI(b, packedShape{bits, 32, false}, func(w *Packed, rows int) matPackedI {
				m := NewQKI(w, rows)
				m.Pack(w, 0, m.RowBlocks())
				return func(_ features, y []float32, ldy, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
					MatQKI(y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
				}
			})
		})
	}
}
