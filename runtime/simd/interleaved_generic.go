//go:build !amd64 || noasm || !gc

package simd

// Q8IFast reports whether MatQ8I runs a vector kernel: never in this
// build, so callers keep the row-major kernels.
func Q8IFast(group int) bool { return false }

func matQ8IWith(_ features, y []float32, ldy int, m *Q8I, r0, r1 int, xq []int8, xs []float32, xe []int32, xstride, xsstride, tokens int, add bool) {
	matQ8IGo(y, ldy, m, r0, r1, xq, xs, xe, xstride, xsstride, tokens, add)
}

// Q4SIFast reports whether MatQ4SI runs a vector kernel: never in this
// build, so callers keep the row-major kernels.
func Q4SIFast(w *Packed) bool { return false }

func matQ4SIWith(_ features, y []float32, ldy int, m *Q4SI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	matQ4SIGo(y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
}

// QKIFast reports whether MatQKI runs a vector kernel: never in this
// build, so callers keep the row-major kernels.
func QKIFast(w *Packed) bool { return false }

func matQKIWith(_ features, y []float32, ldy int, m *QKI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	matQKIGo(y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
}
