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
// Register plan for T tokens (1..8): Z0..Z3 the float sums of tokens 0..3,
// Z19..Z22 those of tokens 4..7 (ilSum);
// Z4..Z11 the int32 sums, ilChains per token (the integer sums are exact,
// so splitting a token's chain of VPDPBUSD across several accumulators
// changes nothing but latency); Z31 the nibble mask (q4s); Z13, Z14 unpacked
// nibbles (q4s); Z12 the weight chunk; Z16 the block's group scales
// (float32), Z15 eight times them (q4s); Z17, Z18 scratch.
// R8 weights, R9 scales (both run straight through the blocks); DI, DX, SI
// token 0's quants, scales and integer terms (q8: the excess −128·Σx per
// group; q4s: Σx per 32-block), R15/R14 one and three quant strides,
// R13/R12 one and three scale strides (bytes); CX groups left, AX 32-weight
// sub-blocks left in the group, BX blocks left; R10 the block's output, R11
// ldy bytes (kernels of more than four tokens use R11, BX and CX for tokens
// 4..7 instead; see ilX).
//
// The two-stream kernels (one token, "x2") read a second run of blocks
// beside the first: R11, R12, R13 its weights, scales and output (no
// strides are needed for one token), Z1 its float sums, Z20..Z23 its int32
// chains, Z24..Z30 its scratch (ilStreams).
//
// The two-level kernels (q4kiVNNI, q6kiVNNI) also hold each group's
// scales and offsets, widened to float32: Z23, Z24 in one stream, Z8, Z9
// and Z10, Z11 in two; the super-block's d and dmin take the places of
// q4s's d and 8d. q6's high bits take Z25 (the vector), Z26 (the second
// merge) and Z30 (their mask) in one stream; in two, each run's chains
// shrink to two (Z4, Z5 and Z20, Z21) to free Z6, Z7 and Z22, Z23, with
// the mask in Z3.

// ilMaxTokens is the most tokens one kernel takes. Up to eight tokens are
// one pass over the weights: with two passes of four (each row block read
// twice, the second time from L1) the core stops reading memory during the
// second and the passes' arithmetic and memory time add up instead of
// overlapping. A batch of eight decoding streams is the case that matters.
const ilMaxTokens = 8

// ilPrefetch is how far ahead (bytes) the one-stream kernels prefetch the
// weights, which they read as one sequential stream. 8 KiB rather than
// 4 KiB made the four- and eight-token kernels 10–15 % faster on a matrix
// streamed from memory (BenchmarkMatQ8I; BENCHMARKS.md §8).
const ilPrefetch = 8192

// ilPrefetch2 is how far ahead the two-stream (one-token) kernels
// prefetch each of their runs, with PREFETCHNTA: 2 KiB rather than 8 KiB
// took one-token decode on the 1.1B shape from 70–72 % to 78–80 % of the
// bandwidth roofline (q4s; q8 74–76 % to 80 %), and PREFETCHT0 at 2 KiB
// measured within noise of it; the weights are read once per token, and
// the non-temporal hint keeps them from displacing the KV cache and
// activations (BENCHMARKS.md §7).
const ilPrefetch2 = 2048

// ilPrefetchAt prefetches the line disp bytes into w's run for a kernel
// reading streams runs.
func (g *gen) ilPrefetchAt(w GPPhysical, disp, streams int) {
	if streams == 1 {
		g.PREFETCHT0(m(w, disp+ilPrefetch))
		return
	}
	g.PREFETCHNTA(m(w, disp+ilPrefetch2))
}

