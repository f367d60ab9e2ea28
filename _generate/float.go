package main

import (
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// floatEnc is one float weight encoding: how a vector of its weights
// becomes float32 lanes. f32 is loaded as is; f16 is widened exactly by
// F16C's VCVTPH2PS; bf16 is zero-extended to 32 bits and shifted left by 16
// (a bf16 is the top half of a float32), so activations stay float32 and
// each product is exact before accumulation.
type floatEnc struct {
	name  string // F32, F16, BF16
	size  uint8  // bytes per weight
	wtype string // Go element type of the weights
	// widen loads (or converts) weights from src, memory or a register of
	// half dst's width, into float32 lanes of dst (before the bf16 shift).
	widen func(g *gen, src Op, dst VecPhysical)
	shift bool // bf16: shift each widened lane left by 16
}

var floatEncs = []floatEnc{
	{"F32", 4, "float32", func(g *gen, src Op, dst VecPhysical) { g.VMOVUPS(src, dst) }, false},
	{"F16", 2, "uint16", func(g *gen, src Op, dst VecPhysical) { g.VCVTPH2PS(src, dst) }, false},
	{"BF16", 2, "uint16", func(g *gen, src Op, dst VecPhysical) { g.VPMOVZXWD(src, dst) }, true},
}

// fix applies the encoding's post-widening step to each register.
func (e floatEnc) fix(g *gen, regs ...VecPhysical) {
	if !e.shift {
		return
	}
	for _, r := range regs {
		g.VPSLLD(U8(16), r, r)
	}
}

// scaleShift is log2(size): the shift from an element count to bytes.
func (e floatEnc) scaleShift() uint8 {
	if e.size == 4 {
		return 2
	}
	return 1
}

func emitFloatKernels(g *gen) {
	for _, e := range floatEncs {
		dotFloat(g, e)
	}
	for _, e := range floatEncs {
		rowsFloat(g, e)
	}
}

// dotFloat is one row times x, len a multiple of 8: four accumulators over
// 32-element steps, then 8-element steps.
func dotFloat(g *gen, e floatEnc) {
	sig := "func(w []" + e.wtype + ", x []float32) float32"
	if e.name == "F32" {
		sig = "func(a, b []float32) float32"
	}
	g.text("dot"+e.name+"AVX2", sig, 0)
	g.MOVQ(g.base(0), RSI)
	g.MOVQ(g.length(0), RCX)
	g.MOVQ(g.base(1), RDI)
	g.startLoop(4, 32)
	for i := range 4 {
		e.widen(g, mi(RSI, RAX, e.size, i*8*int(e.size)), y(4+i))
	}
	e.fix(g, Y4, Y5, Y6, Y7)
	for i := range 4 {
		g.VFMADD231PS(mi(RDI, RAX, 4, i*32), y(4+i), y(i))
	}
	g.loopTail(32)
	e.widen(g, mi(RSI, RAX, e.size, 0), Y4)
	e.fix(g, Y4)
	g.VFMADD231PS(mi(RDI, RAX, 4, 0), Y4, Y0)
	g.ADDQ(U8(8), RAX)
	g.JMP(LabelRef("tail"))

	g.Label("reduce")
	g.VADDPS(Y1, Y0, Y0)
	g.VADDPS(Y3, Y2, Y2)
	g.VADDPS(Y2, Y0, Y0)
	g.hsumY(0, 1)
	g.VZEROUPPER()
	g.MOVSS(X0, g.at(g.ReturnIndex(0)))
	g.RET()
}

// rowsFloat computes len(y)/4 blocks of four rows, stride elements apart,
// in one call (decode streams a whole row range; one call per four rows cost
// about an eighth of the streaming rate). Two accumulators per row (Y0..Y3
// for the first eight elements of each 16-element step, Y4..Y7 for the
// second) keep the four FMA chains per half independent.
//
// Frame: 0(SP) = the next y, 8(SP) = 4-row blocks left; R8..R11 = the
// block's rows, R12 = the row stride in bytes, R13 = four strides, R14, R15,
// BX, SI = prefetch pointers into the next block 512 bytes ahead.
func rowsFloat(g *gen, e floatEnc) {
	g.text("dot"+e.name+"RowsAVX2", "func(y []float32, w []"+e.wtype+", stride int, x []float32, add int)", 16)
	g.MOVQ(g.length(0), RAX)
	g.SHRQ(U8(2), RAX)
	g.JZ(LabelRef("ret"))
	g.MOVQ(RAX, sp(8))
	g.MOVQ(g.base(0), RAX)
	g.MOVQ(RAX, sp(0))
	g.MOVQ(g.base(1), R8)
	g.MOVQ(g.arg(2), R12)
	g.SHLQ(U8(e.scaleShift()), R12)
	g.leaIndex(R12, 4, R13)

	g.Label("rowblk")
	g.rows4(R8, R9, R10, R11, R12)
	for i, r := range []GPPhysical{R14, R15, RBX, RSI} {
		g.LEAQ(mi([]GPPhysical{R8, R9, R10, R11}[i], R13, 1, 512), r)
	}
	g.MOVQ(g.base(3), RDI)
	g.MOVQ(g.length(3), RCX)
	g.startLoop(8, 16)
	// Prefetching the next block's rows 512 bytes ahead of these columns
	// lets one thread keep enough reads in flight to stream.
	for _, r := range []GPPhysical{R14, R15, RBX, RSI} {
		g.PREFETCHT0(mi(r, RAX, e.size, 0))
	}
	g.VMOVUPS(mi(RDI, RAX, 4, 0), Y8)
	g.VMOVUPS(mi(RDI, RAX, 4, 32), Y9)
	for i, row := range []GPPhysical{R8, R9, R10, R11} {
		a, b := y(10+2*(i%2)), y(11+2*(i%2))
		e.widen(g, mi(row, RAX, e.size, 0), a)
		e.widen(g, mi(row, RAX, e.size, 8*int(e.size)), b)
		e.fix(g, a, b)
		g.VFMADD231PS(Y8, a, y(i))
		g.VFMADD231PS(Y9, b, y(4+i))
	}
	g.loopTail(16)
	g.VMOVUPS(mi(RDI, RAX, 4, 0), Y8)
	rows := []GPPhysical{R8, R9, R10, R11}
	if e.size == 4 {
		for i, row := range rows {
			g.VFMADD231PS(mi(row, RAX, 4, 0), Y8, y(i))
		}
	} else {
		for i, row := range rows {
			e.widen(g, mi(row, RAX, e.size, 0), y(10+i))
		}
		e.fix(g, Y10, Y11, Y12, Y13)
		for i := range rows {
			g.VFMADD231PS(Y8, y(10+i), y(i))
		}
	}

	g.Label("reduce")
	for i := range 4 {
		g.VADDPS(y(4+i), y(i), y(i))
	}
	g.hsum4(0, 1, 2, 3)
	g.storeSums4(RDX, sp(0), func() { g.MOVQ(g.arg(4), RCX) })
	g.ADDQ(R13, R8)
	g.closeLoop(sp(8), "rowblk", "ret")
}

func emitFloatTiles(g *gen) {
	for _, e := range floatEncs {
		tileFloat(g, e)
	}
}

// tileFloat is the register-tiled matrix-matrix kernel for prefill: four
// weight rows × four tokens per call, accumulated over n elements in sixteen
// 512-bit registers, acc[r][t] = Z(4r+t). Each step loads four weight
// vectors and four activation vectors for sixteen FMAs, where the row
// kernels load one weight vector per FMA, so the products are FMA-bound
// instead of load-bound. The last n mod 16 elements go through one masked
// step (masked loads read nothing past the mask), so any n works. Weight
// row r is at w + r·wstride elements, token t's activations at
// x + t·xstride, and the result for (r, t) is written to (or, with add,
// added to) y[t·ldy + r].
//
// Registers: rows R8..R11, tokens R12..R15, weights Z16..Z19, activations
// Z20..Z23, CX = n, DX = n rounded down to 16, AX = the element index.
func tileFloat(g *gen, e floatEnc) {
	g.text("tile"+e.name+"AVX512", "func(y []float32, ldy int, w []"+e.wtype+", wstride int, x []float32, xstride int, n int, add int)", 0)
	g.MOVQ(g.arg(3), RBX)
	g.SHLQ(U8(e.scaleShift()), RBX)
	g.MOVQ(g.base(2), R8)
	g.rows4(R8, R9, R10, R11, RBX)
	g.MOVQ(g.arg(5), RBX)
	g.SHLQ(U8(2), RBX)
	g.MOVQ(g.base(4), R12)
	g.rows4(R12, R13, R14, R15, RBX)
	g.MOVQ(g.arg(6), RCX)
	g.MOVQ(RCX, RDX)
	g.ANDQ(I8(-16), RDX)
	g.XORQ(RAX, RAX)
	g.zeroZ(upto(16)...)
	g.TESTQ(RDX, RDX)
	g.JZ(LabelRef("tail"))

	rows := []GPPhysical{R8, R9, R10, R11}
	toks := []GPPhysical{R12, R13, R14, R15}
	fma := func() {
		for r := range 4 {
			for t := range 4 {
				g.VFMADD231PS(z(20+t), z(16+r), z(4*r+t))
			}
		}
	}

	g.Label("loop")
	for r, row := range rows {
		e.widen(g, mi(row, RAX, e.size, 0), z(16+r))
	}
	e.fix(g, Z16, Z17, Z18, Z19)
	for t, tok := range toks {
		g.VMOVUPS(mi(tok, RAX, 4, 0), z(20+t))
	}
	fma()
	g.ADDQ(U8(16), RAX)
	g.CMPQ(RAX, RDX)
	g.JLT(LabelRef("loop"))

	g.Label("tail")
	g.ANDQ(U8(15), RCX)
	g.JZ(LabelRef("reduce"))
	g.lowMask(EDX, K1)
	if e.size == 4 {
		for r, row := range rows {
			g.VMOVUPS_Z(mi(row, RAX, 4, 0), K1, z(16+r))
		}
	} else {
		// 16-bit weights: a masked load of the halves, then the widening.
		for r, row := range rows {
			g.VMOVDQU16_Z(mi(row, RAX, 2, 0), K1, y(16+r))
		}
		for r := range rows {
			e.widen(g, y(16+r), z(16+r))
		}
		e.fix(g, Z16, Z17, Z18, Z19)
	}
	for t, tok := range toks {
		g.VMOVUPS_Z(mi(tok, RAX, 4, 0), K1, z(20+t))
	}
	fma()

	g.Label("reduce")
	g.foldZ(16, 16)
	g.storeTile(4, 4, g.base(0), g.arg(1), g.arg(7))
	g.VZEROUPPER()
	g.RET()
}
