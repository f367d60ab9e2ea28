package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Whole-row kernels of the packed low-bit encodings (AVX-512 VNNI): the
// block sums, the group parameters and the float32 accumulation all in
// assembly. A row is walked in super-blocks of 256 weights (two chunks of
// 128, eight blocks of 32), and a last lone chunk when the row has an odd
// number of whole chunks (rows of 384 weights); a shorter tail chunk is left
// to the caller.
//
// Per super-block and row the kernel
//
//   - decodes the eight blocks' step a_b and offset m_b into two 8-lane
//     float32 vectors: KindQK loads the super-block's 12-bit (scale |
//     offset << 6) fields (masked: 12, 6 or 3 bytes by group size), spreads
//     them to one dword per block with VPSHUFB and a per-group control
//     table, shifts each by 0 or 12 (VPSRLVD), masks the two 6-bit halves,
//     converts and multiplies by the super-block's float16 (d, dmin) from
//     VCVTPH2PS; KindQ4S gathers each block's float16 scale with VPSHUFB,
//     widens it, and m = 8·d;
//   - unpacks the two chunks into four vectors of 64 quants (unpackPlane);
//   - per token: c = a·xs (eight blocks), VPDPBUSD of each quant vector
//     with the token's int8 activations (lanes 0–7 one block, 8–15 the
//     next), converted, multiplied lane-wise by c spread with VPERMPS to
//     [c_2k ×8 | c_2k+1 ×8] and accumulated; the offsets are subtracted
//     from the same accumulator as m·(xs·xsum) (m's upper lanes are zero,
//     so one 512-bit FNMADD touches only the low eight).
//
// The row's result is the sum of the accumulator's lanes: the
// definition's terms, summed in another order. T tokens share each super-block's unpacked
// quants and parameters (T = 1: decode; T = 4: prefill tiles).
//
// Registers: Z0–Z3 quants, Z4–Z11 scratch, Z12–Z15 the VPERMPS indices,
// Z16–Z19 token sums, Y20 the VPSHUFB control, Y21 the VPSRLVD shifts, Y22
// 63 (q4s: 8.0) in every lane, Y24 a, Y25 m, Y26 c, Y27 xs·xsum, Z28/Z29
// the lo/hi plane masks. GP: SI lo, BX hi, R8 sub, R9 sup,
// DI the activations of token 0 at the super-block, R10 its xs, R11 its
// xsum, R12 the activation stride, R13 the scale stride in bytes, R14 and
// R15 three times those, CX super-blocks left, DX the argument pointer.
//
// Frame: 0(SP) rows left, 8(SP) the row's y, 16…40(SP) the row's lo, hi,
// sub and sup planes.

func emitPackedK(g *gen) {
	for _, t := range []int{1, 4} {
		for _, pl := range packedPlanes {
			packedK(g, pl[0], pl[1], false, t)
		}
		packedK(g, 4, 0, true, t)
	}
}