func emitInterleaved(g *gen) {
	for t := 1; t <= ilMaxTokens; t++ {
		q8iVNNI(g, t, 1)
	}
	for t := 1; t <= ilMaxTokens; t++ {
		q4siVNNI(g, t, 1)
	}
	for t := 1; t <= ilMaxTokens; t++ {
		qkiVNNI(g, t, 1, 0)
	}
	for t := 1; t <= ilMaxTokens; t++ {
		qkiVNNI(g, t, 1, 2)
	}
	// One token over two runs of blocks at once: one core reads two
	// sequential streams faster than one (BENCHMARKS.md §7), and one-token
	// decode is bound by that read. Each stream's arithmetic is the
	// one-stream kernel's, in the same order, so the results are the same
	// bit for bit.
	q8iVNNI(g, 1, 2)
	q4siVNNI(g, 1, 2)
	qkiVNNI(g, 1, 2, 0)
	qkiVNNI(g, 1, 2, 2)
}

// ilStream is one run of blocks a kernel reads: its weights', scales' and
// output's pointers and its vector registers: the int32 chain c of token t,
// the float sums of token t, and scratch (a weight chunk, its low and high
// nibbles, the group scales, eight times them, and two temporaries).
type ilStream struct {
	w, s, y                      GPPhysical
	acc                          func(t, c int) VecPhysical
	sum                          func(t int) VecPhysical
	ld, lo, hi, d, d8, prod, sub VecPhysical
	// a, mm: the two-level kernels' group scale and offset per row; hv, e2
	// the high-bit vector and the second merge of q6, m2 the mask of the
	// high bits at bit 4 (see ilNibbles).
	a, mm, hv, e2, m2 VecPhysical
}

// ilStreams is the register plan for T tokens over n runs of blocks (n = 2
// only for one token) of quants with p high bits.
func ilStreams(T, n, p int) []ilStream {
	chains := ilChains(T, n, p)
	ss := []ilStream{{R8, R9, R10, func(t, c int) VecPhysical { return z(4 + t*chains + c) }, ilSum,
		Z12, Z13, Z14, Z16, Z15, Z17, Z18, Z23, Z24, Z25, Z26, Z30}}
	if n == 2 {
		// Two chains per run with high bits (Z4, Z5 and Z20, Z21) leave
		// Z6, Z7, Z22, Z23 for the high bits, Z3 for their mask.
		ss[0].a, ss[0].mm, ss[0].hv, ss[0].e2, ss[0].m2 = Z8, Z9, Z6, Z7, Z3
		ss = append(ss, ilStream{R11, R12, R13, func(_, c int) VecPhysical { return z(20 + c) }, func(int) VecPhysical { return Z1 },
			Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z10, Z11, Z22, Z23, Z3})
	}
	return ss
}

// ilChains is how many int32 accumulators each token's VPDPBUSD chain is
// split over: eight in all for one run of blocks (one per token from five
// tokens, where the eight-token kernel needs every one of Z4..Z11 anyway),
// four per run for two. A VPDPBUSD waits about four cycles for its
// accumulator while a core issues up to two per cycle: a loop of nothing
// but VPDPBUSDs ran about a third slower on four accumulators than on
// eight. In these kernels, whose loads and float steps share the cycles,
// eight measured the same as four, within noise, for one to four tokens
// (BENCHMARKS.md §8).
func ilChains(T, streams, p int) int {
	switch {
	case streams == 2 && p > 0:
		return 2
	case streams == 2:
		return 4
	}
	return 8 / T
}

// ilSum is token t's float sums in the one-stream kernels: Z0..Z3, then
// Z19..Z22 for tokens four to seven.
func ilSum(t int) VecPhysical {
	if t < 4 {
		return z(t)
	}
	return z(15 + t)
}

// Tokens 4..7 (kernels of more than four tokens) are addressed from a
// second set of bases, token 4's quants, scales and integer terms, in R11,
// BX and CX; those kernels keep their block and group counters in the
// frame instead, and set R11 to the output stride only for the stores.

// ilX, ilXS and ilXI are token t's activation quants (disp bytes into the
// sub-block), scale and integer term of the current group.
func ilX(t, disp int) Mem { return ilTokenAt(RDI, R11, R15, R14, t, disp) }
func ilXS(t int) Mem      { return ilTokenAt(RDX, RBX, R13, R12, t, 0) }
func ilXI(t int) Mem      { return ilTokenAt(RSI, RCX, R13, R12, t, 0) }

