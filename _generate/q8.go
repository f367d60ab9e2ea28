package main

import (
	"github.com/mmcloughlin/avo/attr"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// q8 kernels. Each takes whole groups only: len(xs) groups of `group`
// elements, group a multiple of 32. A group's integer dot product is built
// exactly in int32 lanes, converted to float (exact: |sum| < 2^24) and
// accumulated as d·sum with d = f16(ws[g])·xs[g].
//
// AVX2 path: VPMADDUBSW needs an unsigned and a signed operand, so it
// multiplies |w| by sign(w)·x. This is exact as long as x ≠ −128 (negating
// −128 wraps); QuantizeQ8 produces values in [−127, 127].
//
// VNNI path: VPDPBUSD multiplies unsigned by signed bytes and adds four
// products into each int32 lane without saturation. It is fed w+128 (w XOR
// 0x80, always in 0..255) and x; the excess 128·Σx is accumulated alongside
// by VPDPBUSD(0x80…, x) and subtracted per group. Exact for every int8 input.

// vnniWidth is the vector width of a VNNI kernel: 256-bit for any multiple
// of 32 as the group size, 512-bit (half the instructions per byte) for
// multiples of 64.
type vnniWidth struct {
	suffix string // kernel name suffix
	bytes  int    // bytes per chunk
	shift  uint8  // log2(bytes): group size to chunks
	v      func(int) VecPhysical
	zeroF  func(g *gen, r VecPhysical) // clears a float accumulator
	zeroI  func(g *gen, r VecPhysical) // clears an int32 accumulator
	load   func(g *gen, src Mem, dst VecPhysical)
	xor    func(g *gen, src Op, a, dst VecPhysical)
	// reduce folds the accumulator pair v(0), v(1) into y(0).
	reduce func(g *gen)
	// reduce4 folds the four row sums v(4)..v(7) into y(0)..y(3).
	reduce4 func(g *gen)
}

var (
	vnni256 = vnniWidth{"", 32, 5, y,
		func(g *gen, r VecPhysical) { g.VXORPS(r, r, r) },
		func(g *gen, r VecPhysical) { g.VPXOR(r, r, r) },
		func(g *gen, src Mem, dst VecPhysical) { g.VMOVDQU(src, dst) },
		func(g *gen, src Op, a, dst VecPhysical) { g.VPXOR(src, a, dst) },
		func(g *gen) { g.VADDPS(Y1, Y0, Y0) },
		func(g *gen) {
			for i := range 4 {
				g.VMOVAPS(y(4+i), y(i))
			}
		},
	}
	vnni512 = vnniWidth{"512", 64, 6, z,
		func(g *gen, r VecPhysical) { g.VPXORD(r, r, r) },
		func(g *gen, r VecPhysical) { g.VPXORD(r, r, r) },
		func(g *gen, src Mem, dst VecPhysical) { g.VMOVDQU64(src, dst) },
		func(g *gen, src Op, a, dst VecPhysical) { g.VPXORD(src, a, dst) },
		func(g *gen) {
			g.VADDPS(Z1, Z0, Z0)
			g.VEXTRACTF64X4(U8(1), Z0, Y1)
			g.VADDPS(Y1, Y0, Y0)
		},
		func(g *gen) {
			for i := range 4 {
				g.VEXTRACTF64X4(U8(1), z(4+i), y(i))
			}
			for i := range 4 {
				g.VADDPS(y(4+i), y(i), y(i))
			}
		},
	}
)

func emitQ8Kernels(g *gen) {
	dotQ8AVX2(g)
	dotQ8x4AVX2(g)
	dotQ8VNNI(g, vnni256)
	dotQ8x4VNNI(g, vnni256)
	dotQ8VNNI(g, vnni512)
	dotQ8x4VNNI(g, vnni512)
	dotQ8VNNI32(g)
	dotQ8RowsVNNI32(g)
	quantizeQ8AVX512(g)
	tileQ8x2VNNI(g)
}

const (
	sigQ8   = "func(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32"
	sigQ8x4 = "func(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int)"
)

// c80 sets v(14) to 0x80 in every byte (the VNNI bias).
func c80(g *gen, v func(int) VecPhysical) { g.broadcastVia128(0x80808080, 14, v(14)) }

// q8x4Setup loads the x4 arguments: quant rows R8..R11, x DI, scale rows
// R12, R13, BX, SI, xs DX, group count CX; clears Y4..Y7.
func q8x4Setup(g *gen) {
	g.MOVQ(g.base(1), R8)
	g.MOVQ(g.arg(3), RAX)
	g.rows4(R8, R9, R10, R11, RAX)
	g.MOVQ(g.base(2), R12)
	g.MOVQ(g.arg(4), RAX)
	g.SHLQ(U8(1), RAX)
	g.rows4(R12, R13, RBX, RSI, RAX)
	g.MOVQ(g.base(5), RDI)
	g.MOVQ(g.base(6), RDX)
	g.MOVQ(g.length(6), RCX)
	for i := 4; i < 8; i++ {
		g.VXORPS(y(i), y(i), y(i))
	}
}

// storeX4 reduces y(0)..y(3) and writes the four sums to *dst.
func storeX4(g *gen) {
	g.hsum4(0, 1, 2, 3)
	g.MOVQ(g.arg(0), R8)
	g.VMOVUPS(X0, m(R8, 0))
	g.VZEROUPPER()
	g.RET()
}

func dotQ8AVX2(g *gen) {
	g.text("dotQ8AVX2", sigQ8, 0)
	g.MOVQ(g.base(0), RSI)
	g.MOVQ(g.base(1), RBX)
	g.MOVQ(g.base(2), RDI)
	g.MOVQ(g.base(3), RDX)
	g.MOVQ(g.length(3), RCX)
	g.MOVQ(g.arg(4), R8)
	g.SHRQ(U8(5), R8)
	g.broadcastVia128(0x00010001, 15, Y15) // 1 in every int16 lane: VPMADDWD pair sums
	g.VXORPS(Y0, Y0, Y0)
	g.TESTQ(RCX, RCX)
	g.JZ(LabelRef("done"))

	g.Label("group")
	g.MOVQ(R8, R9)
	g.VPXOR(Y2, Y2, Y2)

	g.Label("chunk")
	g.VMOVDQU(m(RSI, 0), Y4)
	g.VMOVDQU(m(RDI, 0), Y5)
	g.VPSIGNB(Y4, Y5, Y5)
	g.VPABSB(Y4, Y4)
	g.VPMADDUBSW(Y5, Y4, Y4)
	g.VPMADDWD(Y15, Y4, Y4)
	g.VPADDD(Y4, Y2, Y2)
	g.ADDQ(U8(32), RSI)
	g.ADDQ(U8(32), RDI)
	g.DECQ(R9)
	g.JNZ(LabelRef("chunk"))

	// The scale starts from a zeroing idiom so that VPINSRW does not carry
	// a dependency on the previous group's scale through the register.
	g.VPXOR(X6, X6, X6)
	g.VPINSRW(U8(0), m(RBX, 0), X6, X6)
	g.VCVTPH2PS(X6, X6)
	g.VMULSS(m(RDX, 0), X6, X6)
	g.VBROADCASTSS(X6, Y6)
	g.VCVTDQ2PS(Y2, Y2)
	g.VFMADD231PS(Y6, Y2, Y0)
	g.ADDQ(U8(2), RBX)
	g.ADDQ(U8(4), RDX)
	g.DECQ(RCX)
	g.JNZ(LabelRef("group"))

	g.Label("done")
	g.hsumY(0, 1)
	g.VZEROUPPER()
	g.MOVSS(X0, g.at(g.ReturnIndex(0)))
	g.RET()
}

func dotQ8x4AVX2(g *gen) {
	g.text("dotQ8x4AVX2", sigQ8x4, 16)
	q8x4Setup(g)
	g.broadcastVia128(0x00010001, 15, Y15)
	g.TESTQ(RCX, RCX)
	g.JZ(LabelRef("done"))

	g.Label("group")
	g.MOVQ(g.arg(7), RAX)
	g.SHRQ(U8(5), RAX)
	for i := range 4 {
		g.VPXOR(y(i), y(i), y(i))
	}

	g.Label("chunk")
	g.VMOVDQU(m(RDI, 0), Y8)
	for i, row := range []GPPhysical{R8, R9, R10, R11} {
		w, sx := y(9+2*(i%2)), y(10+2*(i%2))
		g.VMOVDQU(m(row, 0), w)
		g.VPSIGNB(w, Y8, sx)
		g.VPABSB(w, w)
		g.VPMADDUBSW(sx, w, w)
		g.VPMADDWD(Y15, w, w)
		g.VPADDD(w, y(i), y(i))
	}
	for _, r := range []GPPhysical{R8, R9, R10, R11, RDI} {
		g.ADDQ(U8(32), r)
	}
	g.DECQ(RAX)
	g.JNZ(LabelRef("chunk"))

	// d_r = f16(ws_r[g])·xs[g] for the four rows, to 0(SP)..12(SP).
	g.VPXOR(X9, X9, X9)
	for i, r := range []GPPhysical{R12, R13, RBX, RSI} {
		g.VPINSRW(U8(i), m(r, 0), X9, X9)
	}
	g.VCVTPH2PS(X9, X9)
	g.VBROADCASTSS(m(RDX, 0), X10)
	g.VMULPS(X10, X9, X9)
	g.VMOVUPS(X9, sp(0))
	// Accumulate d_r·sum into Y4..Y7.
	for i := range 4 {
		g.VCVTDQ2PS(y(i), y(i))
	}
	for i := range 4 {
		g.VBROADCASTSS(sp(4*i), y(10+i))
	}
	for i := range 4 {
		g.VFMADD231PS(y(10+i), y(i), y(4+i))
	}
	for _, r := range []GPPhysical{R12, R13, RBX, RSI} {
		g.ADDQ(U8(2), r)
	}
	g.ADDQ(U8(4), RDX)
	g.DECQ(RCX)
	g.JNZ(LabelRef("group"))

	g.Label("done")
	vnni256.reduce4(g)
	storeX4(g)
}

// The VNNI kernels walk the row in blocks of up to eight groups. At the
// start of a block they compute the eight combined scales d_g of each row
// with masked (fault-free past the end) loads, VCVTPH2PS and one VMULPS, and
// park them on the stack; each group then needs a single FMA with an
// embedded broadcast of its d_g. Groups remaining: R15; block size: CX·4
// bytes of scales; position in block: R14 (bytes).

// vnniBlock sets CX = 4·min(8, R15) and K1 to the block's lane mask.
func vnniBlock(g *gen) {
	g.MOVQ(R15, RCX)
	g.CMPQ(RCX, U8(8))
	g.JLE(LabelRef("blkmask"))
	g.MOVQ(U32(8), RCX)
	g.Label("blkmask")
	g.lowMask(EAX, K1)
	g.SHLQ(U8(2), RCX)
	g.XORQ(R14, R14)
}

// vnniBlockNext moves the scale pointers (xs in DX, the weight scale rows
// in srows) past the block and loops while groups remain.
func vnniBlockNext(g *gen, srows ...GPPhysical) {
	g.ADDQ(RCX, RDX)
	g.SHRQ(U8(1), RCX)
	for _, r := range srows {
		g.ADDQ(RCX, r)
	}
	g.SHRQ(U8(1), RCX)
	g.SUBQ(RCX, R15)
	g.JNZ(LabelRef("block"))
}

// blockScales1 parks the block's eight scales of one row (ws in BX) at
// 0(SP), through Y6 and Y7.
func blockScales1(g *gen) {
	g.VMOVDQU16_Z(m(RBX, 0), K1, X6)
	g.VCVTPH2PS(X6, Y6)
	g.VMOVUPS_Z(m(RDX, 0), K1, Y7)
	g.VMULPS(Y7, Y6, Y6)
	g.VMOVUPS(Y6, sp(0))
}

// rowScales loads eight scales of one row (mask K1), widens them and
// multiplies by the activation scales in Y13.
func rowScales(g *gen, row GPPhysical, dst VecPhysical) {
	g.VMOVDQU16_Z(m(row, 0), K1, X9)
	g.VCVTPH2PS(X9, dst)
	g.VMULPS(Y13, dst, dst)
}

// q8Load1 loads the single-row arguments: w SI, scales BX, x DI, xs DX,
// group count R15.
func q8Load1(g *gen) {
	g.MOVQ(g.base(0), RSI)
	g.MOVQ(g.base(1), RBX)
	g.MOVQ(g.base(2), RDI)
	g.MOVQ(g.base(3), RDX)
	g.MOVQ(g.length(3), R15)
}

func dotQ8VNNI(g *gen, w vnniWidth) {
	v := w.v
	g.text("dotQ8VNNI"+w.suffix, sigQ8, 32)
	q8Load1(g)
	g.MOVQ(g.arg(4), R8)
	g.SHRQ(U8(w.shift), R8)
	c80(g, v)
	w.zeroF(g, v(0))
	w.zeroF(g, v(1))
	g.TESTQ(R15, R15)
	g.JZ(LabelRef("done"))

	g.Label("block")
	vnniBlock(g)
	blockScales1(g)

	g.Label("group")
	g.MOVQ(R8, R9)
	w.zeroI(g, v(2))
	w.zeroI(g, v(3))

	g.Label("chunk")
	w.load(g, m(RDI, 0), v(5))
	w.xor(g, m(RSI, 0), v(14), v(4))
	g.VPDPBUSD(v(5), v(4), v(2))
	g.VPDPBUSD(v(5), v(14), v(3))
	g.ADDQ(U8(w.bytes), RSI)
	g.ADDQ(U8(w.bytes), RDI)
	g.DECQ(R9)
	g.JNZ(LabelRef("chunk"))

	// Two accumulators, swapped after every group, so consecutive groups'
	// FMAs do not wait on each other.
	g.VPSUBD(v(3), v(2), v(2))
	g.VCVTDQ2PS(v(2), v(2))
	g.VFMADD231PS_BCST(mi(SP, R14, 1, 0), v(2), v(0))
	g.VMOVAPS(v(0), v(3))
	g.VMOVAPS(v(1), v(0))
	g.VMOVAPS(v(3), v(1))
	g.ADDQ(U8(4), R14)
	g.CMPQ(R14, RCX)
	g.JLT(LabelRef("group"))
	vnniBlockNext(g, RBX)

	g.Label("done")
	w.reduce(g)
	g.hsumY(0, 1)
	g.VZEROUPPER()
	g.MOVSS(X0, g.at(g.ReturnIndex(0)))
	g.RET()
}

func dotQ8x4VNNI(g *gen, w vnniWidth) {
	v := w.v
	g.text("dotQ8x4VNNI"+w.suffix, sigQ8x4, 128)
	q8x4Setup(g)
	g.MOVQ(RCX, R15)
	c80(g, v)
	g.TESTQ(R15, R15)
	g.JZ(LabelRef("done"))

	g.Label("block")
	vnniBlock(g)
	g.VMOVUPS_Z(m(RDX, 0), K1, Y13)
	for i, r := range []GPPhysical{R12, R13, RBX, RSI} {
		rowScales(g, r, Y9)
		g.VMOVUPS(Y9, sp(32*i))
	}

	g.Label("group")
	g.MOVQ(g.arg(7), RAX)
	g.SHRQ(U8(w.shift), RAX)
	for _, i := range []int{0, 1, 2, 3, 15} {
		w.zeroI(g, v(i))
	}

	g.Label("chunk")
	w.load(g, m(RDI, 0), v(8))
	g.VPDPBUSD(v(8), v(14), v(15))
	rows := []GPPhysical{R8, R9, R10, R11}
	for i, r := range rows {
		w.xor(g, m(r, 0), v(14), v(9+i))
	}
	for i := range rows {
		g.VPDPBUSD(v(8), v(9+i), v(i))
	}
	for _, r := range append(rows, RDI) {
		g.ADDQ(U8(w.bytes), r)
	}
	g.DECQ(RAX)
	g.JNZ(LabelRef("chunk"))

	for i := range 4 {
		g.VPSUBD(v(15), v(i), v(i))
	}
	for i := range 4 {
		g.VCVTDQ2PS(v(i), v(i))
	}
	for i := range 4 {
		g.VFMADD231PS_BCST(mi(SP, R14, 1, 32*i), v(i), v(4+i))
	}
	g.ADDQ(U8(4), R14)
	g.CMPQ(R14, RCX)
	g.JLT(LabelRef("group"))
	vnniBlockNext(g, R12, R13, RBX, RSI)

	g.Label("done")
	w.reduce4(g)
	storeX4(g)
}

// The group-32 512-bit kernels cover two groups per 64-byte chunk. The two
// int32 half-vectors are scaled at once by [d_g ×8 | d_g+1 ×8], gathered
// from the block's scale vector with VPERMPS and an index vector that starts
// at [0 ×8 | 1 ×8] (Z18) and steps by 2 (Z17) per pair. A block with an odd
// number of groups (only the last one) finishes with one 256-bit group,
// accumulated separately so no 256-bit write clears a 512-bit accumulator.

// pairConst sets Z18 = [0 ×8 | 1 ×8], Z17 = 2 in every lane.
func pairConst(g *gen) {
	g.MOVL(U32(0xff00), EAX)
	g.KMOVW(EAX, K2)
	g.VPXORD(Z18, Z18, Z18)
	g.MOVL(U32(1), EAX)
	g.VPBROADCASTD(EAX, K2, Z18)
	g.broadcast32(2, Z17)
}

// vnniGroup is one chunk of dotQ8VNNI32 (two groups at 512 bits, one at
// 256): the corrected int32 sums of w (SI) and x (DI) in v(2), as floats,
// then scale.
func vnniGroup(g *gen, w vnniWidth, scale func()) {
	v := w.v
	w.load(g, m(RDI, 0), v(5))
	w.xor(g, m(RSI, 0), v(14), v(4))
	w.zeroI(g, v(2))
	w.zeroI(g, v(3))
	g.VPDPBUSD(v(5), v(4), v(2))
	g.VPDPBUSD(v(5), v(14), v(3))
	g.VPSUBD(v(3), v(2), v(2))
	g.VCVTDQ2PS(v(2), v(2))
	scale()
}

func dotQ8VNNI32(g *gen) {
	g.text("dotQ8VNNI32", sigQ8, 32)
	q8Load1(g)
	c80(g, z)
	pairConst(g)
	g.zeroZ(0, 1, 8)
	g.TESTQ(R15, R15)
	g.JZ(LabelRef("done"))

	g.Label("block")
	vnniBlock(g)
	blockScales1(g)
	g.VMOVDQA32(Z18, Z16)
	g.MOVQ(RCX, R9)
	g.ANDQ(I8(-8), R9)
	g.JZ(LabelRef("odd"))

	g.Label("pair")
	vnniGroup(g, vnni512, func() {
		g.VPERMPS(Z6, Z16, Z7)
		g.VPADDD(Z17, Z16, Z16)
		g.VFMADD231PS(Z7, Z2, Z0)
		g.VMOVAPS(Z0, Z3)
		g.VMOVAPS(Z1, Z0)
		g.VMOVAPS(Z3, Z1)
	})
	g.ADDQ(U8(64), RSI)
	g.ADDQ(U8(64), RDI)
	g.ADDQ(U8(8), R14)
	g.CMPQ(R14, R9)
	g.JLT(LabelRef("pair"))

	g.Label("odd")
	g.CMPQ(R14, RCX)
	g.JGE(LabelRef("next"))
	vnniGroup(g, vnni256, func() { g.VFMADD231PS_BCST(mi(SP, R14, 1, 0), Y2, Y8) })
	g.ADDQ(U8(32), RSI)
	g.ADDQ(U8(32), RDI)

	g.Label("next")
	vnniBlockNext(g, RBX)

	g.Label("done")
	g.VADDPS(Z1, Z0, Z0)
	g.VADDPS(Z8, Z0, Z0)
	g.VEXTRACTF64X4(U8(1), Z0, Y1)
	g.VADDPS(Y1, Y0, Y0)
	g.hsumY(0, 1)
	g.VZEROUPPER()
	g.MOVSS(X0, g.at(g.ReturnIndex(0)))
	g.RET()
}

// q8RowStep is one row's share of a step of dotQ8RowsVNNI32: w' = w XOR
// 0x80 from row into tmp, the int sums into acc (corrected by v(15) =
// 128·Σx, x in v(8)), converted, then scaled into facc by scale.
func q8RowStep(g *gen, v func(int) VecPhysical, row GPPhysical, acc, tmp VecPhysical, scale func()) {
	g.VPXORD(m(row, 0), v(14), tmp)
	g.VPXORD(acc, acc, acc)
	g.VPDPBUSD(v(8), tmp, acc)
	g.VPSUBD(v(15), acc, acc)
	g.VCVTDQ2PS(acc, acc)
	scale()
}

// dotQ8RowsVNNI32: y[r] (+)= row r times x for len(y) rows, a multiple of
// 4: row r's quants start at wq[r·stride], its scales at ws[r·sstride]; a
// row has len(xq) = 32·len(xs) quants. The quants of the next block and, at
// every step of eight groups, the scales of the next block are prefetched:
// the scale stream is too thin for the hardware prefetcher to pick up.
//
// Frame: 0..127(SP) the four rows' block scales, 128(SP) the block's pair
// bytes, 136(SP) the quant prefetch distance, 144(SP) the next y, 152(SP)
// 4-row blocks left, 160(SP) the scale prefetch distance, 168(SP) and
// 176(SP) the block's first quant and scale rows.
func dotQ8RowsVNNI32(g *gen) {
	g.text("dotQ8RowsVNNI32", "func(p *q8RowsArgs)", 184)
	f := func(ptr GPPhysical, name, part string) Mem { return g.field(ptr, name, part) }
	g.MOVQ(g.arg(0), RCX)
	g.MOVQ(f(RCX, "y", "len"), RAX)
	g.SHRQ(U8(2), RAX)
	g.JZ(LabelRef("ret"))
	g.MOVQ(RAX, sp(152))
	g.MOVQ(f(RCX, "y", "base"), RAX)
	g.MOVQ(RAX, sp(144))
	g.MOVQ(f(RCX, "wq", "base"), R8)
	g.MOVQ(R8, sp(168))
	g.MOVQ(f(RCX, "ws", "base"), R12)
	g.MOVQ(R12, sp(176))
	// Quants are prefetched one block (four rows) and 512 bytes ahead.
	g.MOVQ(f(RCX, "stride", ""), RAX)
	g.SHLQ(U8(2), RAX)
	g.ADDQ(U32(512), RAX)
	g.MOVQ(RAX, sp(136))
	g.MOVQ(f(RCX, "sstride", ""), RAX)
	g.SHLQ(U8(3), RAX)
	g.MOVQ(RAX, sp(160))
	c80(g, z)
	pairConst(g)

	g.Label("rowblk")
	g.MOVQ(g.arg(0), RCX)
	g.MOVQ(f(RCX, "stride", ""), RAX)
	g.rows4(R8, R9, R10, R11, RAX)
	g.MOVQ(f(RCX, "sstride", ""), RAX)
	g.SHLQ(U8(1), RAX)
	g.rows4(R12, R13, RBX, RSI, RAX)
	g.MOVQ(f(RCX, "xq", "base"), RDI)
	g.MOVQ(f(RCX, "xs", "base"), RDX)
	g.MOVQ(f(RCX, "xs", "len"), RCX)
	g.MOVQ(RCX, R15)
	g.zeroZ(4, 5, 6, 7, 28, 29, 30, 31)

	srows := []GPPhysical{R12, R13, RBX, RSI}
	rows := []GPPhysical{R8, R9, R10, R11}
	g.Label("block")
	g.MOVQ(sp(160), RAX)
	for _, r := range srows {
		g.PREFETCHT0(mi(r, RAX, 1, 0))
	}
	vnniBlock(g)
	g.VMOVUPS_Z(m(RDX, 0), K1, Y13)
	for i, r := range srows {
		rowScales(g, r, y(20+i))
	}
	for i := range srows {
		g.VMOVUPS(y(20+i), sp(32*i))
	}
	g.VMOVDQA32(Z18, Z16)
	g.MOVQ(RCX, RAX)
	g.ANDQ(I8(-8), RAX)
	g.JZ(LabelRef("odd"))
	g.MOVQ(RAX, sp(128))
	g.MOVQ(sp(136), RAX)

	g.Label("pair")
	for _, r := range rows {
		g.PREFETCHT0(mi(r, RAX, 1, 0))
	}
	g.VMOVDQU64(m(RDI, 0), Z8)
	g.VPXORD(Z15, Z15, Z15)
	g.VPDPBUSD(Z8, Z14, Z15)
	for i, r := range rows {
		acc, tmp := z(i), z(9+i)
		q8RowStep(g, z, r, acc, tmp, func() {
			g.VPERMPS(z(20+i), Z16, tmp)
			g.VFMADD231PS(tmp, acc, z(4+i))
		})
	}
	g.VPADDD(Z17, Z16, Z16)
	for _, r := range append(rows, RDI) {
		g.ADDQ(U8(64), r)
	}
	g.ADDQ(U8(8), R14)
	g.CMPQ(R14, sp(128))
	g.JLT(LabelRef("pair"))

	g.Label("odd")
	g.CMPQ(R14, RCX)
	g.JGE(LabelRef("next"))
	g.VMOVDQU(m(RDI, 0), Y8)
	g.VPXOR(Y15, Y15, Y15)
	g.VPDPBUSD(Y8, Y14, Y15)
	for i, r := range rows {
		acc := y(i)
		q8RowStep(g, y, r, acc, y(9+i), func() {
			g.VFMADD231PS_BCST(mi(SP, R14, 1, 32*i), acc, y(28+i))
		})
	}
	for _, r := range append(rows, RDI) {
		g.ADDQ(U8(32), r)
	}

	g.Label("next")
	vnniBlockNext(g, srows...)

	for i := range 4 {
		g.VADDPS(z(28+i), z(4+i), z(4+i))
	}
	g.reduce4Z()
	g.storeSums4(RAX, sp(144), func() {
		g.MOVQ(g.arg(0), R15)
		g.MOVQ(f(R15, "add", ""), RCX)
	})
	// Next block: four rows further.
	g.MOVQ(f(R15, "stride", ""), RAX)
	g.SHLQ(U8(2), RAX)
	g.ADDQ(sp(168), RAX)
	g.MOVQ(RAX, sp(168))
	g.MOVQ(RAX, R8)
	g.MOVQ(sp(160), RAX)
	g.ADDQ(sp(176), RAX)
	g.MOVQ(RAX, sp(176))
	g.MOVQ(RAX, R12)
	g.closeLoop(sp(152), "rowblk", "ret")
}

// quantizeQ8AVX512 is quantizeQ8Go for len(xs) whole groups of 32: xs[g] =
// max|x|/127, and xq = round(x·(1/xs[g])) rounded half away from zero, as
// math.Round does (VCVTPS2DQ would round half to even): t = trunc(v), then t
// moves one away from zero where |v − t| ≥ 0.5. Every step is exact for
// |v| ≤ 127, so the result equals the Go reference bit for bit (NaN inputs
// excepted). A group whose max|x| is below 2^-120 is a zero group, as in the
// reference.
func quantizeQ8AVX512(g *gen) {
	g.text("quantizeQ8AVX512", "func(xq []int8, xs []float32, x []float32)", 0)
	g.MOVQ(g.base(0), RDI)
	g.MOVQ(g.base(1), RDX)
	g.MOVQ(g.length(1), RCX)
	g.MOVQ(g.base(2), RSI)
	g.TESTQ(RCX, RCX)
	g.JZ(LabelRef("qdone"))
	g.broadcast32(0x7fffffff, Z31) // |·| mask
	g.broadcast32(0x80000000, Z30) // sign mask
	g.broadcast32(0x3f000000, Z29) // 0.5
	g.broadcast32(0x3f800000, Z28) // 1.0
	for _, c := range []struct {
		bits uint32
		n    int
	}{{0x42fe0000, 27}, {0x3f800000, 26}, {0x03800000, 25}} { // 127, 1, 2^-120
		g.MOVL(U32(c.bits), EAX)
		g.VMOVD(EAX, x(c.n))
	}

	g.Label("qloop")
	g.VMOVUPS(m(RSI, 0), Z0)
	g.VMOVUPS(m(RSI, 64), Z1)
	g.VANDPS(Z31, Z0, Z2)
	g.VANDPS(Z31, Z1, Z3)
	g.VMAXPS(Z3, Z2, Z2)
	g.VEXTRACTF64X4(U8(1), Z2, Y3)
	g.VMAXPS(Y3, Y2, Y2)
	g.VEXTRACTF128(U8(1), Y2, X3)
	g.VMAXPS(X3, X2, X2)
	g.VMOVHLPS(X2, X2, X3)
	g.VMAXPS(X3, X2, X2)
	g.VMOVSHDUP(X2, X3)
	g.VMAXSS(X3, X2, X2) // amax
	g.VUCOMISS(X25, X2)
	g.JCC(LabelRef("qnorm"))
	g.VXORPS(X2, X2, X2) // too small to invert: a zero group

	g.Label("qnorm")
	g.VDIVSS(X27, X2, X2) // d = amax/127
	g.VMOVSS(X2, m(RDX, 0))
	g.VXORPS(X4, X4, X4)
	g.VUCOMISS(X4, X2)
	g.JEQ(LabelRef("qzero"))
	g.VDIVSS(X2, X26, X4) // inv = 1/d

	g.Label("qzero")
	g.VBROADCASTSS(X4, Z4)
	g.VMULPS(Z4, Z0, Z0) // v = x·inv
	g.VMULPS(Z4, Z1, Z1)
	g.VRNDSCALEPS(U8(0x0b), Z0, Z2) // t = trunc(v)
	g.VRNDSCALEPS(U8(0x0b), Z1, Z3)
	g.VSUBPS(Z2, Z0, Z5) // v − t
	g.VSUBPS(Z3, Z1, Z6)
	g.VANDPS(Z31, Z5, Z5)
	g.VANDPS(Z31, Z6, Z6)
	g.VCMPPS(U8(0x1d), Z29, Z5, K1) // |v − t| ≥ 0.5
	g.VCMPPS(U8(0x1d), Z29, Z6, K2)
	g.VANDPS(Z30, Z0, Z5) // ±1 with v's sign
	g.VANDPS(Z30, Z1, Z6)
	g.VORPS(Z28, Z5, Z5)
	g.VORPS(Z28, Z6, Z6)
	g.VADDPS(Z5, Z2, K1, Z2)
	g.VADDPS(Z6, Z3, K2, Z3)
	g.VCVTTPS2DQ(Z2, Z2)
	g.VCVTTPS2DQ(Z3, Z3)
	g.VPMOVSDB(Z2, m(RDI, 0))
	g.VPMOVSDB(Z3, m(RDI, 16))
	g.ADDQ(U32(128), RSI)
	g.ADDQ(U8(32), RDI)
	g.ADDQ(U8(4), RDX)
	g.closeLoop(RCX, "qloop", "qdone")
}

// tileQ8x2VNNI is the q8 matrix-matrix kernel: tiles of four weight rows ×
// two tokens, over ng groups of 32 (ng even), for rows/4 consecutive tiles
// down the rows. Row r's quants are at wq[r·stride], its scales at
// ws[r·sstride]; token t's quants at xq[t·xstride], its scales at
// xs[t·xsstride]; the result for (r, t) goes to (add: is added to)
// y[t·ldy + r]. Each pair step loads four weight vectors and two activation
// vectors for eight VPDPBUSD; an int32 group sum is seeded with −128·Σx (so
// w XOR 0x80 can be the unsigned operand, as in the row kernels), converted
// and accumulated times d = ws·xs. acc[r][t] = Z(2r+t). The weights are
// prefetched p.pf bytes ahead.
//
// The combined scales d are made once per block of eight groups: each
// row's and token's eight scales are laid out as [s0 s2 s4 s6 s0 s2 s4 s6 |
// s1 s3 s5 s7 s1 s3 s5 s7] (one VPERMPS each) and multiplied, row by token,
// into Z16–Z23 (D(r, t) = Z(16+2r+t)); pair k of the block then takes
// [d_2k ×8 | d_2k+1 ×8] with the in-lane VPERMILPS $k·0x55. A VMULPS per
// (row, token, pair) would compete with the dot products and the FMAs for
// the multiply ports, which bound this kernel; the in-lane shuffle does
// not. The immediate fixes k, so a block's up to four pairs are unrolled.
//
// Every lane sees the same operations in the same order as in
// dotQ8RowsVNNI32 (exact int32 sums, d rounded once, one FMA per pair of
// groups, blocks of eight groups, the same final reduction), so each
// result equals the row kernel's for that row and token bit for bit: a
// batch of tokens through this kernel gives every token exactly what it
// would get alone (runtime's batched decode relies on it).
//
// Other registers: Z8–Z11 the rows' w XOR 0x80, Z12 a token's quants, Z13
// its seed, Z14 0x80 bytes, Z15 the int sum, Z24 the layout index, Z25
// zero, Z26 the pair's scale vector (at a block's start: token 1's
// scales), Z27–Z31 the rows' and token 0's scales at a block's start.
//
// Frame: 0(SP) groups left, 8(SP) the token scale stride in bytes, 16(SP)
// and 24(SP) the tile's first quant and scale rows, 32(SP) its y, 40(SP)
// tiles left, 48(SP) the prefetch distance.
func tileQ8x2VNNI(g *gen) {
	g.text("tileQ8x2VNNI", "func(p *q8TileArgs)", 56)
	f := func(name, part string) Mem { return g.field(RCX, name, part) }
	g.MOVQ(g.arg(0), RCX)
	g.MOVQ(f("wq", "base"), RAX)
	g.MOVQ(RAX, sp(16))
	g.MOVQ(f("ws", "base"), RAX)
	g.MOVQ(RAX, sp(24))
	g.MOVQ(f("y", "base"), RAX)
	g.MOVQ(RAX, sp(32))
	g.MOVQ(f("rows", ""), RAX)
	g.SHRQ(U8(2), RAX)
	g.JZ(LabelRef("tret"))
	g.MOVQ(RAX, sp(40))
	g.MOVQ(f("xstride", ""), R15)
	g.MOVQ(f("xsstride", ""), RAX)
	g.SHLQ(U8(2), RAX)
	g.MOVQ(RAX, sp(8))
	g.MOVQ(f("pf", ""), RAX)
	g.MOVQ(RAX, sp(48))
	c80(g, z)
	g.VPXORD(Z25, Z25, Z25)
	g.VMOVDQU32(g.layoutTable(), Z24)

	g.Label("trowblk")
	g.MOVQ(g.arg(0), RCX)
	g.MOVQ(sp(16), R8)
	g.MOVQ(f("stride", ""), RAX)
	g.rows4(R8, R9, R10, R11, RAX)
	g.MOVQ(sp(24), R12)
	g.MOVQ(f("sstride", ""), RAX)
	g.SHLQ(U8(1), RAX)
	g.rows4(R12, R13, RBX, RSI, RAX)
	g.MOVQ(f("xq", "base"), RDI)
	g.MOVQ(f("xs", "base"), RDX)
	g.MOVQ(f("ng", ""), RAX)
	g.MOVQ(RAX, sp(0))
	g.zeroZ(upto(8)...)
	g.TESTQ(RAX, RAX)
	g.JZ(LabelRef("tdone"))

	srows := []GPPhysical{R12, R13, RBX, RSI}
	rows := []GPPhysical{R8, R9, R10, R11}
	g.Label("tblock")
	// Up to eight groups: mask K1, CX = count.
	g.MOVQ(sp(0), RCX)
	g.CMPQ(RCX, U8(8))
	g.JLE(LabelRef("blkmask"))
	g.MOVQ(U32(8), RCX)
	g.Label("blkmask")
	g.lowMask(EAX, K1)
	// The block's scales, laid out (masked loads: nothing past the block
	// is read, the lanes of missing groups are zero), and their products.
	for i, r := range srows {
		g.VMOVDQU16_Z(m(r, 0), K1, x(27+i))
		g.VCVTPH2PS(x(27+i), y(27+i))
		g.VPERMPS(z(27+i), Z24, z(27+i))
	}
	g.MOVQ(sp(8), RAX)
	toks := []VecPhysical{Z31, Z26}
	g.VMOVUPS_Z(m(RDX, 0), K1, Y31)
	g.VMOVUPS_Z(mi(RDX, RAX, 1, 0), K1, Y26)
	for _, t := range toks {
		g.VPERMPS(t, Z24, t)
	}
	for r := range 4 {
		for t, tv := range toks {
			g.VMULPS(tv, z(27+r), z(16+2*r+t))
		}
	}
	g.MOVQ(RCX, R14)
	g.SHRQ(U8(1), R14)
	g.MOVQ(sp(48), RAX)

	for k := range 4 {
		// The rows pf bytes on, so that they are in cache when the
		// walk gets there.
		for _, r := range rows {
			g.PREFETCHT0(mi(r, RAX, 1, 0))
		}
		for i, r := range rows {
			g.VPXORD(m(r, 0), Z14, z(8+i))
		}
		for t, xaddr := range []Mem{m(RDI, 0), mi(RDI, R15, 1, 0)} {
			g.VMOVDQU64(xaddr, Z12)
			g.VPXORD(Z13, Z13, Z13)
			g.VPDPBUSD(Z12, Z14, Z13)
			g.VPSUBD(Z13, Z25, Z13)
			for r := range rows {
				g.VMOVDQA32(Z13, Z15)
				g.VPDPBUSD(Z12, z(8+r), Z15)
				g.VCVTDQ2PS(Z15, Z15)
				g.VPERMILPS(U8(0x55*k), z(16+2*r+t), Z26)
				g.VFMADD231PS(Z26, Z15, z(2*r+t))
			}
		}
		for _, r := range append(rows, RDI) {
			g.ADDQ(U8(64), r)
		}
		if k < 3 {
			g.DECQ(R14)
			g.JZ(LabelRef("tnext"))
		}
	}

	g.Label("tnext")
	g.SUBQ(RCX, sp(0))
	g.SHLQ(U8(1), RCX)
	for _, r := range srows {
		g.ADDQ(RCX, r)
	}
	g.SHLQ(U8(1), RCX)
	g.ADDQ(RCX, RDX)
	g.CMPQ(sp(0), U8(0))
	g.JNE(LabelRef("tblock"))

	g.Label("tdone")
	// The row kernel adds its (here empty) odd-group accumulator before
	// folding; adding zero too keeps the sign of a zero sum the same.
	for i := range 8 {
		g.VADDPS(Z25, z(i), z(i))
	}
	g.foldZ(8, 8)
	g.MOVQ(g.arg(0), RCX)
	g.storeTile(2, 2, sp(32), f("ldy", ""), f("add", ""))
	// Next four rows.
	g.MOVQ(sp(32), RAX)
	g.ADDQ(U8(16), RAX)
	g.MOVQ(RAX, sp(32))
	g.MOVQ(f("stride", ""), RAX)
	g.SHLQ(U8(2), RAX)
	g.ADDQ(RAX, sp(16))
	g.MOVQ(f("sstride", ""), RAX)
	g.SHLQ(U8(3), RAX)
	g.ADDQ(RAX, sp(24))
	g.closeLoop(sp(40), "trowblk", "tret")
}

// layoutTable is tileQ8x2VNNI's VPERMPS index: a block's eight scales
// s0…s7 to [s0 s2 s4 s6 s0 s2 s4 s6 | s1 s3 s5 s7 s1 s3 s5 s7].
func (g *gen) layoutTable() Mem {
	m := g.StaticGlobal("q8ScaleLayout")
	g.DataAttributes(attr.RODATA | attr.NOPTR)
	for _, i := range []uint32{0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 1, 3, 5, 7} {
		g.AppendDatum(U32(i))
	}
	return m
}
