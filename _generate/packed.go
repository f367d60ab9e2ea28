package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The packed low-bit encodings (runtime/simd's Packed: q2…q6, q4s) store a
// row's quants in a lo plane of 4 or 2 bits per weight and a hi plane of 0,
// 1 or 2, each cut into chunks of 128 weights: in a chunk of a p-bit plane,
// s = 16·p bytes, byte j holds weight j + k·s in bits [k·p, (k+1)·p).
//
// These kernels compute the exact int32 sum of quant × activation of every
// 32-weight block of one row over the row's whole chunks, for several
// tokens: the integer part of the packed product. The quants (unsigned,
// below 64) are unpacked once per chunk into byte vectors of consecutive
// weights and multiplied with each token's int8 activations: with AVX-512
// VNNI, VPDPBUSD on 64-weight vectors (two blocks each); with AVX2,
// VPMADDUBSW (no saturation: 2·63·128 < 2^15) then VPMADDWD on 32-weight
// vectors (one block each). The Go caller scales the sums, in the order of
// the definition, so the result is bit for bit the reference's.
//
// Arguments (packedSumArgs): token t's sums for chunk c go to
// isum[t·ldi + 4c : +4]; its activations start at xq[t·xstride].

// packedPlanes are the encodings' plane widths: lo bits, hi bits.
var packedPlanes = [][2]int{{4, 0}, {4, 1}, {4, 2}, {2, 0}, {2, 1}}

// packedWidth is one kernel width.
type packedWidth struct {
	suffix string
	vbytes int // weights per unpacked vector
	v      func(int) VecPhysical
	load   func(g *gen, m Mem, dst VecPhysical)
	and    func(g *gen, a, b, dst VecPhysical)
	or     func(g *gen, a, b, dst VecPhysical)
	zero   func(g *gen, r VecPhysical)
	// bcast broadcasts s bytes (16 or 32) from m to every s-byte lane.
	bcast func(g *gen, s int, m Mem, dst VecPhysical)
}

var (
	packed256 = packedWidth{"AVX2", 32, y,
		func(g *gen, m Mem, dst VecPhysical) { g.VMOVDQU(m, dst) },
		func(g *gen, a, b, dst VecPhysical) { g.VPAND(a, b, dst) },
		func(g *gen, a, b, dst VecPhysical) { g.VPOR(a, b, dst) },
		func(g *gen, r VecPhysical) { g.VPXOR(r, r, r) },
		func(g *gen, s int, m Mem, dst VecPhysical) { g.VBROADCASTI128(m, dst) },
	}
	packed512 = packedWidth{"VNNI", 64, z,
		func(g *gen, m Mem, dst VecPhysical) { g.VMOVDQU64(m, dst) },
		func(g *gen, a, b, dst VecPhysical) { g.VPANDD(a, b, dst) },
		func(g *gen, a, b, dst VecPhysical) { g.VPORD(a, b, dst) },
		func(g *gen, r VecPhysical) { g.VPXORD(r, r, r) },
		func(g *gen, s int, m Mem, dst VecPhysical) {
			if s == 16 {
				g.VBROADCASTI32X4(m, dst)
			} else {
				g.VBROADCASTI64X4(m, dst)
			}
		},
	}
)

func emitPacked(g *gen) {
	for _, w := range []packedWidth{packed512, packed256} {
		for _, pl := range packedPlanes {
			packedSums(g, w, pl[0], pl[1])
		}
	}
}

// shiftTable is a read-only vector of per-dword right shifts for a
// broadcast plane: lane group j (s/4 dwords) of vector i shifts by
// p·(first field + j), so that each group's bit field lands in bits 0…p−1
// of every byte.
func (g *gen) shiftTable(name string, shifts []uint32) Mem {
	m := g.StaticGlobal(name)
	g.DataAttributes(attr.RODATA | attr.NOPTR)
	for _, s := range shifts {
		g.AppendDatum(U32(s))
	}
	return m
}

// planeTables builds the shift tables vector i of a p-bit plane needs with
// vectors of vbytes weights (nil where one immediate shift does).
func (g *gen) planeTables(prefix string, vbytes, p int) []Mem {
	s := 16 * p
	tabs := make([]Mem, 128/vbytes)
	if vbytes <= s {
		return tabs
	}
	n := vbytes / s // fields per vector
	for i := range tabs {
		var sh []uint32
		for j := range n {
			for range s / 4 {
				sh = append(sh, uint32(p*(i*n+j)))
			}
		}
		tabs[i] = g.shiftTable(fmt.Sprintf("%s_p%d_v%d", prefix, p, i), sh)
	}
	return tabs
}

// loHiTables builds the shift tables of a kernel's lo plane and, when the
// encoding has one, its hi plane (planeTables; hiTabs is nil for hi = 0).
func (g *gen) loHiTables(name string, vbytes, lo, hi int) (loTabs, hiTabs []Mem) {
	loTabs = g.planeTables(name+"_lo", vbytes, lo)
	if hi > 0 {
		hiTabs = g.planeTables(name+"_hi", vbytes, hi)
	}
	return loTabs, hiTabs
}

// unpackPlane ORs (or, for the lo plane, writes) vector i of the chunk's
// p-bit plane at base, shifted left by shl, into dst[i]: weights
// i·vbytes … (i+1)·vbytes−1 of the chunk, one per byte. scratch holds the
// loads (one per distinct offset), tmp the shifted field.
func unpackPlane(g *gen, w packedWidth, p, shl int, base GPPhysical, tabs []Mem, mask VecPhysical, dst, scratch []VecPhysical, tmp VecPhysical) {
	s := 16 * p
	loaded := map[int]VecPhysical{}
	src := func(off int, bcast bool) VecPhysical {
		if r, ok := loaded[off]; ok {
			return r
		}
		r := scratch[len(loaded)]
		if bcast {
			w.bcast(g, s, m(base, off), r)
		} else {
			w.load(g, m(base, off), r)
		}
		loaded[off] = r
		return r
	}
	for i := range dst {
		o := i * w.vbytes
		var f VecPhysical
		if w.vbytes <= s {
			// One field: the bytes at o mod s, shifted by p·(o/s).
			l := src(o%s, false)
			f = l
			if k := o / s; k > 0 {
				g.VPSRLD(U8(p*k), l, tmp)
				f = tmp
			}
		} else {
			// Several fields: the plane's s bytes in every lane group,
			// each group shifted by its own amount.
			g.VPSRLVD(tabs[i], src(0, true), tmp)
			f = tmp
		}
		if shl == 0 {
			w.and(g, mask, f, dst[i])
			continue
		}
		w.and(g, mask, f, tmp)
		g.VPSLLD(U8(shl), tmp, tmp)
		w.or(g, tmp, dst[i], dst[i])
	}
}

// packedSums: registers: DI the chunk's sums, SI its lo bytes, BX its hi
// bytes, DX token 0's activations for it, CX chunks left; per token R12
// (activations), R13 (sums), R11 tokens left; R8 = xstride, R9 = ldi in
// bytes, R10 = tokens.
func packedSums(g *gen, w packedWidth, lo, hi int) {
	name := fmt.Sprintf("packedSumsLo%dHi%d%s", lo, hi, w.suffix)
	loTabs, hiTabs := g.loHiTables(name, w.vbytes, lo, hi)
	g.text(name, "func(p *packedSumArgs)", 0)
	f := func(field, part string) Mem { return g.field(RAX, field, part) }
	g.MOVQ(g.arg(0), RAX)
	g.MOVQ(f("chunks", ""), RCX)
	g.TESTQ(RCX, RCX)
	g.JZ(LabelRef("done"))
	g.MOVQ(f("isum", "base"), RDI)
	g.MOVQ(f("lo", "base"), RSI)
	g.MOVQ(f("hi", "base"), RBX)
	g.MOVQ(f("xq", "base"), RDX)
	g.MOVQ(f("xstride", ""), R8)
	g.MOVQ(f("ldi", ""), R9)
	g.SHLQ(U8(2), R9)
	g.MOVQ(f("tokens", ""), R10)

	v := w.v
	loMask, hiMask := v(12), v(13)
	g.broadcastVia128(uint32(1<<lo-1)*0x01010101, 12, loMask)
	if hi > 0 {
		g.broadcastVia128(uint32(1<<hi-1)*0x01010101, 13, hiMask)
	}
	nv := 128 / w.vbytes // unpacked vectors per chunk
	wv := make([]VecPhysical, nv)
	for i := range wv {
		wv[i] = v(i)
	}
	if w.vbytes == 32 {
		g.broadcastVia128(0x00010001, 15, Y15) // 1 in every int16 lane
	}

	g.Label("chunk")
	unpackPlane(g, w, lo, 0, RSI, loTabs, loMask, wv, []VecPhysical{v(8), v(9)}, v(11))
	if hi > 0 {
		unpackPlane(g, w, hi, lo, RBX, hiTabs, hiMask, wv, []VecPhysical{v(10)}, v(11))
	}
	g.MOVQ(RDX, R12)
	g.MOVQ(RDI, R13)
	g.MOVQ(R10, R11)

	g.Label("token")
	if w.vbytes == 64 {
		// Two blocks per product vector; their halves give the four
		// 8-lane block partials Y4, Y6 (low) and Y5, Y7 (high).
		for i := range 2 {
			acc := z(4 + 2*i)
			g.VPXORD(acc, acc, acc)
			g.VPDPBUSD(m(R12, 64*i), wv[i], acc)
			g.VEXTRACTI64X4(U8(1), acc, y(5+2*i))
		}
	} else {
		for i := range 4 {
			g.VPMADDUBSW(m(R12, 32*i), wv[i], y(4+i))
			g.VPMADDWD(Y15, y(4+i), y(4+i))
		}
	}
	g.hsum4Of(true, 4, 5, 6, 7)
	g.VMOVDQU(X4, m(R13, 0))
	g.ADDQ(R8, R12)
	g.ADDQ(R9, R13)
	g.DECQ(R11)
	g.JNZ(LabelRef("token"))

	g.ADDQ(U8(16*lo), RSI)
	if hi > 0 {
		g.ADDQ(U8(16*hi), RBX)
	}
	g.ADDQ(U32(128), RDX)
	g.ADDQ(U8(16), RDI)
	g.closeLoop(RCX, "chunk", "done")
}
