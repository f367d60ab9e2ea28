//go:build !noasm && gc

package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkPackedLevels runs packedMatWith (tile and, per token, row form) at
// every level this CPU has and requires the definition's result bit for bit
// (NaN for NaN).
func checkPackedLevels(t *testing.T, s packedShape, w *Packed, cols int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, rows, tokens int, add bool) {
	t.Helper()
	ldy := rows + 1
	want := make([]float32, tokens*ldy)
	for i := range want {
		want[i] = float32(i) / 3
	}
	got := make([]float32, len(want))
	init := append([]float32(nil), want...)
	matPackedRef(want, ldy, w, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
	same := func(a, b float32) bool { return a == b || (math.IsNaN(float64(a)) && math.IsNaN(float64(b))) }
	for _, fs := range testFeatureSets() {
		copy(got, init)
		packedMatWith(fs.f, got, ldy, w, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
		for i := range want {
			if !same(got[i], want[i]) {
				t.Fatalf("%s %+v rows %d cols %d tokens %d add %v: element %d = %v, definition %v", fs.name, s, rows, cols, tokens, add, i, got[i], want[i])
			}
		}
		for u := range tokens {
			y := append([]float32(nil), init[u*ldy:u*ldy+rows]...)
			packedMatWith(fs.f, y, 0, w, xq[u*xstride:], xs[u*xsstride:], xsum[u*xsstride:], 0, 0, rows, 1, add)
			for r := range y {
				if !same(y[r], want[u*ldy+r]) {
					t.Fatalf("%s %+v rows form, token %d row %d: %v, definition %v", fs.name, s, u, r, y[r], want[u*ldy+r])
				}
			}
		}
	}
}

// The generated block-sum kernels (VNNI and AVX2, every plane combination)
// through packedMatWith: rows of whole chunks, of whole chunks plus a
// 32/64/96-weight tail, more than one kernel segment and more than one block
// of tokens.
func init() {
	packedKernelCases = append(packedKernelCases, packedKernelCase{"levels", 11, packedShapes,
		[][3]int{{1, 128, 1}, {3, 37, 2}, {2, 256, 9}, {5, 416, 3}, {1, 2048 + 96, 17}, {2, 4100, 1}}, checkPackedLevels})
}

// fuzzPacked runs check on the case a fuzz input selects: a random view of
// 1…maxRows rows of minCols… weights of a shape from packedShapes, whose lo,
// hi and sub planes have the fuzzer's bytes XORed in, and 1…12 tokens'
// activations (padded by a block for odd seeds when pad) with the bytes
// written over them (all of −128…127, which VPMADDUBSW and VPDPBUSD
// multiply exactly here), their sums recomputed.
func fuzzPacked(f *testing.F, minCols, maxRows int, pad bool, check packedCheck) {
	f.Fuzz(func(t *testing.T, raw []byte, sel uint8, colsRaw uint16, tokRaw uint8, seed uint64) {
		s := packedShapes[int(sel)%len(packedShapes)]
		cols, tokens, rows := minCols+int(colsRaw)%2200, 1+int(tokRaw)%12, 1+int(seed%uint64(maxRows))
		r := rand.New(rand.NewPCG(seed, 9))
		w := randPacked(r, s, rows, cols)
		for i, b := range raw {
			w.Lo[i%len(w.Lo)] ^= b
			if len(w.Hi) > 0 {
				w.Hi[(i*7)%len(w.Hi)] ^= b
			}
			if len(w.Sub) > 0 {
				w.Sub[(i*5)%len(w.Sub)] ^= b
			}
		}
		padding := 0
		if pad {
			padding = int(seed % 2)
		}
		xq, xs, xsum, xstride, xsstride := randActs(r, w, cols, tokens, padding)
		for i, b := range raw {
			if j := (i * 13) % len(xq); j%xstride < cols {
				xq[j] = int8(b)
			}
		}
		sumActs(xq, xsum, xstride, xsstride, tokens)
		check(t, s, w, cols, xq, xs, xsum, xstride, xsstride, rows, tokens, seed%2 == 0)
	})
}

// FuzzPackedAsmLevels feeds arbitrary plane bytes and activations to every
// level's kernels.
func FuzzPackedAsmLevels(f *testing.F) {
	f.Add([]byte{0xff, 0x0f, 0xf0, 0x80, 0x7f}, uint8(1), uint16(300), uint8(3), uint64(4))
	f.Add(make([]byte, 600), uint8(6), uint16(1024), uint8(9), uint64(5))
	fuzzPacked(f, 1, 3, false, checkPackedLevels)
}
