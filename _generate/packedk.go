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
//   - per token: VPDPBUSD of each quant vector with the token's int8
//     activations (lanes 0–7 partial sums of one block, 8–15 of the next),
//     the partials added in integers into the eight exact block sums
//     (packedKBlockSums), converted, and accumulated as sums·(a·xs) −
//     m·(xs·xsum) in an 8-lane float32 accumulator.
//
// The row's result is the sum of the accumulator's lanes: the definition's
// terms with the same integer block sums, the float32 part in another
// order. T tokens share each super-block's unpacked quants and parameters
// (T = 1 or, over pairs of rows, packedK2: decode; T = 4: prefill tiles).
//
// Registers: Z0–Z3 quants, Z4–Z11 scratch, Z12 the VPERMD index and Y13
// the nibble shifts (packedKConsts), Y16–Y19 token sums (T = 1: Y16 the
// products, Y17 the offsets), Y20 the VPSHUFB control, Y21 the VPSRLVD
// shifts, Y22 63 (q4s: 8.0) in every lane, Y24 a, Y25 m, Y26 c = a·xs, Y27
// xs·xsum, Z28/Z29 the lo/hi plane masks. GP: SI lo, BX hi, R8 sub, R9 sup,
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
	for _, pl := range packedPlanes {
		packedK2(g, pl[0], pl[1], false)
	}
	packedK2(g, 4, 0, true)
}

