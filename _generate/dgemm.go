package main

import (
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func emitDGEMM(g *gen) {
	dkern(g, dkern256)
	dotAxpyFMA(g)
	dkern(g, dkern512)
}

// dkernWidth is a GEMM micro-kernel's width: eight float64 columns in YMM
// registers (AVX2+FMA) or sixteen in ZMM (AVX-512F; cores that run 512-bit
// FMAs at full width get twice the AVX2 rate).
type dkernWidth struct {
	name  string
	bytes int // bytes per vector
	label string
	v     func(int) VecPhysical
	zero  func(g *gen, r VecPhysical)
}

var (
	dkern256 = dkernWidth{"dkern6x8fma", 32, "", y, func(g *gen, r VecPhysical) { g.VXORPD(r, r, r) }}
	dkern512 = dkernWidth{"dkern6x16avx512", 64, "z", z, func(g *gen, r VecPhysical) { g.VPXORQ(r, r, r) }}
)

// dkern: C[0:6, 0:nr] (+)= Σ_p a[p*6+i]·b[p*nr+j] with a and b packed
// micro-panels and C row-major with row stride ldc (elements); C is added to
// when acc is non-zero and overwritten otherwise. Twelve accumulators (two
// vectors per row of C), two for the B row and two broadcasts of A.
func dkern(g *gen, w dkernWidth) {
	v, l := w.v, func(s string) string { return w.label + s }
	g.text(w.name, "func(k int, a, b, c *float64, ldc int, acc int)", 0)
	for i, r := range []GPPhysical{RCX, RSI, RDI, RDX, R8, R9} {
		g.MOVQ(g.arg(i), r)
	}
	g.SHLQ(U8(3), R8)
	for i := 4; i < 16; i++ {
		w.zero(g, v(i))
	}
	g.TESTQ(RCX, RCX)
	g.JE(LabelRef(l("store")))

	g.Label(l("loop"))
	g.VMOVUPD(m(RDI, 0), v(0))
	g.VMOVUPD(m(RDI, w.bytes), v(1))
	for i := range 3 {
		g.VBROADCASTSD(m(RSI, 16*i), v(2))
		g.VBROADCASTSD(m(RSI, 16*i+8), v(3))
		g.VFMADD231PD(v(0), v(2), v(4+4*i))
		g.VFMADD231PD(v(1), v(2), v(5+4*i))
		g.VFMADD231PD(v(0), v(3), v(6+4*i))
		g.VFMADD231PD(v(1), v(3), v(7+4*i))
	}
	g.ADDQ(U8(48), RSI)
	g.ADDQ(U32(2*w.bytes), RDI)
	g.DECQ(RCX)
	g.JNZ(LabelRef(l("loop")))

	g.Label(l("store"))
	g.TESTQ(R9, R9)
	g.JE(LabelRef(l("overwrite")))
	for i := range 6 {
		a, b := v(4+2*i), v(5+2*i)
		g.VADDPD(m(RDX, 0), a, a)
		g.VADDPD(m(RDX, w.bytes), b, b)
		g.VMOVUPD(a, m(RDX, 0))
		g.VMOVUPD(b, m(RDX, w.bytes))
		if i < 5 {
			g.ADDQ(R8, RDX)
		}
	}
	g.VZEROUPPER()
	g.RET()

	g.Label(l("overwrite"))
	for i := range 6 {
		g.VMOVUPD(v(4+2*i), m(RDX, 0))
		g.VMOVUPD(v(5+2*i), m(RDX, w.bytes))
		if i < 5 {
			g.ADDQ(R8, RDX)
		}
	}
	g.VZEROUPPER()
	g.RET()
}

// dotAxpyFMA returns Σ row[i]·x[i] and adds s·row[i] to y[i], for i < n
// rounded down to a multiple of 8 (the caller finishes the tail).
func dotAxpyFMA(g *gen) {
	g.text("dotAxpyFMA", "func(n int, row, x, y *float64, s float64) float64", 0)
	for i, r := range []GPPhysical{RCX, RSI, RDI, RDX} {
		g.MOVQ(g.arg(i), r)
	}
	g.VBROADCASTSD(g.arg(4), Y0)
	g.VXORPD(Y1, Y1, Y1)
	g.VXORPD(Y2, Y2, Y2)
	g.SHRQ(U8(3), RCX)
	g.JE(LabelRef("dadone"))

	g.Label("daloop")
	g.VMOVUPD(m(RSI, 0), Y3)
	g.VMOVUPD(m(RSI, 32), Y4)
	g.VFMADD231PD(m(RDI, 0), Y3, Y1)
	g.VFMADD231PD(m(RDI, 32), Y4, Y2)
	g.VMOVUPD(m(RDX, 0), Y5)
	g.VMOVUPD(m(RDX, 32), Y6)
	g.VFMADD231PD(Y3, Y0, Y5)
	g.VFMADD231PD(Y4, Y0, Y6)
	g.VMOVUPD(Y5, m(RDX, 0))
	g.VMOVUPD(Y6, m(RDX, 32))
	for _, r := range []GPPhysical{RSI, RDI, RDX} {
		g.ADDQ(U8(64), r)
	}
	g.DECQ(RCX)
	g.JNZ(LabelRef("daloop"))

	g.Label("dadone")
	g.VADDPD(Y1, Y2, Y1)
	g.VEXTRACTF128(U8(1), Y1, X2)
	g.VADDPD(X1, X2, X1)
	g.VHADDPD(X1, X1, X1)
	g.VZEROUPPER()
	g.MOVSD(X1, g.at(g.ReturnIndex(0)))
	g.RET()
}
