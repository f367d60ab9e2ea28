//go:build !noasm && gc

package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The installed packed kernels reorder the float32 sum on CPUs with the
// whole-row kernels.
func init() { packedKernelsReorder = current().VNNI }

// checkPackedK runs the whole-row kernels (tile form and, per token, row
// form) and requires the definition's result within float32 summation
// order (reorderTol).
func checkPackedK(t *testing.T, s packedShape, w *Packed, cols int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, rows, tokens int, add bool) {
	t.Helper()
	if !packedKOK(current(), w) {
		t.Skipf("%+v: no whole-row kernel on this CPU", s)
	}
	ldy := rows + 3
	want := make([]float32, tokens*ldy)
	for i := range want {
		want[i] = float32(i%7) / 3
	}
	init := append([]float32(nil), want...)
	got := append([]float32(nil), want...)
	matPackedRef(want, ldy, w, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
	packedKWith(got, ldy, w, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
	for u := range tokens {
		row := append([]float32(nil), init[u*ldy:u*ldy+rows]...)
		packedKWith(row, 0, w, xq[u*xstride:], xs[u*xsstride:], xsum[u*xsstride:], 0, 0, rows, 1, add)
		for r := range ldy {
			i := u*ldy + r
			if r >= rows {
				if got[i] != init[i] {
					t.Fatalf("%+v: wrote y[%d] outside the tile", s, i)
				}
				continue
			}
			in := float32(0)
			if add {
				in = init[i]
			}
			tol := reorderTol(w, r, xq[u*xstride:], xs[u*xsstride:], xsum[u*xsstride:], in)
			for _, v := range []struct {
				form string
				y    float32
			}{{"tile", got[i]}, {"rows", row[r]}} {
				if d := math.Abs(float64(v.y) - float64(want[i])); !(d <= tol) {
					t.Fatalf("%+v rows %d cols %d tokens %d add %v, %s form, token %d row %d: %v, definition %v (tolerance %g)",
						s, rows, cols, tokens, add, v.form, u, r, v.y, want[i], tol)
				}
			}
		}
	}
}

// The whole-row kernels: one and five rows, rows of whole super-blocks, of
// a lone last chunk (384), with a 32/64/96-weight tail, token counts that
// leave one to three tokens after the four-token passes.
func init() {
	packedKernelCases = append(packedKernelCases, packedKernelCase{"wholeRow", 21, packedShapes,
		[][3]int{{1, 128, 1}, {5, 384, 3}, {2, 256, 9}, {3, 416, 4}, {4, 2048 + 96, 7}, {2, 5632, 2}, {3, 768 + 64, 5}, {1, 100, 2}}, checkPackedK})
}

// FuzzPackedWholeRow feeds arbitrary plane bytes (sub-scales included) and
// activations to the whole-row kernels.
func FuzzPackedWholeRow(f *testing.F) {
	f.Add([]byte{0xff, 0x0f, 0xf0, 0x80, 0x7f}, uint8(1), uint16(300), uint8(3), uint64(4))
	f.Add(make([]byte, 600), uint8(7), uint16(384), uint8(9), uint64(5))
	fuzzPacked(f, 128, 5, true, checkPackedK)
}

// BenchmarkPackedKernels compares, back to back, the block-sum kernels with
// Go scaling (old) and the whole-row kernels (whole) on a 2048 × 5632
// matrix (decode, one token), a 256 × 2048 one that stays in L2 (decodeL2:
// the kernel's own cost, without memory), a 16384 × 8192 one larger than
// any last-level cache (decodeMem: streaming from memory, as decode on a
// 1B-class model does) and a 64-row × 2048 tile of 32
// tokens (prefill), per encoding. Only ratios from one run mean anything.
func BenchmarkPackedKernels(b *testing.B) {
	f := current()
	for _, s := range []packedShape{{4, 32, false}, {4, 32, true}, {5, 32, false}, {6, 32, false}, {3, 32, false}, {2, 32, false}} {
		r := rand.New(rand.NewPCG(3, 4))
		for _, sh := range []struct {
			name               string
			rows, cols, tokens int
		}{{"decode", 2048, 5632, 1}, {"decodeL2", 256, 2048, 1}, {"decodeMem", 16384, 8192, 1}, {"prefill", 64, 2048, 32}} {
			w := randPacked(r, s, sh.rows, sh.cols)
			xq, xs, xsum, xstride, xsstride := randActs(r, w, sh.cols, sh.tokens, 0)
			y := make([]float32, sh.rows*sh.tokens)
			name := fmt.Sprintf("q%d", s.bits)
			if s.sym {
				name += "s"
			}
			b.Run(name+"/"+sh.name+"/old", func(b *testing.B) {
				for b.Loop() {
					packedMatWith(f, y, sh.rows, w, xq, xs, xsum, xstride, xsstride, sh.rows, sh.tokens, false)
				}
			})
			if !packedKOK(f, w) {
				continue
			}
			b.Run(name+"/"+sh.name+"/whole", func(b *testing.B) {
				for b.Loop() {
					packedKWith(y, sh.rows, w, xq, xs, xsum, xstride, xsstride, sh.rows, sh.tokens, false)
				}
			})
		}
	}
}

// TestPackedWholeRowLevels checks the whole-row kernels' gate: AVX-512
// VNNI only (lowering the levels through internal/cpu leaves AVX2 machines,
// real or simulated, on the block-sum kernels), supported planes and group
// sizes only, and rows of at least one whole chunk.
func TestPackedWholeRowLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vnni := features{AVX2: true, AVX512: true, VNNI: true}
	for _, c := range []struct {
		f    features
		s    packedShape
		cols int
		want bool
	}{
		{vnni, packedShape{4, 32, false}, 384, true},
		{vnni, packedShape{4, 128, true}, 128, true},
		{vnni, packedShape{6, 64, false}, 256, true},
		{vnni, packedShape{4, 32, false}, 96, false},
		{features{AVX2: true, AVX512: true}, packedShape{4, 32, false}, 384, false},
		{features{AVX2: true}, packedShape{4, 32, true}, 384, false},
		{features{}, packedShape{2, 32, false}, 384, false},
	} {
		w := randPacked(r, c.s, 1, c.cols)
		if got := packedKOK(c.f, w); got != c.want {
			t.Errorf("%+v %+v cols %d: whole-row kernels %v, want %v", c.f, c.s, c.cols, got, c.want)
		}
	}
}
