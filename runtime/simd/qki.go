package simd

import "fmt"

// QKI is a two-level q4 or q6 matrix (Packed, not Sym: 4-bit quants, plus
// two high bits for q6, in groups of 32, each group's 6-bit scale and
// offset under a float16 pair d, dmin per 256 weights) repacked for the
// interleaved kernels (MatQKI), as Q4SI repacks q4s: sixteen rows side by
// side, so each int32 lane of a VPDPBUSD accumulates one row's group sum.
// Within a Q8IRows-row block, each 32-weight group is GroupBytes bytes:
//   - Q4SI's four 64-byte chunks of the quants' low four bits;
//   - for q6, two 64-byte vectors of high bits: byte l·4+i of vector v holds,
//     for chunks k = 2v and 2v+1, at bits 4(k−2v), the two high bits of the
//     quant whose low bits are the low nibble of byte l·4+i of chunk k, then
//     (bits 4(k−2v)+2) those of the quant in its high nibble;
//   - the sixteen rows' scales, then their offsets, a byte each (the kernels
//     widen them with one instruction; as 12-bit pairs they would need a
//     shuffle per group).
//
// The copy is 4.625 bits per weight for q4 (the planes: 4.5) and 6.625 for
// q6 (6.5).
//
// The product is dotPackedRowRef's definition, bit for bit, on every path:
// per row, the groups in order, with a = d·sc and m = dmin·mn,
// s += xs·(a·sum − m·Σx), each operation rounded to float32.
type QKI struct {
	// W holds [block][group][GroupBytes] bytes as above; padding rows hold 0.
	W []byte
	// S holds [block][super-block][2][Q8IRows] float16: the rows' d, then
	// their dmin; 0 in padding rows.
	S []uint16
	// HiBits is 0 (q4) or 2 (q6). Rows, Blocks (32-weight groups per row,
	// the padded row) and NSB (super-blocks of 256 weights per row, the
	// last maybe shorter) describe the matrix.
	HiBits, Rows, Blocks, NSB int
}

// GroupBytes is the size of one group of a row block in W.
func (m *QKI) GroupBytes() int { return qkiGroupBytes(m.HiBits) }

// Where things stand in a group of W (see QKI), for Pack and the
// definition alike: the byte holding quants 4c+i and 16+4c+i of lane l,
// the byte holding their high bits (at bits 4·(c%2)), and the lanes'
// scales (their offsets follow, Q8IRows bytes on).
func qkiNibbles(c, l, i int) int { return c*4*Q8IRows + l*4 + i }
func qkiHigh(c, l, i int) int    { return (16+4*(c/2))*Q8IRows + l*4 + i }
func qkiScales(hi int) int       { return (16 + 4*hi) * Q8IRows }
func qkiGroupBytes(hi int) int   { return qkiScales(hi) + 2*Q8IRows }

// QKIOK reports whether MatQKI takes a packed view: the two-level q4 or q6
// (asymmetric, 4-bit lo plane, no or a 2-bit hi plane, groups of 32).
func QKIOK(w *Packed) bool {
	return !w.Sym && w.LoBits == 4 && (w.HiBits == 0 || w.HiBits == 2) && w.Group == 32 && w.Blocks > 0
}

// NewQKI allocates the repacked form of rows rows of the view w; Pack
// fills it.
func NewQKI(w *Packed, rows int) *QKI {
	if !QKIOK(w) || rows <= 0 {
		panic(fmt.Sprintf("simd: no interleaved two-level layout for %d rows of %+v", rows, *w))
	}
	blocks := (rows + Q8IRows - 1) / Q8IRows
	nsb := (w.Blocks + 7) / 8
	return &QKI{
		W:      make([]byte, blocks*w.Blocks*qkiGroupBytes(w.HiBits)),
		S:      make([]uint16, blocks*nsb*2*Q8IRows),
		HiBits: w.HiBits, Rows: rows, Blocks: w.Blocks, NSB: nsb,
	}
}

// RowBlocks is the number of Q8IRows-row blocks.
func (m *QKI) RowBlocks() int { return (m.Rows + Q8IRows - 1) / Q8IRows }

