//go:build !noasm && gc

package simd

// Q4SIFast reports whether MatQ4SI runs a vector kernel for the view w on
// this CPU (otherwise it runs its Go definition, which is slow: callers keep
// the row-major kernels then).
func Q4SIFast(w *Packed) bool { return current().VNNI && Q4SIOK(w) }

func matQ4SIWith(f features, y []float32, ldy int, m *Q4SI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	if !f.VNNI {
		matQ4SIGo(y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
		return
	}
	ilRunRange(q4siKernels, m.NG, m.Group/32, m.W, m.S, m.Blocks*16*Q8IRows, m.NG*Q8IRows, y, ldy, r0, r1,
		xq, xs, xsum, xstride, xsstride, tokens, add)
}