func ilTokenAt(base, base4, stride, three GPPhysical, t, disp int) Mem {
	if t >= 4 {
		return tokenAt(base4, stride, three, t-4, disp)
	}
	return tokenAt(base, stride, three, t, disp)
}

// ilNextSub and ilNextGroup advance the token pointers past a 32-weight
// sub-block's quants and past a group's scale and integer term.
func (g *gen) ilNextSub(T int) {
	g.ADDQ(U8(32), RDI)
	if T > 4 {
		g.ADDQ(U8(32), R11)
	}
}

func (g *gen) ilNextGroup(T int) {
	g.ADDQ(U8(4), RDX)
	g.ADDQ(U8(4), RSI)
	if T > 4 {
		g.ADDQ(U8(4), RBX)
		g.ADDQ(U8(4), RCX)
	}
}

// ilName is the kernel's Go name: enc, the token count, "x2" for two runs.
func ilName(enc string, T, streams int) string {
	if streams == 2 {
		return fmt.Sprintf("%s%dx2", enc, T)
	}
	return fmt.Sprintf("%s%d", enc, T)
}

// ilEnc is what an encoding adds to ilKernel: group emits one group's work
// given the streams' registers; start (optional) runs once after the
// argument loads and block (optional) at the start of every block.
type ilEnc struct {
	group        func(ss []ilStream, chains int)
	start, block func(ss []ilStream)
	// hi is the quants' high bits (q6: 2), for the register plan.
	hi int
}

// ilKernel is one interleaved kernel for T tokens over streams runs of
// blocks: the argument loads, the loop over blocks (each: the float sums
// cleared, the token pointers reset, e.group run over every group) and the
// stores.
func (g *gen) ilKernel(name string, T, streams int, e ilEnc) {
	g.text(name, "func(p *ilArgs)", 0)
	chains := ilChains(T, streams, e.hi)
	ss := ilStreams(T, streams, e.hi)
	f := func(name string) Mem { return g.field(RAX, name, "") }
	wide := T > 4
	var blocks, groups Op = RBX, RCX
	if wide {
		blocks, groups = g.AllocLocal(8), g.AllocLocal(8)
	}

	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(f("blocks"), RBX)
	g.TESTQ(RBX, RBX)
	g.JZ(LabelRef("ret"))
	if wide {
		g.MOVQ(RBX, blocks)
	}
	g.MOVQ(f("w"), R8)
	g.MOVQ(f("s"), R9)
	g.MOVQ(f("y"), R10)
	if streams == 1 {
		g.MOVQ(f("ldy"), R11)
		g.SHLQ(U8(2), R11)
		g.MOVQ(f("xstride"), R15)
		g.LEAQ(mi(R15, R15, 2, 0), R14)
		g.MOVQ(f("xsstride"), R13)
		g.SHLQ(U8(2), R13)
		g.LEAQ(mi(R13, R13, 2, 0), R12)
	} else {
		g.MOVQ(f("w2"), R11)
		g.MOVQ(f("s2"), R12)
		g.MOVQ(f("y2"), R13)
	}
	if e.start != nil {
		e.start(ss)
	}

	g.Label("block")
	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(f("x"), RDI)
	g.MOVQ(f("xs"), RDX)
	g.MOVQ(f("xi"), RSI)
	if wide {
		g.MOVQ(f("x2"), R11)
		g.MOVQ(f("xs2"), RBX)
		g.MOVQ(f("xi2"), RCX)
		g.MOVQ(f("ng"), RAX)
		g.MOVQ(RAX, groups)
	} else {
		g.MOVQ(f("ng"), RCX)
	}
	for _, st := range ss {
		for t := range T {
			g.VPXORD(st.sum(t), st.sum(t), st.sum(t))
		}
	}
	if e.block != nil {
		e.block(ss)
	}

	g.Label("group")
	e.group(ss, chains)
	g.DECQ(groups)
	g.JNZ(LabelRef("group"))

	// Store (with add: add) the block's sixteen results per token and run.
	g.MOVQ(g.arg(0), RAX)
	if wide {
		g.MOVQ(f("ldy"), R11)
		g.SHLQ(U8(2), R11)
		g.LEAQ(mi(R10, R11, 4, 0), RDX) // token 4's outputs
	}
	g.MOVQ(f("add"), RCX)
	if streams == 1 {
		g.LEAQ(mi(R11, R11, 2, 0), RAX)
	}
	n := 0
	for _, st := range ss {
		for t := range T {
			dst := ilTokenAt(st.y, RDX, R11, RAX, t, 0)
			lbl := fmt.Sprintf("store%d", n)
			n++
			g.TESTQ(RCX, RCX)
			g.JZ(LabelRef(lbl))
			g.VADDPS(dst, st.sum(t), st.sum(t))
			g.Label(lbl)
			g.VMOVUPS(st.sum(t), dst)
		}
	}
	for _, st := range ss {
		g.ADDQ(U8(64), st.y)
	}
	g.closeLoop(blocks, "block", "ret")
}

