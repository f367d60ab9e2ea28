//go:build !noasm && gc

package simd

// Q8IFast reports whether MatQ8I runs a vector kernel for this group size
// on this CPU (otherwise it runs its Go definition, which is slow: callers
// keep the row-major kernels then).
func Q8IFast(group int) bool { return current().VNNI && Q8IGroupOK(group) }

func matQ8IWith(f features, y []float32, ldy int, m *Q8I, r0, r1 int, xq []int8, xs []float32, xe []int32, xstride, xsstride, tokens int, add bool) {
	if !f.VNNI {
		matQ8IGo(y, ldy, m, r0, r1, xq, xs, xe, xstride, xsstride, tokens, add)
		return
	}
	ilRunRange(q8iKernels, m.NG, m.Group/32, m.W, m.S, m.NG*m.Group*Q8IRows, m.NG*Q8IRows, y, ldy, r0, r1,
		xq, xs, xe, xstride, xsstride, tokens, add)
}
