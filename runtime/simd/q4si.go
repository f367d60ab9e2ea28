package simd

import "fmt"

// Q4SI is a q4s matrix (Packed with Sym) repacked for the interleaved
// kernels (MatQ4SI), for the reason Q8I is: sixteen rows side by side, so
// each int32 lane of a VPDPBUSD accumulates one row's block sum. The quants
// stay 4 bits wide (the copy is the size of the file's planes). Within a
// Q8IRows-row block, for each 32-weight block of the rows, four 64-byte
// chunks: chunk c holds, for each of the sixteen rows, four bytes whose low
// nibbles are quants 4c…4c+3 of the block and whose high nibbles are quants
// 16+4c…16+4c+3, so that one mask and one shift give two vectors that each
// pair with four broadcast activation quants.
//
// The product is dotPackedRowRef's definition, bit for bit, on every path:
// per row, the 32-weight blocks in order, s += xs·(d·sum − (8d)·Σx), each
// operation rounded to float32.
type Q4SI struct {
	// W holds [block][32-weight block][4][Q8IRows][4] bytes; padding rows
	// hold quant 0.
	W []byte
	// S holds [block][group][Q8IRows] float16 scales d, 0 in padding rows.
	S []uint16
	// Rows, Blocks (32-weight blocks per row, the padded row), Group and
	// NG (groups per row) describe the matrix.
	Rows, Blocks, Group, NG int
}

// Q4SIOK reports whether MatQ4SI takes a packed view: q4s (Sym, 4-bit lo
// plane) whose padded rows hold whole groups, the unit of its kernels.
func Q4SIOK(w *Packed) bool {
	return w.Sym && w.LoBits == 4 && w.HiBits == 0 && w.Group > 0 && w.Group%32 == 0 &&
		w.Blocks*32%w.Group == 0
}

// NewQ4SI allocates the repacked form of rows rows of the q4s view w; Pack
// fills it.
func NewQ4SI(w *Packed, rows int) *Q4SI {
	if !Q4SIOK(w) || rows <= 0 {
		panic(fmt.Sprintf("simd: no interleaved q4s layout for %d rows of %+v", rows, *w))
	}
	blocks := (rows + Q8IRows - 1) / Q8IRows
	ng := w.Blocks * 32 / w.Group
	return &Q4SI{
		W:    make([]byte, blocks*w.Blocks*16*Q8IRows),
		S:    make([]uint16, blocks*ng*Q8IRows),
		Rows: rows, Blocks: w.Blocks, Group: w.Group, NG: ng,
	}
}

// RowBlocks is the number of Q8IRows-row blocks.
func (m *Q4SI) RowBlocks() int { return (m.Rows + Q8IRows - 1) / Q8IRows }

// Pack fills row blocks [b0, b1) from the view w (the whole matrix).
// Blocks are independent, so callers may fill disjoint ranges at once.
func (m *Q4SI) Pack(w *Packed, b0, b1 int) {
	q := make([]uint8, 32*m.Blocks)
	for ln := range lanes(m.W, m.S, m.Blocks*16*Q8IRows, m.NG*Q8IRows, m.Rows, b0, b1) {
		dst, l, r := ln.w, ln.l, ln.r
		if ln.pad {
			padLane(dst, ln.s, l, 0)
			continue
		}
		unpackLo4(q, w.Lo[r*w.LoRow:(r+1)*w.LoRow])
		for k := range m.Blocks {
			qb := q[32*k : 32*k+32]
			for c := range 4 {
				o := (k*4+c)*4*Q8IRows + l*4
				for i := range 4 {
					dst[o+i] = qb[4*c+i] | qb[16+4*c+i]<<4
				}
			}
		}
		copy16(ln.s, w.Sup[r*w.SupRow:r*w.SupRow+m.NG], l)
	}
}

// unpackLo4 writes a row's 4-bit quants (len(q) of them) from its lo plane:
// chunks of 128 weights (the last shorter), byte j of a chunk of h holding
// weight j in its low nibble and weight j+h/2 in its high one.
func unpackLo4(q []uint8, lo []byte) {
	for c0 := 0; c0 < len(q); c0 += 128 {
		h := min(128, len(q)-c0)
		s := h / 2
		d := lo[c0/2 : c0/2+s]
		for j, v := range d {
			q[c0+j] = v & 15
			q[c0+j+s] = v >> 4
		}
	}
}

// MatQ4SI computes rows [r0, r1) of the product for tokens t < tokens:
// y[t·ldy + r−r0] (+)= row r · token t, MatPacked's product (its
// definition, bit for bit). r0 must be a multiple of Q8IRows. Token t's
// quants are xq[t·xstride:], 32·Blocks of them (zero beyond the row's
// columns), its block scales and block sums (SumQ8Blocks) xs[t·xsstride:]
// and xsum[t·xsstride:], Blocks of each.
func MatQ4SI(y []float32, ldy int, m *Q4SI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	if checkPackedI("MatQ4SI", m.Rows, m.Blocks, y, ldy, r0, r1, xq, xs, xsum, xstride, xsstride, tokens) {
		matQ4SIWith(current(), y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
	}
}

// checkPackedI panics unless the arguments of an interleaved packed product
// (MatQ4SI, MatQKI) of a matrix of rows rows and blocks 32-weight blocks
// per row fit it, and reports whether there is anything to compute.
func checkPackedI(name string, rows, blocks int, y []float32, ldy, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int) bool {
	if r0%Q8IRows != 0 || r0 < 0 || r1 > rows || r1 < r0 || tokens < 0 {
		panic("simd: " + name + " row range")
	}
	if r1 == r0 || tokens == 0 {
		return false
	}
	checkRows(tokens, len(xq), xstride, 32*blocks)
	checkRows(tokens, len(xs), xsstride, blocks)
	checkRows(tokens, len(xsum), xsstride, blocks)
	checkRows(tokens, len(y), ldy, r1-r0)
	return true
}

// matQ4SIGo is MatQ4SI's definition, read from the repacked bytes.
func matQ4SIGo(y []float32, ldy int, m *Q4SI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	ilEach(y, ldy, r0, r1, tokens, add, m.Blocks*16*Q8IRows, m.NG*Q8IRows, func(t, l, wo, so int) float32 {
		x, xst, xsu := xq[t*xstride:], xs[t*xsstride:], xsum[t*xsstride:]
		w, s := m.W[wo:], m.S[so:]
		var acc float32
		for k := range m.Blocks {
			var isum int32
			for c := range 4 {
				v := w[(k*4+c)*4*Q8IRows+l*4:]
				for i := range 4 {
					isum += int32(v[i]&15)*int32(x[32*k+4*c+i]) + int32(v[i]>>4)*int32(x[32*k+16+4*c+i])
				}
			}
			d := F16ToF32(s[(32*k/m.Group)*Q8IRows+l])
			acc += xst[k] * (float32(d*float32(isum)) - float32(8*d*float32(xsu[k])))
		}
		return acc
	})
}
