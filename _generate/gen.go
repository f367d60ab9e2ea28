package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/gotypes"
	"github.com/mmcloughlin/avo/ir"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// gen is one output file's avo context with the helpers the kernels share.
type gen struct {
	*build.Context
}

// text starts a NOSPLIT function with the given Go signature, doc lines
// and a local frame of frame bytes (0: frameless).
func (g *gen) text(name, signature string, frame int, doc ...string) {
	g.Function(name)
	g.Attributes(attr.NOSPLIT)
	g.SignatureExpr(signature)
	if len(doc) > 0 {
		g.Doc(doc...)
	}
	if frame > 0 {
		g.AllocLocal(frame)
	}
}

// at is the frame address of an argument component.
func (g *gen) at(c gotypes.Component) Mem {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// arg is the frame address of argument i (a scalar or pointer).
func (g *gen) arg(i int) Mem { return g.at(g.ParamIndex(i)) }

// base and length are the frame addresses of slice argument i's pointer and
// length.
func (g *gen) base(i int) Mem   { return g.at(g.ParamIndex(i).Base()) }
func (g *gen) length(i int) Mem { return g.at(g.ParamIndex(i).Len()) }

// field is the address of field name of the struct p points to, p held in
// ptr; part selects a slice's "base" or "len" ("" for the whole field).
func (g *gen) field(ptr Register, name, part string) Mem {
	c := g.Param("p").Dereference(ptr).Field(name)
	switch part {
	case "base":
		c = c.Base()
	case "len":
		c = c.Len()
	}
	return g.at(c)
}

// m is disp(base); mi is disp(base)(index*scale); sp is disp(SP).
func m(base Register, disp int) Mem { return Mem{Base: base, Disp: disp} }
func mi(base, index Register, scale uint8, disp int) Mem {
	return Mem{Base: base, Index: index, Scale: scale, Disp: disp}
}
func sp(disp int) Mem { return Mem{Base: SP, Disp: disp} }

// tokenAt is token t's address (t < 4) from base: base, +stride, +2·stride,
// +three (= 3·stride), plus disp; the multi-token kernels keep a stride and
// its triple in registers for this.
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

// Register numbering: x(n), y(n), z(n) are vector register n at 128, 256
// and 512 bits.
var (
	xs = []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15, X16, X17, X18, X19, X20, X21, X22, X23, X24, X25, X26, X27, X28, X29, X30, X31}
	ys = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15, Y16, Y17, Y18, Y19, Y20, Y21, Y22, Y23, Y24, Y25, Y26, Y27, Y28, Y29, Y30, Y31}
	zs = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15, Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}
)

func x(n int) VecPhysical { return xs[n] }
func y(n int) VecPhysical { return ys[n] }
func z(n int) VecPhysical { return zs[n] }

// rows4 sets r1..r3 to r0 plus one, two and three times step: the starts of
// four rows (or four scale rows) step bytes apart.
func (g *gen) rows4(r0, r1, r2, r3, step Register) {
	g.LEAQ(mi(r0, step, 1, 0), r1)
	g.LEAQ(mi(r1, step, 1, 0), r2)
	g.LEAQ(mi(r2, step, 1, 0), r3)
}

// hsum reduces the eight lanes of y(a) into the low lane of x(a), using
// x(b) as scratch.
func (g *gen) hsumY(a, b int) {
	g.VEXTRACTF128(U8(1), y(a), x(b))
	g.VADDPS(x(b), x(a), x(a))
	g.hsumX(a, b)
}

// hsumX reduces the four lanes of x(a) into its low lane (x(b) scratch).
func (g *gen) hsumX(a, b int) {
	g.VMOVHLPS(x(a), x(a), x(b))
	g.VADDPS(x(b), x(a), x(a))
	g.VMOVSHDUP(x(a), x(b))
	g.VADDSS(x(b), x(a), x(a))
}

// hsum4 reduces y(a), y(b), y(c), y(d) into x(a) = [Σ y(a), Σ y(b), Σ y(c),
// Σ y(d)], with x(b) as scratch for the last step.
func (g *gen) hsum4(a, b, c, d int) { g.hsum4Of(false, a, b, c, d) }

// hsum4Of is hsum4 for float32 lanes, or (ints) for int32 lanes.
func (g *gen) hsum4Of(ints bool, a, b, c, d int) {
	hadd, extract, add := g.VHADDPS, g.VEXTRACTF128, g.VADDPS
	if ints {
		hadd, extract = g.VPHADDD, g.VEXTRACTI128
		add = func(ops ...Op) { g.VPADDD(ops...) }
	}
	hadd(y(b), y(a), y(a))
	hadd(y(d), y(c), y(c))
	hadd(y(c), y(a), y(a))
	extract(U8(1), y(a), x(b))
	add(x(b), x(a), x(a))
}

// broadcast32 sets v to the 32-bit constant c in every lane, through AX.
func (g *gen) broadcast32(c uint32, v VecPhysical) {
	g.MOVL(U32(c), EAX)
	g.VPBROADCASTD(EAX, v)
}

// broadcastVia128 sets v to c in every lane through x(n) (VEX forms).
func (g *gen) broadcastVia128(c uint32, n int, v VecPhysical) {
	g.MOVL(U32(c), EAX)
	g.VMOVD(EAX, x(n))
	g.VPBROADCASTD(x(n), v)
}