// ilSubCount sets AX to the group's count of 32-weight sub-blocks.
func (g *gen) ilSubCount() {
	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(g.field(RAX, "sub", ""), RAX)
}

// ilChainsToFloat adds token t's chains into its first and converts that
// to float32 (exact: the sums stay below 2^24).
func (g *gen) ilChainsToFloat(st ilStream, chains, t int) {
	for c := 1; c < chains; c++ {
		g.VPADDD(st.acc(t, c), st.acc(t, 0), st.acc(t, 0))
	}
	g.VCVTDQ2PS(st.acc(t, 0), st.acc(t, 0))
}

// q8iVNNI: q8, one scale per group; a group's sums start at the excess
// (xi) and run over its sub-blocks, eight 64-byte chunks (four quants of
// sixteen rows) each; then per token s += (scale·xs)·sum.
func q8iVNNI(g *gen, T, streams int) {
	g.ilKernel(ilName("q8iVNNI", T, streams), T, streams, ilEnc{group: func(ss []ilStream, chains int) {
		for _, st := range ss {
			for t := range T {
				g.VPBROADCASTD(ilXI(t), st.acc(t, 0))
				for c := 1; c < chains; c++ {
					g.VPXORD(st.acc(t, c), st.acc(t, c), st.acc(t, c))
				}
			}
		}
		g.ilSubCount()
		g.Label("sub")
		for k := range 8 {
			for _, st := range ss {
				g.ilPrefetchAt(st.w, 64*k, len(ss))
				g.VMOVDQU64(m(st.w, 64*k), st.ld)
				for t := range T {
					g.VPDPBUSD_BCST(ilX(t, 4*k), st.ld, st.acc(t, k%chains))
				}
			}
		}
		for _, st := range ss {
			g.ADDQ(U32(512), st.w)
		}
		g.ilNextSub(T)
		g.DECQ(RAX)
		g.JNZ(LabelRef("sub"))

		for _, st := range ss {
			g.VCVTPH2PS(m(st.s, 0), st.d)
			g.ADDQ(U8(32), st.s)
		}
		for _, st := range ss {
			for t := range T {
				g.ilChainsToFloat(st, chains, t)
				g.VMULPS_BCST(ilXS(t), st.d, st.prod)
				g.VMULPS(st.prod, st.acc(t, 0), st.prod)
				g.VADDPS(st.prod, st.sum(t), st.sum(t))
			}
		}
		g.ilNextGroup(T)
	}})
}

