//go:build !noasm && gc

package simd

// Q4KIFast reports whether MatQ4KI runs a vector kernel for the view w on
// this CPU (otherwise callers keep the row-major kernels).
func Q4KIFast(w *Packed) bool { return current().VNNI && Q4KIOK(w) }

func matQ4KIWith(f features, y []float32, ldy int, m *Q4KI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	if !f.VNNI {
		matQ4KIGo(y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
		return
	}
	ilRunRange(q4kiKernels, m.Blocks, 1, m.W, m.S, m.Blocks*q4kiGroup, m.NSB*2*Q8IRows, y, ldy, r0, r1,
		xq, xs, xsum, xstride, xsstride, tokens, add)
}