// lowMask sets k to the low count lanes (count in CX, 1..16), through tmp.
func (g *gen) lowMask(tmp GPPhysical, k Register) {
	g.MOVL(U32(1), tmp)
	g.SHLL(CL, tmp)
	g.DECL(tmp)
	g.KMOVW(tmp, k)
}

// zeroZ clears z(i) for each i.
func (g *gen) zeroZ(regs ...int) {
	for _, i := range regs {
		g.VPXORD(z(i), z(i), z(i))
	}
}

// upto is 0, 1, …, n−1.
func upto(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}

// foldZ adds the high half of z(i) into y(i) for i < n, through y(tmp), so
// that the VEX-only horizontal adds can finish in the low halves.
func (g *gen) foldZ(n, tmp int) {
	for i := range n {
		g.VEXTRACTF64X4(U8(1), z(i), y(tmp))
		g.VADDPS(y(tmp), y(i), y(i))
	}
}

// reduce4Z reduces the 512-bit row sums z(4)..z(7) into x(0) = their four
// totals.
func (g *gen) reduce4Z() {
	for i := range 4 {
		g.VEXTRACTF64X4(U8(1), z(4+i), y(i))
	}
	for i := range 4 {
		g.VADDPS(y(4+i), y(i), y(i))
	}
	g.hsum4(0, 1, 2, 3)
}

// storeTile reduces a tile's accumulators (already folded to 256 bits) and
// writes (or, with add, adds) four row results per token to y: token t's
// rows are y(t), y(t+s), y(t+2s), y(t+3s), its results go to yAddr + t·ldy
// float32s.
func (g *gen) storeTile(tokens, s int, yAddr, ldy, add Mem) {
	g.MOVQ(yAddr, RDI)
	g.MOVQ(ldy, RBX)
	g.SHLQ(U8(2), RBX)
	g.MOVQ(add, RDX)
	for t := range tokens {
		g.VHADDPS(y(t+s), y(t), y(t))
		g.VHADDPS(y(t+3*s), y(t+2*s), y(t+2*s))
		g.VHADDPS(y(t+2*s), y(t), y(t))
		g.VEXTRACTF128(U8(1), y(t), x(t+s))
		g.VADDPS(x(t+s), x(t), x(t))
		store := fmt.Sprintf("store%d", t)
		g.TESTQ(RDX, RDX)
		g.JZ(LabelRef(store))
		g.VADDPS(m(RDI, 0), x(t), x(t))
		g.Label(store)
		g.VMOVUPS(x(t), m(RDI, 0))
		if t < tokens-1 {
			g.ADDQ(RBX, RDI)
		}
	}
}

// leaIndex emits LEAQ (index*scale), dst: avo's LEAQ wants a base register,
// which this form (a multiple of a stride) does not have.
func (g *gen) leaIndex(index GPPhysical, scale uint8, dst GPPhysical) {
	g.Instruction(&ir.Instruction{
		Opcode:   "LEAQ",
		Operands: []Op{Mem{Index: index, Scale: scale}, dst},
		Inputs:   []Op{index},
		Outputs:  []Op{dst},
	})
}

// storeSums4 writes (with add, adds) the four row sums in X0 to y at the
// pointer kept in slot, through ptr, and moves the pointer on; loadAdd sets
// CX to the add argument.
func (g *gen) storeSums4(ptr GPPhysical, slot Mem, loadAdd func()) {
	g.MOVQ(slot, ptr)
	loadAdd()
	g.TESTQ(RCX, RCX)
	g.JZ(LabelRef("store"))
	g.VADDPS(m(ptr, 0), X0, X0)
	g.Label("store")
	g.VMOVUPS(X0, m(ptr, 0))
	g.ADDQ(U8(16), ptr)
	g.MOVQ(ptr, slot)
}

// closeLoop ends a kernel's outer loop and the kernel: DECQ counter, back
// to loop while it is non-zero, then VZEROUPPER and RET at exit (where the
// kernel jumps when it has nothing to do).
func (g *gen) closeLoop(counter Op, loop, exit string) {
	g.DECQ(counter)
	g.JNZ(LabelRef(loop))
	g.VZEROUPPER()
	g.Label(exit)
	g.RET()
}

// loopTail closes startLoop's loop (AX += step while AX < DX) and opens
// tail, which goes to reduce once AX reaches CX.
func (g *gen) loopTail(step int) {
	g.ADDQ(U8(step), RAX)
	g.CMPQ(RAX, RDX)
	g.JLT(LabelRef("loop"))
	g.Label("tail")
	g.CMPQ(RAX, RCX)
	g.JGE(LabelRef("reduce"))
}

// startLoop clears the accumulators y(0)..y(accs-1), sets AX = 0 and DX =
// CX rounded down to a multiple of step, and opens the label loop (to tail
// when DX is 0).
func (g *gen) startLoop(accs, step int) {
	g.XORQ(RAX, RAX)
	for i := range accs {
		g.VXORPS(y(i), y(i), y(i))
	}
	g.MOVQ(RCX, RDX)
	g.ANDQ(I8(-step), RDX)
	g.JZ(LabelRef("tail"))
	g.Label("loop")
}