// q4siVNNI: q4s, one scale d per group, activation scales per 32-weight
// block; a sub-block is four 64-byte chunks, each holding eight quants of
// sixteen rows (low nibbles: quants 4c…4c+3 of the block, high nibbles:
// 16+4c…16+4c+3); then per token s += xs·(d·sum − (8d)·Σx).
func q4siVNNI(g *gen, T, streams int) {
	g.ilKernel(ilName("q4siVNNI", T, streams), T, streams, ilEnc{start: g.ilNibbleMask, group: func(ss []ilStream, chains int) {
		for _, st := range ss {
			g.VCVTPH2PS(m(st.s, 0), st.d)
			g.ADDQ(U8(32), st.s)
			g.MOVL(U32(0x41000000), EAX) // 8.0
			g.VPBROADCASTD(EAX, st.d8)
			g.VMULPS(st.d8, st.d, st.d8)
		}
		g.ilSubCount()
		g.Label("sub")
		g.ilNibbles(ss, T, chains, 256, 0)
		for _, st := range ss {
			g.ADDQ(U32(256), st.w)
		}
		g.ilNextSub(T)
		for _, st := range ss {
			for t := range T {
				g.ilAffine(st, chains, t, st.d, st.d8)
			}
		}
		g.ilNextGroup(T)
		g.DECQ(RAX)
		g.JNZ(LabelRef("sub"))
	}})
}

// ilNibbleMask sets Z31 to 0x0f in every byte, the mask ilNibbles takes
// the low nibbles with, once per kernel call.
func (g *gen) ilNibbleMask([]ilStream) {
	g.MOVL(U32(0x0f0f0f0f), EAX)
	g.VPBROADCASTD(EAX, Z31)
}

// ilNibbles zeroes the chains and runs one 32-weight block of 4-bit quants
// (four 64-byte chunks, as q4siVNNI describes them) of every stream into
// them, prefetching span bytes of the stream (the block and what follows
// it before the next block) ahead (ilPrefetchAt).
//
// With p high bits per quant (the two-level q6), p 64-byte vectors after
// the four chunks hold them: for chunk k, vector 2kp/8 holds, at bit
// 2kp%8 of each byte, the high bits of the quant in that byte's low nibble,
// then those of the quant in its high nibble. They are shifted to bit 4,
// masked (m2) and merged with the nibbles, so the VPDPBUSDs see whole
// quants.
func (g *gen) ilNibbles(ss []ilStream, T, chains, span, p int) {
	for _, st := range ss {
		for t := range T {
			for c := range chains {
				g.VPXORD(st.acc(t, c), st.acc(t, c), st.acc(t, c))
			}
		}
	}
	for k := range 4 {
		for _, st := range ss {
			g.ilPrefetchAt(st.w, 64*k, len(ss))
			if k == 3 {
				for o := 256; o < span; o += 64 {
					g.ilPrefetchAt(st.w, o, len(ss))
				}
			}
			g.VMOVDQU64(m(st.w, 64*k), st.ld)
			hi := st.hi
			if p == 0 {
				g.VPANDD(Z31, st.ld, st.lo)
				g.VPSRLW(U8(4), st.ld, st.hi)
				g.VPANDD(Z31, st.hi, st.hi)
			} else {
				v, sb := 2*k*p/8, 2*k*p%8
				if sb == 0 {
					g.VMOVDQU64(m(st.w, 256+64*v), st.hv)
				}
				// lo = (ld & 0x0f) | (high bits at 4): VPTERNLOGD 0xf8 is
				// dst | (src2 & src3).
				g.shiftWords(st.hv, 4-sb, st.lo)
				g.VPANDD(st.m2, st.lo, st.lo)
				g.VPTERNLOGD(U8(0xf8), Z31, st.ld, st.lo)
				g.VPSRLW(U8(4), st.ld, st.hi)
				hi = st.e2
				g.shiftWords(st.hv, 4-sb-p, hi)
				g.VPANDD(st.m2, hi, hi)
				g.VPTERNLOGD(U8(0xf8), Z31, st.hi, hi)
			}
			for t := range T {
				g.VPDPBUSD_BCST(ilX(t, 4*k), st.lo, st.acc(t, (2*k)%chains))
				g.VPDPBUSD_BCST(ilX(t, 16+4*k), hi, st.acc(t, (2*k+1)%chains))
			}
		}
	}
}