func packedK(g *gen, lo, hi int, sym bool, T int) {
	kind := "QK"
	if sym {
		kind = "Sym"
	}
	name := fmt.Sprintf("packed%sLo%dHi%dT%dVNNI", kind, lo, hi, T)
	w := packed512
	loTabs := g.planeTables(name+"_lo", w.vbytes, lo)
	var hiTabs []Mem
	if hi > 0 {
		hiTabs = g.planeTables(name+"_hi", w.vbytes, hi)
	}
	g.text(name, "func(p *packedKArgs)", 48)
	f := func(field, part string) Mem { return g.field(RDX, field, part) }
	g.MOVQ(g.arg(0), RDX)
	g.MOVQ(f("rows", ""), RAX)
	g.TESTQ(RAX, RAX)
	g.JZ(LabelRef("ret"))
	g.MOVQ(RAX, sp(0))
	for i, fl := range []string{"y", "lo", "hi", "sub", "sup"} {
		g.MOVQ(f(fl, "base"), RAX)
		g.MOVQ(RAX, sp(8*(i+1)))
	}
	g.MOVQ(f("xstride", ""), R12)
	g.LEAQ(mi(R12, R12, 2, 0), R14)
	g.MOVQ(f("xsstride", ""), R13)
	g.SHLQ(U8(2), R13)
	g.LEAQ(mi(R13, R13, 2, 0), R15)
	g.KMOVQ(f("kFull", ""), K1)
	g.KMOVQ(f("kHalf", ""), K2)
	g.MOVL(U32(0x0f), EAX)
	g.KMOVW(EAX, K3)
	g.MOVL(U32(0xff00), EAX)
	g.KMOVW(EAX, K4)
	g.broadcast32(uint32(1<<lo-1)*0x01010101, Z28)
	if hi > 0 {
		g.broadcast32(uint32(1<<hi-1)*0x01010101, Z29)
	}
	g.MOVQ(f("ctrl", ""), RAX)
	g.VMOVDQU32(m(RAX, 0), Y20)
	g.MOVQ(f("shift", ""), RAX)
	g.VMOVDQU32(m(RAX, 0), Y21)
	if sym {
		g.broadcast32(0x41000000, Y22) // 8.0
	} else {
		g.broadcast32(63, Y22)
	}
	for k := range 4 {
		g.broadcast32(uint32(2*k), z(12+k))
		g.MOVL(U32(uint32(2*k+1)), EAX)
		g.VPBROADCASTD(EAX, K4, z(12+k))
	}

	g.Label("row")
	g.zeroZ(16, 17, 18, 19)
	g.MOVQ(sp(16), RSI)
	g.MOVQ(sp(24), RBX)
	g.MOVQ(sp(32), R8)
	g.MOVQ(sp(40), R9)
	g.MOVQ(g.arg(0), RDX)
	g.MOVQ(f("xq", "base"), RDI)
	g.MOVQ(f("xs", "base"), R10)
	g.MOVQ(f("xsum", "base"), R11)
	g.MOVQ(f("sbs", ""), RCX)
	g.TESTQ(RCX, RCX)
	g.JZ(LabelRef("half"))

	g.Label("sb")
	if T == 1 {
		// Decode streams each plane once. The quants are one thick
		// sequential stream the hardware prefetchers follow; the parameter
		// streams are thin (12 and 4 bytes per super-block for q4) and
		// are prefetched about 20 super-blocks ahead, as the q8 row
		// kernel does with its scales.
		if sym {
			g.PREFETCHT0(m(R9, 256))
		} else {
			g.PREFETCHT0(m(R8, 256))
			g.PREFETCHT0(m(R9, 128))
		}
	}
	packedKParams(g, sym, K1)
	for c := range 2 {
		packedKChunk(g, w, lo, hi, c, loTabs, hiTabs)
	}
	packedKTokens(g, T, 2, false)
	g.MOVQ(g.arg(0), RDX)
	g.ADDQ(f("subSB", ""), R8)
	g.ADDQ(f("supSB", ""), R9)
	g.ADDQ(U32(256), RDI)
	g.ADDQ(U8(32), R10)
	g.ADDQ(U8(32), R11)
	g.DECQ(RCX)
	g.JNZ(LabelRef("sb"))

	g.Label("half")
	g.MOVQ(g.arg(0), RDX)
	g.CMPQ(f("half", ""), U8(0))
	g.JEQ(LabelRef("reduce"))
	packedKParams(g, sym, K2)
	packedKChunk(g, w, lo, hi, 0, loTabs, hiTabs)
	packedKTokens(g, T, 1, true)

	g.Label("reduce")
	if T == 1 {
		g.VADDPS(Z17, Z16, Z16)
	}
	// Token t's row sum into X(4+t).
	for t := range T {
		g.VEXTRACTF64X4(U8(1), z(16+t), y(8+t))
		g.VADDPS(y(8+t), y(16+t), y(4+t))
		g.hsumY(4+t, 8+t)
	}
	g.MOVQ(g.arg(0), RDX)
	g.MOVQ(sp(8), RAX)
	g.MOVQ(f("ldy", ""), RCX)
	g.SHLQ(U8(2), RCX)
	g.CMPQ(f("add", ""), U8(0))
	g.JEQ(LabelRef("store"))
	g.MOVQ(RAX, RBX)
	for t := range T {
		g.VADDSS(m(RBX, 0), x(4+t), x(4+t))
		if t < T-1 {
			g.ADDQ(RCX, RBX)
		}
	}
	g.Label("store")
	for t := range T {
		g.VMOVSS(x(4+t), m(RAX, 0))
		if t < T-1 {
			g.ADDQ(RCX, RAX)
		}
	}
	// Next row.
	g.ADDQ(U8(4), sp(8))
	for i, fl := range []string{"loRow", "hiRow", "subRow", "supRow"} {
		g.MOVQ(f(fl, ""), RAX)
		g.ADDQ(RAX, sp(16+8*i))
	}
	g.DECQ(sp(0))
	g.JNZ(LabelRef("row"))
	g.VZEROUPPER()
	g.Label("ret")
	g.RET()
}