// Pack fills row blocks [b0, b1) from the view w (the whole matrix).
// Blocks are independent, so callers may fill disjoint ranges at once.
func (m *QKI) Pack(w *Packed, b0, b1 int) {
	gb := m.GroupBytes()
	sc := qkiScales(m.HiBits)
	q := make([]uint8, 32*m.Blocks)
	for ln := range lanes(m.W, m.S, m.Blocks*gb, m.NSB*2*Q8IRows, m.Rows, b0, b1) {
		l, r := ln.l, ln.r
		if ln.pad {
			clear(q)
		} else {
			unpackLo4(q, w.Lo[r*w.LoRow:(r+1)*w.LoRow])
			if m.HiBits > 0 {
				unpackPlaneBits(q, w.Hi[r*w.HiRow:(r+1)*w.HiRow], 4, m.HiBits)
			}
		}
		for k := range m.Blocks {
			g, qb := ln.w[k*gb:], q[32*k:32*k+32]
			for c := range 4 {
				for i := range 4 {
					lo, hi := qb[4*c+i], qb[16+4*c+i]
					g[qkiNibbles(c, l, i)] = lo&15 | hi<<4
					if m.HiBits > 0 {
						h, f := &g[qkiHigh(c, l, i)], lo>>4|hi>>4<<2
						if c%2 == 0 {
							*h = f
						} else {
							*h |= f << 4
						}
					}
				}
			}
			var s, mn uint8
			if !ln.pad {
				s, mn = w.subScales(r, k)
			}
			g[sc+l], g[sc+Q8IRows+l] = s, mn
		}
		if ln.pad {
			clearLane(ln.s, l)
		} else {
			copy16(ln.s, w.Sup[r*w.SupRow:r*w.SupRow+2*m.NSB], l)
		}
	}
}

// MatQKI computes rows [r0, r1) of the product for tokens t < tokens:
// y[t·ldy + r−r0] (+)= row r · token t, MatPacked's product (its
// definition, bit for bit). r0 must be a multiple of Q8IRows. Token t's
// quants are xq[t·xstride:], 32·Blocks of them (zero beyond the row's
// columns), its block scales and block sums (SumQ8Blocks) xs[t·xsstride:]
// and xsum[t·xsstride:], Blocks of each.
func MatQKI(y []float32, ldy int, m *QKI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	if checkPackedI("MatQKI", m.Rows, m.Blocks, y, ldy, r0, r1, xq, xs, xsum, xstride, xsstride, tokens) {
		matQKIWith(current(), y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
	}
}

// matQKIGo is MatQKI's definition, read from the repacked bytes.
func matQKIGo(y []float32, ldy int, m *QKI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	gb := m.GroupBytes()
	sc := qkiScales(m.HiBits)
	ilEach(y, ldy, r0, r1, tokens, add, m.Blocks*gb, m.NSB*2*Q8IRows, func(t, l, wo, so int) float32 {
		x, xst, xsu := xq[t*xstride:], xs[t*xsstride:], xsum[t*xsstride:]
		s := m.S[so:]
		var acc float32
		for k := range m.Blocks {
			g := m.W[wo+k*gb:]
			var isum int32
			for c := range 4 {
				for i := range 4 {
					v := g[qkiNibbles(c, l, i)]
					lo, hi := int32(v&15), int32(v>>4)
					if m.HiBits > 0 {
						h := int32(g[qkiHigh(c, l, i)] >> (4 * (c % 2)))
						lo, hi = lo|(h&3)<<4, hi|(h>>2&3)<<4
					}
					isum += lo*int32(x[32*k+4*c+i]) + hi*int32(x[32*k+16+4*c+i])
				}
			}
			sb := k / 8 * 2 * Q8IRows
			a := F16ToF32(s[sb+l]) * float32(g[sc+l])
			mm := F16ToF32(s[sb+Q8IRows+l]) * float32(g[sc+Q8IRows+l])
			acc += xst[k] * (float32(a*float32(isum)) - float32(mm*float32(xsu[k])))
		}
		return acc
	})
}
