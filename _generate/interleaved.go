package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Interleaved kernels (runtime/simd q8i.go, q4si.go): one 512-bit vector
// holds a 16-row block's int32 sums, one lane per row, so a product costs
// one VPDPBUSD per four weights per token and no horizontal reduction.
// Weights are stored as VPDPBUSD's unsigned operand (q8: quant+128; q4s:
// the 4-bit quant, two per byte); each token's four activation quants are
// broadcast from memory ({1to16}). The float part follows the Go
// definition's order with each operation rounded on its own (VMULPS,
// VSUBPS, VADDPS; no FMA), so every path gives the same bits.
//
// Register plan for T tokens (1..4): Z0..Z3 the float sums of the tokens;
// Z4..Z7 the int32 sums, chains = 4/T per token (the integer sums are exact,
// so splitting a token's chain of VPDPBUSD across several accumulators
// changes nothing but latency); Z8 the nibble mask (q4s); Z9, Z10 unpacked
// nibbles (q4s); Z12 the weight chunk; Z16 the block's group scales
// (float32), Z15 eight times them (q4s); Z17, Z18 scratch.
// R8 weights, R9 scales (both run straight through the blocks); DI, DX, SI
// token 0's quants, scales and integer terms (q8: the excess −128·Σx per
// group; q4s: Σx per 32-block), R15/R14 one and three quant strides,
// R13/R12 one and three scale strides (bytes); CX groups left, AX 32-weight
// sub-blocks left in the group, BX blocks left; R10 the block's output, R11
// ldy bytes.

// ilPrefetch is how far ahead (bytes) the kernels prefetch the weights,
// which they read as one sequential stream.
const ilPrefetch = 4096

func emitInterleaved(g *gen) {
	for t := 1; t <= 4; t++ {
		q8iVNNI(g, t)
	}
	for t := 1; t <= 4; t++ {
		q4siVNNI(g, t)
	}
}

// ilKernel is one interleaved kernel for T tokens: the argument loads, the
// loop over blocks (each: the float sums cleared, the token pointers reset,
// group(…) run over every group) and the stores. group emits one group's
// work given the chains' registers.
func (g *gen) ilKernel(name string, T int, group func(ia func(t, c int) VecPhysical, chains int)) {
	g.text(name, "func(p *ilArgs)", 0)
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
	g.MOVQ(f("xi"), RSI)
	g.MOVQ(f("ng"), RCX)
	g.zeroZ(upto(T)...)

	g.Label("group")
	group(ia, chains)
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

// ilSubCount sets AX to the group's count of 32-weight sub-blocks.
func (g *gen) ilSubCount() {
	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(g.field(RAX, "sub", ""), RAX)
}

// ilChainsToFloat adds token t's chains into its first and converts that
// to float32 (exact: the sums stay below 2^24).
func (g *gen) ilChainsToFloat(ia func(t, c int) VecPhysical, chains, t int) {
	for c := 1; c < chains; c++ {
		g.VPADDD(ia(t, c), ia(t, 0), ia(t, 0))
	}
	g.VCVTDQ2PS(ia(t, 0), ia(t, 0))
}

// q8iVNNI: q8, one scale per group; a group's sums start at the excess
// (xi) and run over its sub-blocks, eight 64-byte chunks (four quants of
// sixteen rows) each; then per token s += (scale·xs)·sum.
func q8iVNNI(g *gen, T int) {
	g.ilKernel(fmt.Sprintf("q8iVNNI%d", T), T, func(ia func(t, c int) VecPhysical, chains int) {
		for t := range T {
			g.VPBROADCASTD(tokenAt(RSI, R13, R12, t, 0), ia(t, 0))
			for c := 1; c < chains; c++ {
				g.VPXORD(ia(t, c), ia(t, c), ia(t, c))
			}
		}
		g.ilSubCount()
		g.Label("sub")
		for k := range 8 {
			g.PREFETCHT0(m(R8, 64*k+ilPrefetch))
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
			g.ilChainsToFloat(ia, chains, t)
			g.VMULPS_BCST(tokenAt(RDX, R13, R12, t, 0), Z16, Z17)
			g.VMULPS(Z17, ia(t, 0), Z17)
			g.VADDPS(Z17, z(t), z(t))
		}
		g.ADDQ(U8(4), RDX)
		g.ADDQ(U8(4), RSI)
	})
}

// q4siVNNI: q4s, one scale d per group, activation scales per 32-weight
// block; a sub-block is four 64-byte chunks, each holding eight quants of
// sixteen rows (low nibbles: quants 4c…4c+3 of the block, high nibbles:
// 16+4c…16+4c+3); then per token s += xs·(d·sum − (8d)·Σx).
func q4siVNNI(g *gen, T int) {
	g.ilKernel(fmt.Sprintf("q4siVNNI%d", T), T, func(ia func(t, c int) VecPhysical, chains int) {
		g.VCVTPH2PS(m(R9, 0), Z16)
		g.ADDQ(U8(32), R9)
		g.MOVL(U32(0x41000000), EAX) // 8.0
		g.VPBROADCASTD(EAX, Z15)
		g.VMULPS(Z15, Z16, Z15)
		g.MOVL(U32(0x0f0f0f0f), EAX)
		g.VPBROADCASTD(EAX, Z8)
		g.ilSubCount()
		g.Label("sub")
		for t := range T {
			for c := range chains {
				g.VPXORD(ia(t, c), ia(t, c), ia(t, c))
			}
		}
		for k := range 4 {
			g.PREFETCHT0(m(R8, 64*k+ilPrefetch))
			g.VMOVDQU64(m(R8, 64*k), Z12)
			g.VPANDD(Z8, Z12, Z9)
			g.VPSRLW(U8(4), Z12, Z10)
			g.VPANDD(Z8, Z10, Z10)
			for t := range T {
				g.VPDPBUSD_BCST(tokenAt(RDI, R15, R14, t, 4*k), Z9, ia(t, (2*k)%chains))
				g.VPDPBUSD_BCST(tokenAt(RDI, R15, R14, t, 16+4*k), Z10, ia(t, (2*k+1)%chains))
			}
		}
		g.ADDQ(U32(256), R8)
		g.ADDQ(U8(32), RDI)
		for t := range T {
			g.ilChainsToFloat(ia, chains, t)
			g.VMULPS(Z16, ia(t, 0), Z17)
			g.VCVTDQ2PS_BCST(tokenAt(RSI, R13, R12, t, 0), Z18)
			g.VMULPS(Z15, Z18, Z18)
			g.VSUBPS(Z18, Z17, Z17)
			g.VMULPS_BCST(tokenAt(RDX, R13, R12, t, 0), Z17, Z17)
			g.VADDPS(Z17, z(t), z(t))
		}
		g.ADDQ(U8(4), RDX)
		g.ADDQ(U8(4), RSI)
		g.DECQ(RAX)
		g.JNZ(LabelRef("sub"))
	})
}
