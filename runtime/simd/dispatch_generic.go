//go:build !amd64 || noasm

package simd

// features is empty where no assembly is built: every primitive is its
// pure-Go reference.
type features struct{}

var cpuFeatures features

func dotF32(a, b []float32) float32           { return dotF32Go(a, b) }
func dotF16(w []uint16, x []float32) float32  { return dotF16Go(w, x) }
func dotBF16(w []uint16, x []float32) float32 { return dotBF16Go(w, x) }
func dotQ8(wq []int8, ws []uint16, xq []int8, xs []float32, g int) float32 {
	return dotQ8Go(wq, ws, xq, xs, g)
}
func quantizeQ8(xq []int8, xs []float32, x []float32, g int) { quantizeQ8Go(xq, xs, x, g) }

func dotF32x4(dst *[4]float32, w []float32, stride int, x []float32) { dotF32x4Go(dst, w, stride, x) }
func dotF16x4(dst *[4]float32, w []uint16, stride int, x []float32)  { dotF16x4Go(dst, w, stride, x) }
func dotBF16x4(dst *[4]float32, w []uint16, stride int, x []float32) {
	dotBF16x4Go(dst, w, stride, x)
}
func dotQ8x4(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int) {
	dotQ8x4Go(dst, wq, ws, stride, sstride, xq, xs, g)
}

func dotF32With(_ features, a, b []float32) float32           { return dotF32Go(a, b) }
func dotF16With(_ features, w []uint16, x []float32) float32  { return dotF16Go(w, x) }
func dotBF16With(_ features, w []uint16, x []float32) float32 { return dotBF16Go(w, x) }
func dotQ8With(_ features, wq []int8, ws []uint16, xq []int8, xs []float32, g int) float32 {
	return dotQ8Go(wq, ws, xq, xs, g)
}
func dotF32x4With(_ features, dst *[4]float32, w []float32, stride int, x []float32) {
	dotF32x4Go(dst, w, stride, x)
}
func dotF16x4With(_ features, dst *[4]float32, w []uint16, stride int, x []float32) {
	dotF16x4Go(dst, w, stride, x)
}
func dotBF16x4With(_ features, dst *[4]float32, w []uint16, stride int, x []float32) {
	dotBF16x4Go(dst, w, stride, x)
}
func dotQ8x4With(_ features, dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int) {
	dotQ8x4Go(dst, wq, ws, stride, sstride, xq, xs, g)
}

// Accelerated reports whether this build and CPU run the assembly kernels.
func Accelerated() bool { return false }
