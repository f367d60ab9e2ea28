//go:build !noasm && gc

package simd

// QKIFast reports whether MatQKI runs a vector kernel for the view w on
// this CPU (otherwise callers keep the row-major kernels).
func QKIFast(w *Packed) bool { return current().VNNI && QKIOK(w) }

func matQKIWith(f features, y []float32, ldy int, m *QKI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	if !f.VNNI {
		matQKIGo(y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
		return
	}
	e := q4kiKernels
	if m.HiBits > 0 {
		e = q6kiKernels
	}
	ilRunRange(e, m.Blocks, 1, m.W, m.S, m.Blocks*m.GroupBytes(), m.NSB*2*Q8IRows, y, ldy, r0, r1,
		xq, xs, xsum, xstride, xsstride, tokens, add)
}
