package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Interleaved q8 kernels (runtime/simd q8i.go): one 512-bit vector holds a
// 16-row block's int32 group sums, one lane per row, so a group costs one
// VPDPBUSD per four quants per token and no horizontal reduction. The
// weights are stored quant+128 (VPDPBUSD's unsigned operand); each token's
// four activation quants are broadcast from memory ({1to16}); the excess
// 128·Σx of each group arrives precomputed (xe) as the accumulator's start.
// After a group, per token: sum to float (exact below 2^24), d = scale·xs,
// p = d·sum, acc += p, each rounded on its own (VMULPS, VMULPS, VADDPS, no
// FMA), which is the Go definition's order: every path gives the same bits.
//
// Register plan for T tokens (1..4): Z0..Z3 the float sums of the tokens;
// Z4..Z7 the int32 group sums, chains = 4/T per token (the integer sums are
// exact, so splitting a token's chain of VPDPBUSD across several
// accumulators changes nothing but latency); Z12 the weight chunk; Z16 the
// block's group scales (float32); Z17 scratch.
// R8 weights, R9 scales (both run straight through the blocks); DI, DX, SI
// token 0's quants, scales and excesses, R15/R14 one and three quant
// strides, R13/R12 one and three scale strides (bytes); CX groups left, AX
// sub-blocks left, BX blocks left; R10 the block's output, R11 ldy bytes.

// q8iPrefetch is how far ahead (bytes) the kernels prefetch the weights,
// which they read as one sequential stream.
const q8iPrefetch = 4096

func emitQ8I(g *gen) {
	for t := 1; t <= 4; t++ {
		q8iVNNI(g, t)
	}
}

// tokenAt is token t's address (t < 4) from base: base, +stride, +2·stride,
// +three (= 3·stride), plus disp.
func tokenAt(base, stride, three GPPhysical, t, disp int) Mem {
	switch t {
	case 0:
		return m(base, disp)
	case 1:
		return mi(base, stride, 1, disp)
	case 2:
		return mi(base, stride, 2, disp)
	}
	return mi(base, three, 1, disp)
}

func q8iVNNI(g *gen, T int) {
	name := fmt.Sprintf("q8iVNNI%d", T)
	g.text(name, "func(p *q8iArgs)", 0)
	chains := 4 / T
	ia := func(t, c int) VecPhysical { return z(4 + t*chains + c) }
	f := func(name string) Mem { return g.field(RAX, name, "") }

	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(f("blocks"), RBX)
	g.TESTQ(RBX, RBX)
	g.JZ(LabelRef("ret"))
	g.MOVQ(f("w"), R8)
	g.MOVQ(f("s"), R9)
	g.MOVQ(f("y"), R10)
	g.MOVQ(f("ldy"), R11)
	g.SHLQ(U8(2), R11)
	g.MOVQ(f("xstride"), R15)
	g.LEAQ(mi(R15, R15, 2, 0), R14)
	g.MOVQ(f("xsstride"), R13)
	g.SHLQ(U8(2), R13)
	g.LEAQ(mi(R13, R13, 2, 0), R12)

	g.Label("block")
	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(f("x"), RDI)
	g.MOVQ(f("xs"), RDX)
	g.MOVQ(f("xe"), RSI)
	g.MOVQ(f("ng"), RCX)
	g.zeroZ(upto(T)...)

	g.Label("group")
	for t := range T {
		g.VPBROADCASTD(tokenAt(RSI, R13, R12, t, 0), ia(t, 0))
		for c := 1; c < chains; c++ {
			g.VPXORD(ia(t, c), ia(t, c), ia(t, c))
		}
	}
	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(f("sub"), RAX)

	g.Label("sub")
	for k := range 8 {
		g.PREFETCHT0(m(R8, 64*k+q8iPrefetch))
		g.VMOVDQU64(m(R8, 64*k), Z12)
		for t := range T {
			g.VPDPBUSD_BCST(tokenAt(RDI, R15, R14, t, 4*k), Z12, ia(t, k%chains))
		}
	}
	g.ADDQ(U32(512), R8)
	g.ADDQ(U8(32), RDI)
	g.DECQ(RAX)
	g.JNZ(LabelRef("sub"))

	g.VCVTPH2PS(m(R9, 0), Z16)
	g.ADDQ(U8(32), R9)
	for t := range T {
		for c := 1; c < chains; c++ {
			g.VPADDD(ia(t, c), ia(t, 0), ia(t, 0))
		}
		g.VCVTDQ2PS(ia(t, 0), ia(t, 0))
		g.VMULPS_BCST(tokenAt(RDX, R13, R12, t, 0), Z16, Z17)
		g.VMULPS(Z17, ia(t, 0), Z17)
		g.VADDPS(Z17, z(t), z(t))
	}
	g.ADDQ(U8(4), RDX)
	g.ADDQ(U8(4), RSI)
	g.DECQ(RCX)
	g.JNZ(LabelRef("group"))

	// Store (with add: add) the block's sixteen results per token.
	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(f("add"), RCX)
	g.LEAQ(mi(R11, R11, 2, 0), RAX)
	for t := range T {
		dst := tokenAt(R10, R11, RAX, t, 0)
		lbl := fmt.Sprintf("store%d", t)
		g.TESTQ(RCX, RCX)
		g.JZ(LabelRef(lbl))
		g.VADDPS(dst, z(t), z(t))
		g.Label(lbl)
		g.VMOVUPS(z(t), dst)
	}
	g.ADDQ(U8(64), R10)
	g.closeLoop(RBX, "block", "ret")
}
