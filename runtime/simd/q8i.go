package simd

import (
	"encoding/binary"
	"fmt"
	"iter"
	"unsafe"
)

// Q8IRows is how many rows a Q8I block interleaves: one 512-bit vector of
// int32 lanes, one lane per row.
const Q8IRows = 16

// Q8I is a q8 matrix repacked for the interleaved kernels (MatQ8I). The
// file's row-major layout makes every group's integer sum a horizontal
// reduction inside one vector, which costs more vector instructions than
// the multiplications themselves once several tokens share the weights.
// Here the rows are taken Q8IRows at a time, and within such a block, group
// by group, each run of four quants of all its rows stands side by side:
// one VPDPBUSD multiplies a 64-byte chunk (four quants of sixteen rows) by
// four broadcast activation quants, and each int32 lane accumulates one
// row's group sum, with nothing to reduce.
//
// The product is dotQ8Go's definition, bit for bit, on every path: per row,
// the groups in order, s += (scale·xscale)·sum with each multiplication and
// the addition rounded to float32 (no fused multiply-add).
type Q8I struct {
	// W holds [block][group][Group/4][Q8IRows][4] bytes: quant+128 (the
	// quant XOR 0x80, as VPDPBUSD's unsigned operand); padding rows and the
	// padding of a short last group hold 0x80, quant 0.
	W []byte
	// S holds [block][group][Q8IRows] float16 scales, 0 in padding rows.
	S []uint16
	// Rows, Cols, Group and NG (groups per row) describe the matrix.
	Rows, Cols, Group, NG int
}

// Q8IGroupOK reports whether MatQ8I takes a q8 group size: whole 32-byte
// sub-blocks, the unit of its kernels.
func Q8IGroupOK(group int) bool { return group > 0 && group%32 == 0 }

// NewQ8I allocates the repacked form of a rows × cols q8 matrix with groups
// of group quants; Pack fills it.
func NewQ8I(rows, cols, group int) *Q8I {
	if !Q8IGroupOK(group) || rows <= 0 || cols <= 0 {
		panic(fmt.Sprintf("simd: no interleaved q8 layout for %d×%d, group %d", rows, cols, group))
	}
	ng := (cols + group - 1) / group
	blocks := (rows + Q8IRows - 1) / Q8IRows
	return &Q8I{
		W:    make([]byte, blocks*ng*group*Q8IRows),
		S:    make([]uint16, blocks*ng*Q8IRows),
		Rows: rows, Cols: cols, Group: group, NG: ng,
	}
}

// Blocks is the number of Q8IRows-row blocks.
func (m *Q8I) Blocks() int { return (m.Rows + Q8IRows - 1) / Q8IRows }

// Pack fills blocks [b0, b1) from the row-major quants wq (rows·cols) and
// scales ws (rows·NG) of the q8 encoding. Blocks are independent, so callers
// may fill disjoint ranges at once.
func (m *Q8I) Pack(wq []int8, ws []uint16, b0, b1 int) {
	c, g, ng := m.Cols, m.Group, m.NG
	wq, ws = prefix(wq, m.Rows*c), prefix(ws, m.Rows*ng)
	for ln := range lanes(m.W, m.S, ng*g*Q8IRows, ng*Q8IRows, m.Rows, b0, b1) {
		w, s, l, r := ln.w, ln.s, ln.l, ln.r
		if ln.pad {
			padLane(w, s, l, 0x80) // quant 0 is stored 0x80
			continue
		}
		row := bytesOf(wq[r*c : (r+1)*c])
		// Quant i of the row goes to chunk i/4 (64 bytes: four quants of
		// each of the block's rows), at lane l, byte i%4.
		i, o := 0, l*4
		for ; i+4 <= c; i, o = i+4, o+4*Q8IRows {
			binary.LittleEndian.PutUint32(w[o:], binary.LittleEndian.Uint32(row[i:])^0x80808080)
		}
		for ; i < ng*g; i++ {
			q := byte(0x80)
			if i < c {
				q = row[i] ^ 0x80
			}
			w[(i/4)*4*Q8IRows+l*4+i%4] = q
		}
		copy16(s, ws[r*ng:(r+1)*ng], l)
	}
}

// lane is one row's place in an interleaved layout: the weight and scale
// planes of its Q8IRows-row block, its lane l in the block and its row r
// (pad: r is past the matrix, a padding lane).
type lane struct {
	w    []byte
	s    []uint16
	l, r int
	pad  bool
}

// lanes yields the lanes of row blocks [b0, b1) in order, block b's planes
// being w[b·bw:(b+1)·bw] and s[b·bs:(b+1)·bs]: the walk every interleaved
// Pack makes.
func lanes(w []byte, s []uint16, bw, bs, rows, b0, b1 int) iter.Seq[lane] {
	return func(yield func(lane) bool) {
		for b := b0; b < b1; b++ {
			for l := range Q8IRows {
				r := b*Q8IRows + l
				if !yield(lane{w: w[b*bw : (b+1)*bw], s: s[b*bs : (b+1)*bs], l: l, r: r, pad: r >= rows}) {
					return
				}
			}
		}
	}
}

