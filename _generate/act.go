package main

import (
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func emitActivations(g *gen) {
	siluMulAVX512(g)
	softmaxAVX512(g)
}

// exp in float32 is Cephes' expf: k = round(z·log2 e), r = z − k·ln 2 in two
// parts (C1 + C2), p(r) of degree 7, then p·2^k with VSCALEFPS (which also
// gives 0 and +Inf past the float32 range). z is clamped to ±88.72 so that k
// stays finite.

// expConsts puts log2 e, C1, C2, the polynomial p0..p5, 1/2, 1 and ±88.72
// in Z31..Z20.
func expConsts(g *gen) {
	for i, c := range []uint32{
		0x3fb8aa3b, 0x3f318000, 0xb95e8083, 0x39506967, 0x3ab743ce, 0x3c088908,
		0x3d2aa9c1, 0x3e2aaaaa, 0x3f000000, 0x3f800000, 0x42b17218, 0xc2b17218,
	} {
		g.broadcast32(c, z(31-i))
	}
}

// expZ1 sets Z4 = exp(Z1), using Z2, Z3, Z5 (and clamping Z1).
func expZ1(g *gen) {
	g.VMINPS(Z21, Z1, Z1)
	g.VMAXPS(Z20, Z1, Z1)
	g.VMULPS(Z31, Z1, Z2)
	g.VRNDSCALEPS(U8(0x08), Z2, Z2)
	g.VMOVAPS(Z1, Z3)
	g.VFNMADD231PS(Z30, Z2, Z3)
	g.VFNMADD231PS(Z29, Z2, Z3)
	g.VMOVAPS(Z28, Z4)
	for _, c := range []VecPhysical{Z27, Z26, Z25, Z24, Z23} {
		g.VFMADD213PS(c, Z3, Z4)
	}
	g.VMULPS(Z3, Z3, Z5)
	g.VFMADD213PS(Z3, Z5, Z4)
	g.VADDPS(Z22, Z4, Z4)
	g.VSCALEFPS(Z2, Z4, Z4)
}

// siluMulAVX512: g[i] = silu(g[i])·u[i] = g·u / (1 + exp(−g)) for len(g), a
// multiple of 16.
func siluMulAVX512(g *gen) {
	g.text("siluMulAVX512", "func(g, u []float32)", 0)
	g.MOVQ(g.base(0), RDI)
	g.MOVQ(g.length(0), RCX)
	g.MOVQ(g.base(1), RSI)
	g.SHRQ(U8(4), RCX)
	g.JZ(LabelRef("sdone"))
	expConsts(g)

	g.Label("sloop")
	g.VMOVUPS(m(RDI, 0), Z0) // x
	g.VXORPS(Z1, Z1, Z1)
	g.VSUBPS(Z0, Z1, Z1) // z = −x
	expZ1(g)
	g.VADDPS(Z22, Z4, Z4)       // 1 + exp(−x)
	g.VMULPS(m(RSI, 0), Z0, Z0) // x·u
	g.VDIVPS(Z4, Z0, Z0)
	g.VMOVUPS(Z0, m(RDI, 0))
	g.ADDQ(U8(64), RDI)
	g.ADDQ(U8(64), RSI)
	g.closeLoop(RCX, "sloop", "sdone")
}

// softmaxAVX512: w[i] = exp(scale·(w[i] − max w)) / Σ, for len(w) ≥ 1,
// scale > 0. Three passes: max, exp and sum (16 float32 lanes), scale by
// 1/Σ. The last (partial or full) vector of each pass is masked: K1, with
// BX whole vectors before it.
func softmaxAVX512(g *gen) {
	g.text("softmaxAVX512", "func(w []float32, scale float32)", 0)
	g.MOVQ(g.base(0), RDI)
	g.MOVQ(g.length(0), RCX)
	g.LEAQ(m(RCX, -1), RBX)
	g.SHRQ(U8(4), RBX)
	g.MOVQ(RCX, RAX)
	g.SUBQ(U8(1), RAX)
	g.ANDQ(U8(15), RAX)
	g.INCQ(RAX)
	g.MOVQ(RAX, RCX)
	g.lowMask(EDX, K1)
	g.broadcast32(0xff800000, Z6) // −Inf

	// pass walks the whole vectors with body, from SI = w, counting R8.
	pass := func(loop, last string, body func()) {
		g.MOVQ(RDI, RSI)
		g.MOVQ(RBX, R8)
		g.TESTQ(R8, R8)
		g.JZ(LabelRef(last))
		g.Label(loop)
		body()
		g.ADDQ(U8(64), RSI)
		g.DECQ(R8)
		g.JNZ(LabelRef(loop))
		g.Label(last)
	}
	// reduce folds the 16 lanes of z(a) into x(a) with op, z(b) scratch.
	reduce := func(a, b int, op func(s, d VecPhysical), last func(s, d VecPhysical)) {
		g.VEXTRACTF64X4(U8(1), z(a), y(b))
		op(y(b), y(a))
		g.VEXTRACTF128(U8(1), y(a), x(b))
		op(x(b), x(a))
		g.VMOVHLPS(x(a), x(a), x(b))
		op(x(b), x(a))
		g.VMOVSHDUP(x(a), x(b))
		last(x(b), x(a))
	}

	pass("smax", "smaxlast", func() { g.VMAXPS(m(RSI, 0), Z6, Z6) })
	g.VMOVUPS_Z(m(RSI, 0), K1, Z7)
	g.VMAXPS(Z7, Z6, K1, Z6)
	reduce(6, 7, func(s, d VecPhysical) { g.VMAXPS(s, d, d) }, func(s, d VecPhysical) { g.VMAXSS(s, d, d) })
	g.VBROADCASTSS(X6, Z6)       // max
	g.VBROADCASTSS(g.arg(1), Z7) // scale
	expConsts(g)
	g.VXORPS(Z8, Z8, Z8) // Σ lanes

	scaled := func() {
		g.VSUBPS(Z6, Z1, Z1)
		g.VMULPS(Z7, Z1, Z1)
		expZ1(g)
	}
	pass("sexp", "sexplast", func() {
		g.VMOVUPS(m(RSI, 0), Z1)
		scaled()
		g.VMOVUPS(Z4, m(RSI, 0))
		g.VADDPS(Z4, Z8, Z8)
	})
	g.VMOVUPS_Z(m(RSI, 0), K1, Z1)
	scaled()
	g.VMOVUPS(Z4, K1, m(RSI, 0))
	g.VADDPS(Z4, Z8, K1, Z8)
	reduce(8, 9, func(s, d VecPhysical) { g.VADDPS(s, d, d) }, func(s, d VecPhysical) { g.VADDSS(s, d, d) }) // Σ
	g.VDIVSS(X8, X22, X9)                                                                                    // 1/Σ (Z22 = 1)
	g.VBROADCASTSS(X9, Z9)

	pass("snorm", "snormlast", func() {
		g.VMULPS(m(RSI, 0), Z9, Z10)
		g.VMOVUPS(Z10, m(RSI, 0))
	})
	g.VMOVUPS_Z(m(RSI, 0), K1, Z10)
	g.VMULPS(Z9, Z10, Z10)
	g.VMOVUPS(Z10, K1, m(RSI, 0))
	g.VZEROUPPER()
	g.RET()
}