// shiftWords sets dst to src's 16-bit words shifted left by n (right by −n;
// a copy for 0). Bits that cross from the neighbouring byte land in bits
// 0..n−1 (left shifts, n ≤ 4) or 6..7 (right shifts by at most 2), outside
// bits 4 and 5, which are all that the mask that follows keeps.
func (g *gen) shiftWords(src VecPhysical, n int, dst VecPhysical) {
	switch {
	case n > 0:
		g.VPSLLW(U8(n), src, dst)
	case n < 0:
		g.VPSRLW(U8(-n), src, dst)
	default:
		g.VMOVDQA64(src, dst)
	}
}

// ilAffine adds token t's term of one 32-weight block to its sums:
// s += xs·(a·sum − m·Σx), each operation rounded on its own, as the packed
// definition (dotPackedRowRef) evaluates it.
func (g *gen) ilAffine(st ilStream, chains, t int, a, mm VecPhysical) {
	g.ilChainsToFloat(st, chains, t)
	g.VMULPS(a, st.acc(t, 0), st.prod)
	g.VCVTDQ2PS_BCST(ilXI(t), st.sub)
	g.VMULPS(mm, st.sub, st.sub)
	g.VSUBPS(st.sub, st.prod, st.prod)
	g.VMULPS_BCST(ilXS(t), st.prod, st.prod)
	g.VADDPS(st.prod, st.sum(t), st.sum(t))
}

// qkiVNNI: the two-level q4 and q6 (4 + p bits, groups of 32 under float16
// pairs per 256 weights, runtime/simd qki.go). A group is 288 + 64p bytes
// of the weight stream: the four chunks of q4siVNNI, the p vectors of high
// bits (ilNibbles), then the sixteen rows' 6-bit scales and sixteen
// offsets as bytes. Every eighth group (and a block's first) takes the
// next super-block's d and dmin (sixteen float16 each) from the scale
// stream; then a = d·sc and m = dmin·mn, and per token
// s += xs·(a·sum − m·Σx). The count of groups left in the super-block lives
// in the frame: the kernels have no register to spare.
func qkiVNNI(g *gen, T, streams, p int) {
	var left Mem
	scales := 256 + 64*p
	g.ilKernel(ilName(fmt.Sprintf("q%dkiVNNI", 4+p), T, streams), T, streams, ilEnc{
		hi: p,
		start: func(ss []ilStream) {
			left = g.AllocLocal(8)
			g.ilNibbleMask(ss)
			if p > 0 {
				g.MOVL(U32(uint32(0x01010101*((1<<p-1)<<4))), EAX)
				g.VPBROADCASTD(EAX, ss[0].m2)
			}
		},
		block: func([]ilStream) { g.MOVQ(U32(1), left) },
		group: func(ss []ilStream, chains int) {
			g.DECQ(left)
			g.JNZ(LabelRef("scales"))
			for _, st := range ss {
				g.VCVTPH2PS(m(st.s, 0), st.d)
				g.VCVTPH2PS(m(st.s, 32), st.d8)
				g.ADDQ(U8(64), st.s)
			}
			g.MOVQ(U32(8), left)
			g.Label("scales")
			for _, st := range ss {
				g.VPMOVZXBD(m(st.w, scales), st.a)
				g.VCVTDQ2PS(st.a, st.a)
				g.VMULPS(st.d, st.a, st.a)
				g.VPMOVZXBD(m(st.w, scales+16), st.mm)
				g.VCVTDQ2PS(st.mm, st.mm)
				g.VMULPS(st.d8, st.mm, st.mm)
			}
			g.ilNibbles(ss, T, chains, scales+32, p)
			for _, st := range ss {
				g.ADDQ(U32(scales+32), st.w)
			}
			g.ilNextSub(T)
			for _, st := range ss {
				for t := range T {
					g.ilAffine(st, chains, t, st.a, st.mm)
				}
			}
			g.ilNextGroup(T)
		}})
}
