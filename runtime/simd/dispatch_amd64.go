//go:build amd64 && !noasm

package simd

import "golang.org/x/sys/cpu"

// features says which assembly kernels may run. cpuFeatures is computed once
// at package initialisation and never written afterwards; tests pass other
// values (down to the zero value, the pure-Go path) to the *With functions to
// check every kernel this CPU can execute against the references.
type features struct {
	avx2   bool // AVX2 + FMA + F16C: float kernels and the VPMADDUBSW q8 kernels
	avx512 bool // AVX-512 F/VL: the register-tiled matrix-matrix float kernels
	vnni   bool // AVX-512 F/BW/VL + VNNI: the VPDPBUSD q8 kernels (512-bit when group%64 == 0)
}

var cpuFeatures = detectFeatures()

func detectFeatures() features {
	x := &cpu.X86
	f := features{avx2: x.HasAVX && x.HasAVX2 && x.HasFMA && x.HasF16C}
	f.avx512 = f.avx2 && x.HasAVX512F && x.HasAVX512VL
	f.vnni = f.avx512 && x.HasAVX512BW && x.HasAVX512VNNI
	return f
}

// Assembly kernels (dot_amd64.s, dotq8_amd64.s). The float ones take a
// length that is a multiple of 8; the q8 ones take len(xs) whole groups with
// group a multiple of 32.

//go:noescape
func dotF32AVX2(a, b []float32) float32

//go:noescape
func dotF16AVX2(w []uint16, x []float32) float32

//go:noescape
func dotBF16AVX2(w []uint16, x []float32) float32

//go:noescape
func dotF32RowsAVX2(y []float32, w []float32, stride int, x []float32, add int)

//go:noescape
func dotF16RowsAVX2(y []float32, w []uint16, stride int, x []float32, add int)

//go:noescape
func dotBF16RowsAVX2(y []float32, w []uint16, stride int, x []float32, add int)