// packedKParams sets Y24 = a and Y25 = m of the super-block's eight blocks
// (sub at R8, sup at R9; k masks the parameter bytes the super-block has).
func packedKParams(g *gen, sym bool, k Register) {
	if sym {
		g.VMOVDQU8_Z(m(R9, 0), k, X7)
		g.VPSHUFB(X20, X7, X7)
		g.VCVTPH2PS(X7, Y24)
		g.VMULPS(Y22, Y24, Y25)
		return
	}
	g.VPBROADCASTD(m(R9, 0), X4)
	g.VCVTPH2PS(X4, Y4)
	g.VMOVSLDUP(Y4, Y5) // d
	g.VMOVSHDUP(Y4, Y6) // dmin
	g.VMOVDQU8_Z(m(R8, 0), k, X7)
	g.VINSERTI128(U8(1), X7, Y7, Y7)
	g.VPSHUFB(Y20, Y7, Y7)
	g.VPSRLVD(Y21, Y7, Y7)
	g.VPANDD(Y22, Y7, Y9)
	g.VPSRLD(U8(6), Y7, Y7)
	g.VPANDD(Y22, Y7, Y7)
	g.VCVTDQ2PS(Y9, Y9)
	g.VCVTDQ2PS(Y7, Y7)
	g.VMULPS(Y5, Y9, Y24)
	g.VMULPS(Y6, Y7, Y25)
}

// packedKChunk unpacks chunk c of the super-block (lo at SI, hi at BX) into
// Z(2c), Z(2c+1) and moves the plane pointers past it.
func packedKChunk(g *gen, w packedWidth, lo, hi, c int, loTabs, hiTabs []Mem) {
	dst := []VecPhysical{z(2 * c), z(2*c + 1)}
	unpackPlane(g, w, lo, 0, RSI, loTabs, Z28, dst, []VecPhysical{Z4, Z5}, Z7)
	g.ADDQ(U8(16*lo), RSI)
	if hi > 0 {
		unpackPlane(g, w, hi, lo, RBX, hiTabs, Z29, dst, []VecPhysical{Z6}, Z7)
		g.ADDQ(U8(16*hi), RBX)
	}
}

// packedKTokens accumulates the super-block's products with T tokens
// (chunks unpacked chunks in Z0…); half: only the first four blocks exist,
// so the activation scales and sums are loaded under K3.
func packedKTokens(g *gen, T, chunks int, half bool) {
	xsAt := func(base GPPhysical, t int) Mem {
		switch t {
		case 0:
			return m(base, 0)
		case 1:
			return mi(base, R13, 1, 0)
		case 2:
			return mi(base, R13, 2, 0)
		}
		return mi(base, R15, 1, 0)
	}
	xAt := func(t, off int) Mem {
		switch t {
		case 0:
			return m(RDI, off)
		case 1:
			return mi(RDI, R12, 1, off)
		case 2:
			return mi(RDI, R12, 2, off)
		}
		return mi(RDI, R14, 1, off)
	}
	for t := range T {
		if half {
			g.VMOVUPS_Z(xsAt(R10, t), K3, Y27)
			g.VMULPS(Y27, Y24, Y26)
			g.VMOVDQU32_Z(xsAt(R11, t), K3, Y9)
			g.VCVTDQ2PS(Y9, Y9)
			g.VMULPS(Y27, Y9, Y27)
		} else {
			g.VMULPS(xsAt(R10, t), Y24, Y26)
			g.VCVTDQ2PS(xsAt(R11, t), Y27)
			g.VMULPS(xsAt(R10, t), Y27, Y27)
		}
		g.VFNMADD231PS(Z27, Z25, z(16+t))
		for k := range 2 * chunks {
			acc, tmp := z(8+2*(k%2)), z(9+2*(k%2))
			sum := z(16 + t)
			if T == 1 {
				sum = z(16 + (k+1)%2)
			}
			g.VPXORD(acc, acc, acc)
			g.VPDPBUSD(xAt(t, 64*k), z(k), acc)
			g.VCVTDQ2PS(acc, acc)
			g.VPERMPS(Z26, z(12+k), tmp)
			g.VFMADD231PS(tmp, acc, sum)
		}
	}
}