func packedK(g *gen, lo, hi int, sym bool, T int) {
	w := packed512
	loTabs, hiTabs := packedKEntry(g, lo, hi, sym, fmt.Sprintf("T%d", T), 1)
	f := func(field, part string) Mem { return g.field(RDX, field, part) }
	g.MOVQ(f("xstride", ""), R12)
	g.LEAQ(mi(R12, R12, 2, 0), R14)
	g.MOVQ(f("xsstride", ""), R13)
	g.SHLQ(U8(2), R13)
	g.LEAQ(mi(R13, R13, 2, 0), R15)
	packedKSetup(g, lo, hi, sym)

	g.Label("row")
	g.zeroZ(16, 17, 18, 19)
	g.MOVQ(sp(16), RSI)
	g.MOVQ(sp(24), RBX)
	g.MOVQ(sp(32), R8)
	g.MOVQ(sp(40), R9)
	g.MOVQ(g.arg(0), RDX)
	packedKFirstSB(g)

	g.Label("sb")
	if T == 1 {
		// Decode streams each plane once. The quants are one thick
		// sequential stream the hardware prefetchers follow; the parameter
		// streams are thin (12 and 4 bytes per super-block for q4) and
		// are prefetched about 20 super-blocks ahead, as the q8 row
		// kernel does with its scales.
		packedKPrefetch(g, lo, hi, sym, packedKRow{RSI, RBX, R8, R9})
	}
	packedKParams(g, sym, K1)
	for c := range 2 {
		packedKChunk(g, w, lo, hi, c, loTabs, hiTabs)
	}
	packedKTokens(g, T, 2, false, nibbleHigh(lo, hi))
	g.MOVQ(g.arg(0), RDX)
	g.ADDQ(f("subSB", ""), R8)
	g.ADDQ(f("supSB", ""), R9)
	packedKNextSB(g)
	packedKParams(g, sym, K2)
	packedKChunk(g, w, lo, hi, 0, loTabs, hiTabs)
	packedKTokens(g, T, 1, true, nibbleHigh(lo, hi))

	g.Label("reduce")
	if T == 1 {
		g.VADDPS(Y17, Y16, Y16)
	}
	// Token t's row sum into X(4+t).
	for t := range T {
		g.VMOVAPS(y(16+t), y(4+t))
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
	packedKNextRows(g, 1, "row")
}

// packedKEntry builds the shift tables of the kernel named by its encoding
// and tag (T1, T4, R2) and opens its text: DX the argument pointer, 0(SP) the
// loop's iterations (step rows each), returning early when there are none,
// and the frame's plane pointers (see above).
func packedKEntry(g *gen, lo, hi int, sym bool, tag string, step int) (loTabs, hiTabs []Mem) {
	kind := "QK"
	if sym {
		kind = "Sym"
	}
	name := fmt.Sprintf("packed%sLo%dHi%d%sVNNI", kind, lo, hi, tag)
	loTabs, hiTabs = g.loHiTables(name, packed512.vbytes, lo, hi)
	g.text(name, "func(p *packedKArgs)", 48)
	f := func(field, part string) Mem { return g.field(RDX, field, part) }
	g.MOVQ(g.arg(0), RDX)
	g.MOVQ(f("rows", ""), RAX)
	if step == 2 {
		g.SHRQ(U8(1), RAX)
	} else {
		g.TESTQ(RAX, RAX)
	}
	g.JZ(LabelRef("ret"))
	g.MOVQ(RAX, sp(0))
	for i, fl := range []string{"y", "lo", "hi", "sub", "sup"} {
		g.MOVQ(f(fl, "base"), RAX)
		g.MOVQ(RAX, sp(8*(i+1)))
	}
	return loTabs, hiTabs
}

// packedKSetup loads the registers every super-block reads: the masks K1
// (whole super-block), K2 (half) and K3 (four dwords), the plane masks Z28,
// Z29, the parameter decoding's Y20–Y22 and packedKConsts.
func packedKSetup(g *gen, lo, hi int, sym bool) {
	f := func(field, part string) Mem { return g.field(RDX, field, part) }
	g.KMOVQ(f("kFull", ""), K1)
	g.KMOVQ(f("kHalf", ""), K2)
	g.MOVL(U32(0x0f), EAX)
	g.KMOVW(EAX, K3)
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
	packedKConsts(g, lo, hi)
}

// packedKParams sets Y24 = a and Y25 = m of the super-block's eight blocks
// (sub at R8, sup at R9; k masks the parameter bytes the super-block has).
func packedKParams(g *gen, sym bool, k Register) { packedKParamsAt(g, sym, k, R8, R9) }

// packedKParamsAt is packedKParams with the sub and sup planes at sub, sup.
func packedKParamsAt(g *gen, sym bool, k Register, sub, sup GPPhysical) {
	if sym {
		g.VMOVDQU8_Z(m(sup, 0), k, X7)
		g.VPSHUFB(X20, X7, X7)
		g.VCVTPH2PS(X7, Y24)
		g.VMULPS(Y22, Y24, Y25)
		return
	}
	g.VPBROADCASTD(m(sup, 0), X4)
	g.VCVTPH2PS(X4, Y4)
	g.VMOVSLDUP(Y4, Y5) // d
	g.VMOVSHDUP(Y4, Y6) // dmin
	g.VMOVDQU8_Z(m(sub, 0), k, X7)
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

// nibbleHigh says the odd quant vectors of a chunk hold 16·q: the 4-bit
// encodings without a hi plane (q4, q4s), whose upper nibbles need no
// shift (16·15·127·4 stays far inside int32 and below 2^24, so the block
// sums and their conversion stay exact).
func nibbleHigh(lo, hi int) bool { return lo == 4 && hi == 0 }

// packedKChunk unpacks chunk c of the super-block (lo at SI, hi at BX) into
// Z(2c), Z(2c+1) and moves the plane pointers past it.
func packedKChunk(g *gen, w packedWidth, lo, hi, c int, loTabs, hiTabs []Mem) {
	packedKChunkAt(g, w, lo, hi, c, loTabs, hiTabs, RSI, RBX)
}

// packedKChunkAt is packedKChunk with the planes at loP, hiP.
func packedKChunkAt(g *gen, w packedWidth, lo, hi, c int, loTabs, hiTabs []Mem, loP, hiP GPPhysical) {
	dst := []VecPhysical{z(2 * c), z(2*c + 1)}
	if nibbleHigh(lo, hi) {
		// The high nibbles stay in place (16·q): one VPANDND, no shift;
		// their block sums are shifted back (exact: multiples of 16).
		g.VMOVDQU64(m(loP, 0), Z4)
		g.VPANDD(Z28, Z4, dst[0])
		g.VPANDND(Z4, Z28, dst[1])
		g.ADDQ(U8(64), loP)
		return
	}
	unpackPlane(g, w, lo, 0, loP, loTabs, Z28, dst, []VecPhysical{Z4, Z5}, Z7)
	g.ADDQ(U8(16*lo), loP)
	if hi > 0 {
		unpackPlane(g, w, hi, lo, hiP, hiTabs, Z29, dst, []VecPhysical{Z6}, Z7)
		g.ADDQ(U8(16*hi), hiP)
	}
}

// packedKTokens accumulates the super-block's products with T tokens
// (chunks unpacked chunks in Z0…); half: only the first four blocks exist,
// so the activation scales and sums are loaded under K3.
func packedKTokens(g *gen, T, chunks int, half, nib bool) {
	if T == 4 {
		packedKRegroup(g, chunks)
	}
	// Token t's scales and sums are R13 (R15 = 3·R13) apart, its
	// activations R12 (R14 = 3·R12).
	for t := range T {
		if half {
			g.VMOVUPS_Z(tokenAt(R10, R13, R15, t, 0), K3, Y27)
			g.VMULPS(Y27, Y24, Y26)
			g.VMOVDQU32_Z(tokenAt(R11, R13, R15, t, 0), K3, Y9)
			g.VCVTDQ2PS(Y9, Y9)
			g.VMULPS(Y27, Y9, Y27)
		} else {
			g.VMULPS(tokenAt(R10, R13, R15, t, 0), Y24, Y26)
			g.VCVTDQ2PS(tokenAt(R11, R13, R15, t, 0), Y27)
			g.VMULPS(tokenAt(R10, R13, R15, t, 0), Y27, Y27)
		}
		offs, sums := y(16+t), y(16+t)
		if T == 1 {
			offs = Y17
		}
		g.VFNMADD231PS(Y27, Y25, offs)
		if T == 4 {
			packedKBlockSumsPerm(g, chunks, nib, func(k int) Mem { return tokenAt(RDI, R12, R14, t, 64*k) })
			g.VFMADD231PS(Y26, Y10, sums)
			continue
		}
		packedKBlockSums(g, chunks, nib, func(k int) Mem { return tokenAt(RDI, R12, R14, t, 64*k) })
		g.VFMADD231PS(Y26, Y5, sums)
	}
}

// packedKNextRows moves the frame's y and plane pointers step rows on, loops
// to label while iterations are left, and returns ("ret").
func packedKNextRows(g *gen, step int, label string) {
	g.ADDQ(U8(4*step), sp(8))
	for i, fl := range []string{"loRow", "hiRow", "subRow", "supRow"} {
		g.MOVQ(g.field(RDX, fl, ""), RAX)
		if step == 2 {
			g.SHLQ(U8(1), RAX)
		}
		g.ADDQ(RAX, sp(16+8*i))
	}
	g.DECQ(sp(0))
	g.JNZ(LabelRef(label))
	g.VZEROUPPER()
	g.Label("ret")
	g.RET()
}

// packedKFirstSB points DI, R10 and R11 at token 0's activations, scales and
// sums of the row's first super-block and CX at the super-block count,
// jumping to "half" when there are none.
func packedKFirstSB(g *gen) {
	f := func(field, part string) Mem { return g.field(RDX, field, part) }
	g.MOVQ(f("xq", "base"), RDI)
	g.MOVQ(f("xs", "base"), R10)
	g.MOVQ(f("xsum", "base"), R11)
	g.MOVQ(f("sbs", ""), RCX)
	g.TESTQ(RCX, RCX)
	g.JZ(LabelRef("half"))
}

// packedKNextSB moves the activation pointers (DI, R10, R11) to the next
// super-block and closes the super-block loop; at "half", it skips to
// "reduce" when the row has no lone last chunk.
func packedKNextSB(g *gen) {
	g.ADDQ(U32(256), RDI)
	g.ADDQ(U8(32), R10)
	g.ADDQ(U8(32), R11)
	g.DECQ(RCX)
	g.JNZ(LabelRef("sb"))

	g.Label("half")
	g.MOVQ(g.arg(0), RDX)
	g.CMPQ(g.field(RDX, "half", ""), U8(0))
	g.JEQ(LabelRef("reduce"))
}

// packedKRow is where one row's planes are walked: the lo and hi quant
// planes and the sub and sup parameter planes.
type packedKRow struct{ lo, hi, sub, sup GPPhysical }

// packedKPrefetch prefetches a decode row's streams for a super-block ahead:
// the thin parameter planes about 20 super-blocks ahead (12 and 4 bytes per
// super-block for q4), as the q8 row kernel does with its scales, and the
// quants packedKQuantAhead ahead.
func packedKPrefetch(g *gen, lo, hi int, sym bool, r packedKRow) {
	if sym {
		g.PREFETCHT0(m(r.sup, 256))
	} else {
		g.PREFETCHT0(m(r.sub, 256))
		g.PREFETCHT0(m(r.sup, 128))
	}
	packedKPrefetchQuants(g, lo, hi, r.lo, r.hi)
}

// packedKQuantAhead is how far ahead (bytes) the decode kernels prefetch
// each row's quant planes.
const packedKQuantAhead = 4096

// packedKPrefetchQuants prefetches one super-block's quant bytes (the lo
// plane at loP, the hi plane at hiP) packedKQuantAhead ahead. A row is only
// a few KiB, too short a stream for the hardware prefetchers to reach full
// distance before the kernel moves to the next row (or pair of rows); in
// A/B runs on the 1.1B shape this lifted one-thread decode 1.3-1.6x, with
// 1-12 KiB distances all within noise of each other from 4 KiB up.
func packedKPrefetchQuants(g *gen, lo, hi int, loP, hiP GPPhysical) {
	// A super-block holds 32·bits bytes of a plane: one prefetch per
	// cache line of them (the next super-block's start covers the line a
	// misaligned end spills into).
	for off := 0; off < 32*lo; off += 64 {
		g.PREFETCHT0(m(loP, packedKQuantAhead+off))
	}
	for off := 0; off < 32*hi; off += 64 {
		g.PREFETCHT0(m(hiP, packedKQuantAhead+off))
	}
}

// packedK2 is the decode kernel (one token) over pairs of rows: per
// super-block the activation terms are loaded once for both rows, and the
// loop's bookkeeping is shared. rows must be even. Row 0 of a pair: SI, BX,
// R8, R9 as in packedK; row 1: R12 lo, R13 hi, R14 sub, R15 sup. Sums: Y16
// products, Y17 offsets (row 0), Y18, Y19 (row 1); Y23 the half
// super-block's masked xs.
func packedK2(g *gen, lo, hi int, sym bool) {
	w := packed512
	loTabs, hiTabs := packedKEntry(g, lo, hi, sym, "R2", 2)
	f := func(field, part string) Mem { return g.field(RDX, field, part) }
	packedKSetup(g, lo, hi, sym)

	rws := []packedKRow{{RSI, RBX, R8, R9}, {R12, R13, R14, R15}}
	g.Label("pair")
	g.zeroZ(16, 17, 18, 19)
	g.MOVQ(g.arg(0), RDX)
	for i, fl := range []string{"loRow", "hiRow", "subRow", "supRow"} {
		r0 := []GPPhysical{RSI, RBX, R8, R9}[i]
		r1 := []GPPhysical{R12, R13, R14, R15}[i]
		g.MOVQ(sp(16+8*i), r0)
		g.MOVQ(f(fl, ""), r1)
		g.ADDQ(r0, r1)
	}
	packedKFirstSB(g)

	body := func(k Register, chunks int, half bool) {
		if half {
			g.VMOVUPS_Z(m(R10, 0), K3, Y23)
			g.VMOVDQU32_Z(m(R11, 0), K3, Y27)
			g.VCVTDQ2PS(Y27, Y27)
			g.VMULPS(Y23, Y27, Y27)
		} else {
			g.VCVTDQ2PS(m(R11, 0), Y27)
			g.VMULPS(m(R10, 0), Y27, Y27)
		}
		for i, rr := range rws {
			packedKParamsAt(g, sym, k, rr.sub, rr.sup)
			for c := range chunks {
				packedKChunkAt(g, w, lo, hi, c, loTabs, hiTabs, rr.lo, rr.hi)
			}
			if half {
				g.VMULPS(Y23, Y24, Y26)
			} else {
				g.VMULPS(m(R10, 0), Y24, Y26)
			}
			g.VFNMADD231PS(Y27, Y25, y(17+2*i))
			packedKBlockSums(g, chunks, nibbleHigh(lo, hi), func(k int) Mem { return m(RDI, 64*k) })
			g.VFMADD231PS(Y26, Y5, y(16+2*i))
		}
	}

	g.Label("sb")
	for _, rr := range rws {
		packedKPrefetch(g, lo, hi, sym, rr)
	}
	body(K1, 2, false)
	g.MOVQ(g.arg(0), RDX)
	for _, rr := range rws {
		if !sym {
			g.ADDQ(f("subSB", ""), rr.sub)
		}
		g.ADDQ(f("supSB", ""), rr.sup)
	}
	packedKNextSB(g)
	body(K2, 1, true)

	g.Label("reduce")
	for i := range 2 {
		g.VADDPS(y(17+2*i), y(16+2*i), y(4+i))
		g.hsumY(4+i, 8+i)
	}
	g.VUNPCKLPS(X5, X4, X4) // [row 0, row 1]
	g.MOVQ(g.arg(0), RDX)
	g.MOVQ(sp(8), RAX)
	g.CMPQ(f("add", ""), U8(0))
	g.JEQ(LabelRef("store"))
	g.VMOVSD(m(RAX, 0), X5)
	g.VADDPS(X5, X4, X4)
	g.Label("store")
	g.VMOVSD(X4, m(RAX, 0))
	packedKNextRows(g, 2, "pair")
}

// packedKConsts sets Z12 to the VPERMD index that gathers the eight block
// sums (see packedKBlockSums) and, for in-place high nibbles, Y13 to the
// per-block right shifts [0 0 4 4 0 0 4 4].
func packedKConsts(g *gen, lo, hi int) {
	for i, v := range []uint32{0, 4, 8, 12, 2, 6, 10, 14} {
		g.MOVL(U32(v), EAX)
		g.VPINSRD(U8(i%4), EAX, x(4+i/4), x(4+i/4))
	}
	g.VINSERTI128(U8(1), X5, Y4, Y12)
	if nibbleHigh(lo, hi) {
		g.VPXOR(X4, X4, X4)
		g.MOVL(U32(4), EAX)
		g.VPINSRD(U8(2), EAX, X4, X4)
		g.VPINSRD(U8(3), EAX, X4, X4)
		g.VINSERTI128(U8(1), X4, Y4, Y13)
	}
}

// packedKBlockSums leaves in Y5 the eight exact int32 block sums of the
// super-block's quant vectors Z0… (chunks of them: 1 or 2) with the
// activations at x(k), converted to float32. Vector k's VPDPBUSD lanes
// 0–7 hold partial sums of block 2k, lanes 8–15 of block 2k+1; the
// partials are added in integers (128-bit lane shuffles, unpacks, VPSHUFD)
// until lane j of each 128-bit lane holds blocks j and 4+j, and VPERMD
// gathers them in block order. Scratch: Z4, Z6, Z7, Z8–Z11.
func packedKBlockSums(g *gen, chunks int, nib bool, x func(k int) Mem) {
	for k := range 4 {
		acc := z(8 + k)
		g.VPXORD(acc, acc, acc)
		if k < 2*chunks {
			g.VPDPBUSD(x(k), z(k), acc)
		}
	}
	// [b0 b1 b2 b3] and [b4 b5 b6 b7], four partials each.
	g.VSHUFI32X4(U8(0x88), Z9, Z8, Z4)
	g.VSHUFI32X4(U8(0xdd), Z9, Z8, Z5)
	g.VPADDD(Z5, Z4, Z4)
	g.VSHUFI32X4(U8(0x88), Z11, Z10, Z6)
	g.VSHUFI32X4(U8(0xdd), Z11, Z10, Z7)
	g.VPADDD(Z7, Z6, Z6)
	packedKGather(g, nib, 4, 6, 5, 7)
}

// packedKGather finishes the block sums from Z(a) (partials of blocks 0–3,
// one per 128-bit lane) and Z(b) (blocks 4–7): pairs of them are added until
// lane j holds [b_j, b_j, b_4+j, b_4+j], VPERMD (Z12) gathers them in block
// order, and Y(dst) gets them converted to float32 (nib: the in-place high
// nibbles' sums shifted back first). Scratch: Z(tmp).
func packedKGather(g *gen, nib bool, a, b, dst, tmp int) {
	g.VPUNPCKLQDQ(z(b), z(a), z(dst))
	g.VPUNPCKHQDQ(z(b), z(a), z(tmp))
	g.VPADDD(z(tmp), z(dst), z(dst))
	g.VPSHUFD(U8(0xb1), z(dst), z(tmp))
	g.VPADDD(z(tmp), z(dst), z(dst))
	g.VPERMD(z(dst), Z12, z(dst))
	if nib {
		g.VPSRAVD(Y13, y(dst), y(dst))
	}
	g.VCVTDQ2PS(y(dst), y(dst))
}

// packedKRegroup rewrites each unpacked chunk's two vectors (Z0, Z1: blocks
// 0–1 and 2–3; Z2, Z3: blocks 4–5 and 6–7) into Z4, Z5 (Z6, Z7): the first
// and the second 16 quants of each of its four blocks, so that one 128-bit
// lane holds one block and two VPDPBUSD can share an accumulator. The
// four-token kernels take their activations regrouped the same way
// (permuteChunks in the Go wrapper), once per call instead of once per row.
func packedKRegroup(g *gen, chunks int) {
	for c := range chunks {
		g.VSHUFI64X2(U8(0x88), z(2*c+1), z(2*c), z(4+2*c))
		g.VSHUFI64X2(U8(0xdd), z(2*c+1), z(2*c), z(5+2*c))
	}
}

// packedKBlockSumsPerm is packedKBlockSums on regrouped quants (Z4…) and
// activations: two VPDPBUSD per accumulator, whose 128-bit lane j holds
// partial sums of block j (Z8) and 4+j (Z9), then the same integer
// reduction; the converted sums are left in Y10. Scratch: Z8–Z11.
func packedKBlockSumsPerm(g *gen, chunks int, nib bool, x func(k int) Mem) {
	g.VPXORD(Z8, Z8, Z8)
	g.VPXORD(Z9, Z9, Z9)
	for k := range 2 * chunks {
		g.VPDPBUSD(x(k), z(4+k), z(8+k/2))
	}
	packedKGather(g, nib, 8, 9, 10, 11)
}