//go:noescape
func dotQ8AVX2(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32

//go:noescape
func dotQ8VNNI(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32

//go:noescape
func dotQ8VNNI512(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32

//go:noescape
func dotQ8x4VNNI512(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int)

//go:noescape
func dotQ8VNNI32(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32

//go:noescape
func dotQ8RowsVNNI32(y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, add int)

//go:noescape
func tileQ8x2VNNI(y []float32, ldy int, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, xstride, xsstride, ng, rows, add int)

//go:noescape
func siluMulAVX512(g, u []float32)

//go:noescape
func softmaxAVX512(w []float32, scale float32)

//go:noescape
func quantizeQ8AVX512(xq []int8, xs []float32, x []float32)

//go:noescape
func dotQ8x4AVX2(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int)

//go:noescape
func dotQ8x4VNNI(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int)

//go:noescape
func tileF32AVX512(y []float32, ldy int, w []float32, wstride int, x []float32, xstride int, n int, add int)

//go:noescape
func tileF16AVX512(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride int, n int, add int)

//go:noescape
func tileBF16AVX512(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride int, n int, add int)

func dotF32(a, b []float32) float32           { return dotF32With(cpuFeatures, a, b) }
func dotF16(w []uint16, x []float32) float32  { return dotF16With(cpuFeatures, w, x) }
func dotBF16(w []uint16, x []float32) float32 { return dotBF16With(cpuFeatures, w, x) }
func dotQ8(wq []int8, ws []uint16, xq []int8, xs []float32, g int) float32 {
	return dotQ8With(cpuFeatures, wq, ws, xq, xs, g)
}
func dotQ8Rows(y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int, add bool) {
	dotQ8RowsWith(cpuFeatures, y, wq, ws, stride, sstride, xq, xs, g, add)
}
func dotF32Rows(y []float32, w []float32, stride int, x []float32, add bool) {
	dotF32RowsWith(cpuFeatures, y, w, stride, x, add)
}
func dotF16Rows(y []float32, w []uint16, stride int, x []float32, add bool) {
	dotF16RowsWith(cpuFeatures, y, w, stride, x, add)
}
func dotBF16Rows(y []float32, w []uint16, stride int, x []float32, add bool) {
	dotBF16RowsWith(cpuFeatures, y, w, stride, x, add)
}
func matF32(y []float32, ldy int, w []float32, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matF32With(cpuFeatures, y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func matF16(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matF16With(cpuFeatures, y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func matBF16(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matBF16With(cpuFeatures, y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func quantizeQ8(xq []int8, xs []float32, x []float32, g int) {
	quantizeQ8With(cpuFeatures, xq, xs, x, g)
}

func dotF32x4(dst *[4]float32, w []float32, stride int, x []float32) {
	dotF32x4With(cpuFeatures, dst, w, stride, x)
}
func dotF16x4(dst *[4]float32, w []uint16, stride int, x []float32) {
	dotF16x4With(cpuFeatures, dst, w, stride, x)
}
func dotBF16x4(dst *[4]float32, w []uint16, stride int, x []float32) {
	dotBF16x4With(cpuFeatures, dst, w, stride, x)
}
func dotQ8x4(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, g int) {
	dotQ8x4With(cpuFeatures, dst, wq, ws, stride, sstride, xq, xs, g)
}

// The wrappers below hand the kernels the largest block-aligned prefix and
// finish the last few elements here: at most 7 for the float kernels, one
// partial group for q8.

func dotF32With(f features, a, b []float32) float32 {
	n := len(a) &^ 7
	if !f.avx2 || n == 0 {
		return dotF32Go(a, b)
	}
	s := dotF32AVX2(a[:n], b[:n])
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

func dotF16With(f features, w []uint16, x []float32) float32 {
	n := len(w) &^ 7
	if !f.avx2 || n == 0 {
		return dotF16Go(w, x)
	}
	return dotF16AVX2(w[:n], x[:n]) + dotF16Go(w[n:], x[n:])
}

func dotBF16With(f features, w []uint16, x []float32) float32 {
	n := len(w) &^ 7
	if !f.avx2 || n == 0 {
		return dotBF16Go(w, x)
	}
	return dotBF16AVX2(w[:n], x[:n]) + dotBF16Go(w[n:], x[n:])
}

func dotF32x4With(f features, dst *[4]float32, w []float32, stride int, x []float32) {
	n := len(x) &^ 7
	if !f.avx2 || n == 0 {
		dotF32x4Go(dst, w, stride, x)
		return
	}
	dotF32RowsAVX2(dst[:], w, stride, x[:n], 0)
	for r := range dst {
		dst[r] += dotF32Go(w[r*stride+n:r*stride+len(x)], x[n:])
	}
}

func dotF16x4With(f features, dst *[4]float32, w []uint16, stride int, x []float32) {
	n := len(x) &^ 7
	if !f.avx2 || n == 0 {
		dotF16x4Go(dst, w, stride, x)
		return
	}
	dotF16RowsAVX2(dst[:], w, stride, x[:n], 0)
	for r := range dst {
		dst[r] += dotF16Go(w[r*stride+n:r*stride+len(x)], x[n:])
	}
}

func dotBF16x4With(f features, dst *[4]float32, w []uint16, stride int, x []float32) {
	n := len(x) &^ 7
	if !f.avx2 || n == 0 {
		dotBF16x4Go(dst, w, stride, x)
		return
	}
	dotBF16RowsAVX2(dst[:], w, stride, x[:n], 0)
	for r := range dst {
		dst[r] += dotBF16Go(w[r*stride+n:r*stride+len(x)], x[n:])
	}
}

func dotQ8With(f features, wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32 {
	full := len(wq) / group // whole groups
	n := full * group
	if !f.avx2 || group%32 != 0 || full == 0 {
		return dotQ8Go(wq, ws, xq, xs, group)
	}
	var s float32
	switch {
	case f.vnni && group == 32:
		s = dotQ8VNNI32(wq[:n], ws[:full], xq[:n], xs[:full], group)
	case f.vnni && group%64 == 0:
		s = dotQ8VNNI512(wq[:n], ws[:full], xq[:n], xs[:full], group)
	case f.vnni:
		s = dotQ8VNNI(wq[:n], ws[:full], xq[:n], xs[:full], group)
	default:
		s = dotQ8AVX2(wq[:n], ws[:full], xq[:n], xs[:full], group)
	}
	if n < len(wq) {
		s += dotQ8Go(wq[n:], ws[full:], xq[n:], xs[full:], group)
	}
	return s
}

func dotQ8x4With(f features, dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int) {
	full := len(xq) / group
	n := full * group
	if !f.avx2 || group%32 != 0 || full == 0 {
		dotQ8x4Go(dst, wq, ws, stride, sstride, xq, xs, group)
		return
	}
	switch {
	case f.vnni && group == 32:
		dotQ8RowsVNNI32(dst[:], wq, ws, stride, sstride, xq[:n], xs[:full], 0)
	case f.vnni && group%64 == 0:
		dotQ8x4VNNI512(dst, wq, ws, stride, sstride, xq[:n], xs[:full], group)
	case f.vnni:
		dotQ8x4VNNI(dst, wq, ws, stride, sstride, xq[:n], xs[:full], group)
	default:
		dotQ8x4AVX2(dst, wq, ws, stride, sstride, xq[:n], xs[:full], group)
	}
	if n < len(xq) {
		for r := range dst {
			dst[r] += dotQ8Go(wq[r*stride+n:r*stride+len(xq)], ws[r*sstride+full:], xq[n:], xs[full:], group)
		}
	}
}

func dotQ8RowsWith(f features, y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int, add bool) {
	r := 0
	if n := len(xq); f.vnni && group == 32 && n > 0 && n%32 == 0 {
		r = len(y) &^ 3
		if r > 0 {
			dotQ8RowsVNNI32(y[:r], wq, ws, stride, sstride, xq, xs[:n/32], b2i(add))
		}
	}
	if r < len(y) {
		dotQ8RowsFrom(f, r, y, wq, ws, stride, sstride, xq, xs, group, add)
	}
}

// floatKernels are one float encoding's kernels, for the generic walks
// below: asm is the row-range kernel (whole multiples of 8 elements), ref
// the reference for the remaining elements, x4 and one the kernels that
// finish leftover rows, tile the 4×4 matrix-matrix kernel.
type floatKernels[T any] struct {
	asm  func(y []float32, w []T, stride int, x []float32, add int)
	ref  func(w []T, x []float32) float32
	x4   func(f features, w []T, stride int, x []float32) [4]float32
	one  func(f features, w []T, x []float32) float32
	tile func(y []float32, ldy int, w []T, wstride int, x []float32, xstride int, n int, add int)
}

var (
	f32Kernels  = floatKernels[float32]{dotF32RowsAVX2, dotF32Go, x4F32, dotF32With, tileF32AVX512}
	f16Kernels  = floatKernels[uint16]{dotF16RowsAVX2, dotF16Go, x4F16, dotF16With, tileF16AVX512}
	bf16Kernels = floatKernels[uint16]{dotBF16RowsAVX2, dotBF16Go, x4BF16, dotBF16With, tileBF16AVX512}
)

// The x4 adapters return by value, so that the caller's array stays on the
// stack (a pointer passed to a function value escapes).
func x4F32(f features, w []float32, stride int, x []float32) (o [4]float32) {
	dotF32x4With(f, &o, w, stride, x)
	return o
}
func x4F16(f features, w []uint16, stride int, x []float32) (o [4]float32) {
	dotF16x4With(f, &o, w, stride, x)
	return o
}
func x4BF16(f features, w []uint16, stride int, x []float32) (o [4]float32) {
	dotBF16x4With(f, &o, w, stride, x)
	return o
}

func rowsWith[T any](k *floatKernels[T], f features, y []float32, w []T, stride int, x []float32, add bool) {
	r := 0
	if n := len(x) &^ 7; f.avx2 && n > 0 {
		r = len(y) &^ 3
		if r > 0 {
			k.asm(y[:r], w, stride, x[:n], b2i(add))
			for i := 0; n < len(x) && i < r; i++ {
				y[i] += k.ref(w[i*stride+n:i*stride+len(x)], x[n:])
			}
		}
	}
	rowsFrom(r, y, add,
		func(r int) [4]float32 { return k.x4(f, w[r*stride:], stride, x) },
		func(r int) float32 { return k.one(f, w[r*stride:r*stride+len(x)], x) })
}

func matWith[T any](k *floatKernels[T], f features, y []float32, ldy int, w []T, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	var tile func(t, r4 int)
	if f.avx512 && n > 0 {
		a := b2i(add)
		tile = func(t, r4 int) {
			for r := 0; r < r4; r += 4 {
				k.tile(y[t*ldy+r:], ldy, w[r*wstride:], wstride, x[t*xstride:], xstride, n, a)
			}
		}
	}
	matWalk(rows, tokens, 4, tile, func(u, r0 int) {
		rowsWith(k, f, y[u*ldy+r0:u*ldy+rows], w[r0*wstride:], wstride, x[u*xstride:u*xstride+n], add)
	})
}

func dotF32RowsWith(f features, y []float32, w []float32, stride int, x []float32, add bool) {
	rowsWith(&f32Kernels, f, y, w, stride, x, add)
}
func dotF16RowsWith(f features, y []float32, w []uint16, stride int, x []float32, add bool) {
	rowsWith(&f16Kernels, f, y, w, stride, x, add)
}
func dotBF16RowsWith(f features, y []float32, w []uint16, stride int, x []float32, add bool) {
	rowsWith(&bf16Kernels, f, y, w, stride, x, add)
}
func matF32With(f features, y []float32, ldy int, w []float32, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matWith(&f32Kernels, f, y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func matF16With(f features, y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matWith(&f16Kernels, f, y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}
func matBF16With(f features, y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	matWith(&bf16Kernels, f, y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}

// quantizeQ8With runs the AVX-512 quantizer over the whole groups of 32 and
// the reference over a shorter last group (and every other group size).
func quantizeQ8With(f features, xq []int8, xs []float32, x []float32, group int) {
	full := len(x) / 32
	if !f.avx512 || group != 32 || full == 0 {
		quantizeQ8Go(xq, xs, x, group)
		return
	}
	quantizeQ8AVX512(xq[:full*32], xs[:full], x[:full*32])
	if n := full * 32; n < len(x) {
		quantizeQ8Go(xq[n:], xs[full:], x[n:], group)
	}
}

func matQ8(y []float32, ldy int, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, xstride, xsstride, rows, tokens, n, group int, add bool) {
	matQ8With(cpuFeatures, y, ldy, wq, ws, stride, sstride, xq, xs, xstride, xsstride, rows, tokens, n, group, add)
}

// matQ8With runs 4×2 tiles where the kernel applies (VNNI, groups of 32, an
// even number of groups) and the Rows kernels for everything else.
func matQ8With(f features, y []float32, ldy int, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, xstride, xsstride, rows, tokens, n, group int, add bool) {
	ng := (n + group - 1) / group
	var tile func(t, r4 int)
	if f.vnni && group == 32 && n > 0 && n%64 == 0 {
		a := b2i(add)
		tile = func(t, r4 int) {
			tileQ8x2VNNI(y[t*ldy:], ldy, wq, ws, stride, sstride, xq[t*xstride:], xs[t*xsstride:], xstride, xsstride, ng, r4, a)
		}
	}
	matWalk(rows, tokens, 2, tile, func(u, r0 int) {
		dotQ8RowsWith(f, y[u*ldy+r0:u*ldy+rows], wq[r0*stride:], ws[r0*sstride:], stride, sstride, xq[u*xstride:u*xstride+n], xs[u*xsstride:u*xsstride+ng], group, add)
	})
}

func siluMul(g, u []float32) { siluMulWith(cpuFeatures, g, u) }

func siluMulWith(f features, g, u []float32) {
	n := 0
	if f.avx512 {
		n = len(g) &^ 15
		siluMulAVX512(g[:n], u[:n])
	}
	siluMulGo(g[n:], u[n:])
}

func softmax(w []float32, scale float32) { softmaxWith(cpuFeatures, w, scale) }

func softmaxWith(f features, w []float32, scale float32) {
	if f.avx512 && len(w) > 0 {
		softmaxAVX512(w, scale)
		return
	}
	softmaxGo(w, scale)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Accelerated reports whether this build and CPU run the assembly kernels.
func Accelerated() bool { return cpuFeatures.avx2 }
