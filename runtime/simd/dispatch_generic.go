//go:build !amd64 || noasm || !gc

package simd

// features selects between the pure-Go references (the zero value, used by
// the differential tests) and the portable kernels every call uses.
type features struct{ portable bool }

func current() features { return features{portable: true} }

func dotF32(a, b []float32) float32           { return dotF32Portable(a, b) }
func dotF16(w []uint16, x []float32) float32  { return dotF16Portable(w, x) }
func dotBF16(w []uint16, x []float32) float32 { return dotBF16Portable(w, x) }
func dotQ8(wq []int8, ws []uint16, xq []int8, xs []float32, g int) float32 {
	return dotQ8Portable(wq, ws, xq, xs, g)
}
func dotQ8RowsWith(f features, y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int, add bool) {
	dotQ8RowsFrom(f, 0, y, wq, ws, stride, sstride, xq, xs, g, add)
}
func dotF32RowsWith(f features, y []float32, w []float32, stride int, x []float32, add bool) {
	rowsFrom(0, y, add,
		func(r int) (o [4]float32) { dotF32x4With(f, &o, w[r*stride:], stride, x); return o },
		func(r int) float32 { return dotF32With(f, w[r*stride:r*stride+len(x)], x) })
}
func dotF16RowsWith(f features, y []float32, w []uint16, stride int, x []float32, add bool) {
	rowsFrom(0, y, add,
		func(r int) (o [4]float32) { dotF16x4With(f, &o, w[r*stride:], stride, x); return o },
		func(r int) float32 { return dotF16With(f, w[r*stride:r*stride+len(x)], x) })
}
func dotBF16RowsWith(f features, y []float32, w []uint16, stride int, x []float32, add bool) {
	rowsFrom(0, y, add,
		func(r int) (o [4]float32) { dotBF16x4With(f, &o, w[r*stride:], stride, x); return o },
		func(r int) float32 { return dotBF16With(f, w[r*stride:r*stride+len(x)], x) })
}
func matF32With(f features, y []float32, ldy int, w []float32, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matWalk(rows, tokens, 1, nil, func(u, _ int) {
		dotF32RowsWith(f, y[u*ldy:u*ldy+rows], w, wstride, x[u*xstride:u*xstride+n], add)
	})
}
func matF16With(f features, y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matWalk(rows, tokens, 1, nil, func(u, _ int) {
		dotF16RowsWith(f, y[u*ldy:u*ldy+rows], w, wstride, x[u*xstride:u*xstride+n], add)
	})
}
func matBF16With(f features, y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matWalk(rows, tokens, 1, nil, func(u, _ int) {
		dotBF16RowsWith(f, y[u*ldy:u*ldy+rows], w, wstride, x[u*xstride:u*xstride+n], add)
	})
}
func matQ8With(f features, y []float32, ldy int, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, xstride, xsstride, rows, tokens, n, group int, add bool) {
	ng := (n + group - 1) / group
	matWalk(rows, tokens, 1, nil, func(u, _ int) {
		dotQ8RowsWith(f, y[u*ldy:u*ldy+rows], wq, ws, stride, sstride, xq[u*xstride:u*xstride+n], xs[u*xsstride:u*xsstride+ng], group, add)
	})
}
func siluMul(g, u []float32)                                 { siluMulGo(g, u) }
func siluMulWith(_ features, g, u []float32)                 { siluMulGo(g, u) }
func softmax(w []float32, scale float32)                     { softmaxGo(w, scale) }
func softmaxWith(_ features, w []float32, scale float32)     { softmaxGo(w, scale) }
func quantizeQ8(xq []int8, xs []float32, x []float32, g int) { quantizeQ8Go(xq, xs, x, g) }
func quantizeQ8With(_ features, xq []int8, xs []float32, x []float32, g int) {
	quantizeQ8Go(xq, xs, x, g)
}

func dotF32x4(dst *[4]float32, w []float32, stride int, x []float32) {
	dotRows4(dst, w, stride, x, dotF32Portable)
}
func dotF16x4(dst *[4]float32, w []uint16, stride int, x []float32) {
	dotRows4(dst, w, stride, x, dotF16Portable)
}
func dotBF16x4(dst *[4]float32, w []uint16, stride int, x []float32) {
	dotRows4(dst, w, stride, x, dotBF16Portable)
}
func dotQ8x4(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int) {
	dotQ8Rows4(dst, wq, ws, stride, sstride, xq, xs, g, dotQ8Portable)
}

func dotF32With(f features, a, b []float32) float32 {
	if f.portable {
		return dotF32Portable(a, b)
	}
	return dotF32Go(a, b)
}
func dotF16With(f features, w []uint16, x []float32) float32 {
	if f.portable {
		return dotF16Portable(w, x)
	}
	return dotF16Go(w, x)
}
func dotBF16With(f features, w []uint16, x []float32) float32 {
	if f.portable {
		return dotBF16Portable(w, x)
	}
	return dotBF16Go(w, x)
}
func dotQ8With(f features, wq []int8, ws []uint16, xq []int8, xs []float32, g int) float32 {
	if f.portable {
		return dotQ8Portable(wq, ws, xq, xs, g)
	}
	return dotQ8Go(wq, ws, xq, xs, g)
}
func dotF32x4With(f features, dst *[4]float32, w []float32, stride int, x []float32) {
	if f.portable {
		dotRows4(dst, w, stride, x, dotF32Portable)
		return
	}
	dotRows4(dst, w, stride, x, dotF32Go)
}
func dotF16x4With(f features, dst *[4]float32, w []uint16, stride int, x []float32) {
	if f.portable {
		dotRows4(dst, w, stride, x, dotF16Portable)
		return
	}
	dotRows4(dst, w, stride, x, dotF16Go)
}
func dotBF16x4With(f features, dst *[4]float32, w []uint16, stride int, x []float32) {
	if f.portable {
		dotRows4(dst, w, stride, x, dotBF16Portable)
		return
	}
	dotRows4(dst, w, stride, x, dotBF16Go)
}
func dotQ8x4With(f features, dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int) {
	if f.portable {
		dotQ8Rows4(dst, wq, ws, stride, sstride, xq, xs, g, dotQ8Portable)
		return
	}
	dotQ8Rows4(dst, wq, ws, stride, sstride, xq, xs, g, dotQ8Go)
}

// Accelerated reports whether this build and CPU run the assembly kernels.
func Accelerated() bool { return false }