// padLane fills lane l of an interleaved block with a padding row: every
// byte q (the format's stored form of quant 0) and scale 0.
func padLane(w []byte, s []uint16, l int, q byte) {
	for i := l * 4; i < len(w); i += 4 * Q8IRows {
		w[i], w[i+1], w[i+2], w[i+3] = q, q, q, q
	}
	clearLane(s, l)
}

// clearLane sets lane l of a block's scale plane to 0 (a padding row).
func clearLane(s []uint16, l int) {
	for i := l; i < len(s); i += Q8IRows {
		s[i] = 0
	}
}

// bytesOf views int8 quants as their bytes.
func bytesOf(q []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q))), len(q))
}

// copy16 scatters a row's group scales into lane l of a block's scale plane.
func copy16(s, row []uint16, l int) {
	for gi, v := range row {
		s[gi*Q8IRows+l] = v
	}
}

// Q8Excess sets xe[g] = −128·Σ xq over group g of xq, for g < len(xe): the
// excess that MatQ8I's unsigned weight operand (quant+128) adds to each
// group sum, computed once per token instead of once per row.
func Q8Excess(xe []int32, xq []int8, group int) {
	for g := range xe {
		var s int32
		for _, v := range prefix(xq[g*group:], group) {
			s += int32(v)
		}
		xe[g] = -128 * s
	}
}

// MatQ8I computes rows [r0, r1) of the product for tokens t < tokens:
// y[t·ldy + r−r0] (+)= row r · token t, the q8 product of DotQ8 (dotQ8Go's
// definition, bit for bit). r0 must be a multiple of Q8IRows. Token t's
// quants are xq[t·xstride:], at least NG·Group of them, zero beyond Cols;
// its group scales and excesses (Q8Excess) are xs[t·xsstride:] and
// xe[t·xsstride:], NG of each.
func MatQ8I(y []float32, ldy int, m *Q8I, r0, r1 int, xq []int8, xs []float32, xe []int32, xstride, xsstride, tokens int, add bool) {
	if r0%Q8IRows != 0 || r0 < 0 || r1 > m.Rows || r1 < r0 || tokens < 0 {
		panic("simd: MatQ8I row range")
	}
	if r1 == r0 || tokens == 0 {
		return
	}
	n := m.NG * m.Group
	checkRows(tokens, len(xq), xstride, n)
	checkRows(tokens, len(xs), xsstride, m.NG)
	checkRows(tokens, len(xe), xsstride, m.NG)
	checkRows(tokens, len(y), ldy, r1-r0)
	matQ8IWith(current(), y, ldy, m, r0, r1, xq, xs, xe, xstride, xsstride, tokens, add)
}

// matQ8IGo is MatQ8I's definition, read from the repacked bytes.
func matQ8IGo(y []float32, ldy int, m *Q8I, r0, r1 int, xq []int8, xs []float32, xe []int32, xstride, xsstride, tokens int, add bool) {
	g, ng := m.Group, m.NG
	ilEach(y, ldy, r0, r1, tokens, add, ng*g*Q8IRows, ng*Q8IRows, func(t, l, wo, so int) float32 {
		x, xst, xet := xq[t*xstride:], xs[t*xsstride:], xe[t*xsstride:]
		w, s := m.W[wo:], m.S[so:]
		var sum float32
		for gi := range ng {
			acc := xet[gi]
			wg := w[gi*g*Q8IRows:]
			for i := range g {
				acc += int32(wg[(i/4)*4*Q8IRows+l*4+i%4]) * int32(x[gi*g+i])
			}
			sum += q8Term(s[gi*Q8IRows+l], xst[gi], acc)
		}
		return sum
	})
}

// ilEach is the walk of the interleaved references: for each token t and
// row r of [r0, r1), row(t, lane, offset of r's block in the weights, in the
// scales) is stored (added with add) at y[t·ldy + r−r0]; bw and bs are a
// block's weight bytes and scales.
func ilEach(y []float32, ldy, r0, r1, tokens int, add bool, bw, bs int, row func(t, l, wo, so int) float32) {
	for t := range tokens {
		for r := r0; r < r1; r++ {
			b := r / Q8IRows
			store1(y[t*ldy:], r-r0, row(t, r%Q8IRows, b*bw, b*bs), add)
		}
	}
}

// q8Term is one group's term of a q8 product: (scale·xscale)·sum, each
// product rounded to float32. The conversions keep the compiler from fusing
// it with the addition that follows (the Go spec lets it fuse x*y + z
// unless a conversion rounds in between), so every path computes the same
// bits.
func q8Term(ws uint16, xs float32, acc int32) float32 {
	d := float32(F16ToF32(ws) * xs)
	return float32(d * float32(acc))
}

// store1 writes v to y[i], or adds it when add.
func store1(y []float32, i int, v float32, add bool) {
	if add {
		v += y[i]
	}
	y[i] = v
}
