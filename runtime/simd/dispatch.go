package simd

// The row and tile entry points on the kernels current() selects: the same
// in every build (dispatch_amd64.go and dispatch_generic.go define the
// *With kernels and current).

func dotQ8Rows(y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int, add bool) {
	dotQ8RowsWith(current(), y, wq, ws, stride, sstride, xq, xs, g, add)
}
func dotF32Rows(y []float32, w []float32, stride int, x []float32, add bool) {
	dotF32RowsWith(current(), y, w, stride, x, add)
}
func dotF16Rows(y []float32, w []uint16, stride int, x []float32, add bool) {
	dotF16RowsWith(current(), y, w, stride, x, add)
}
func dotBF16Rows(y []float32, w []uint16, stride int, x []float32, add bool) {
	dotBF16RowsWith(current(), y, w, stride, x, add)
}
func matF32(y []float32, ldy int, w []float32, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matF32With(current(), y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func matF16(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matF16With(current(), y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func matBF16(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matBF16With(current(), y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func matQ8(y []float32, ldy int, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, xstride, xsstride, rows, tokens, n, group int, add bool) {
	matQ8With(current(), y, ldy, wq, ws, stride, sstride, xq, xs, xstride, xsstride, rows, tokens, n, group, add)
}
