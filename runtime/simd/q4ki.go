package simd

import "fmt"

// Q4KI is a two-level q4 matrix (Packed, not Sym: 4-bit quants in groups
// of 32, each group's 6-bit scale and offset under a float16 pair d, dmin
// per 256 weights) repacked for the interleaved kernels (MatQ4KI), as Q4SI
// repacks q4s: sixteen rows side by side, so each int32 lane of a VPDPBUSD
// accumulates one row's group sum. Within a Q8IRows-row block, each
// 32-weight group is 288 bytes: Q4SI's four 64-byte chunks of quants, then
// the sixteen rows' scales and the sixteen rows' offsets, a byte each (the
// kernels widen them with one instruction; as 12-bit pairs they would need
// a shuffle per group). The copy is 4.625 bits per weight against the
// planes' 4.5.
//
// The product is dotPackedRowRef's definition, bit for bit, on every path:
// per row, the groups in order, with a = d·sc and m = dmin·mn,
// s += xs·(a·sum − m·Σx), each operation rounded to float32.
type Q4KI struct {
	// W holds [block][group][288] bytes: [4][Q8IRows][4] quant bytes (as
	// Q4SI.W), [Q8IRows] scales, [Q8IRows] offsets; padding rows hold 0.
	W []byte
	// S holds [block][super-block][2][Q8IRows] float16: the rows' d, then
	// their dmin; 0 in padding rows.
	S []uint16
	// Rows, Blocks (32-weight groups per row, the padded row) and NSB
	// (super-blocks of 256 weights per row, the last maybe shorter)
	// describe the matrix.
	Rows, Blocks, NSB int
}

// q4kiGroup is the bytes of one group of a row block in Q4KI.W.
const q4kiGroup = 16*Q8IRows + 2*Q8IRows

// Q4KIOK reports whether MatQ4KI takes a packed view: the two-level q4
// (asymmetric, 4-bit lo plane, no hi plane, groups of 32).
func Q4KIOK(w *Packed) bool {
	return !w.Sym && w.LoBits == 4 && w.HiBits == 0 && w.Group == 32 && w.Blocks > 0
}

// NewQ4KI allocates the repacked form of rows rows of the q4 view w; Pack
// fills it.
func NewQ4KI(w *Packed, rows int) *Q4KI {
	if !Q4KIOK(w) || rows <= 0 {
		panic(fmt.Sprintf("simd: no interleaved q4 layout for %d rows of %+v", rows, *w))
	}
	blocks := (rows + Q8IRows - 1) / Q8IRows
	nsb := (w.Blocks + 7) / 8
	return &Q4KI{
		W:    make([]byte, blocks*w.Blocks*q4kiGroup),
		S:    make([]uint16, blocks*nsb*2*Q8IRows),
		Rows: rows, Blocks: w.Blocks, NSB: nsb,
	}
}

// RowBlocks is the number of Q8IRows-row blocks.
func (m *Q4KI) RowBlocks() int { return (m.Rows + Q8IRows - 1) / Q8IRows }

// Pack fills row blocks [b0, b1) from the view w (the whole matrix).
// Blocks are independent, so callers may fill disjoint ranges at once.
func (m *Q4KI) Pack(w *Packed, b0, b1 int) {
	bw, bs := m.Blocks*q4kiGroup, m.NSB*2*Q8IRows
	q := make([]uint8, 32*m.Blocks)
	for b := b0; b < b1; b++ {
		dst, s := m.W[b*bw:(b+1)*bw], m.S[b*bs:(b+1)*bs]
		for l := range Q8IRows {
			r := b*Q8IRows + l
			if r >= m.Rows {
				for k := range m.Blocks {
					g := dst[k*q4kiGroup:]
					for c := range 4 {
						clear(g[c*4*Q8IRows+l*4:][:4])
					}
					g[16*Q8IRows+l], g[17*Q8IRows+l] = 0, 0
				}
				for i := l; i < len(s); i += Q8IRows {
					s[i] = 0
				}
				continue
			}
			unpackLo4(q, w.Lo[r*w.LoRow:(r+1)*w.LoRow])
			for k := range m.Blocks {
				g, qb := dst[k*q4kiGroup:], q[32*k:32*k+32]
				for c := range 4 {
					o := c*4*Q8IRows + l*4
					for i := range 4 {
						g[o+i] = qb[4*c+i] | qb[16+4*c+i]<<4
					}
				}
				sc, mn := w.subScales(r, k)
				g[16*Q8IRows+l], g[17*Q8IRows+l] = sc, mn
			}
			copy16(s, w.Sup[r*w.SupRow:r*w.SupRow+2*m.NSB], l)
		}
	}
}

// MatQ4KI computes rows [r0, r1) of the product for tokens t < tokens:
// y[t·ldy + r−r0] (+)= row r · token t, MatPacked's product (its
// definition, bit for bit). r0 must be a multiple of Q8IRows. Token t's
// quants are xq[t·xstride:], 32·Blocks of them (zero beyond the row's
// columns), its block scales and block sums (SumQ8Blocks) xs[t·xsstride:]
// and xsum[t·xsstride:], Blocks of each.
func MatQ4KI(y []float32, ldy int, m *Q4KI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	if r0%Q8IRows != 0 || r0 < 0 || r1 > m.Rows || r1 < r0 || tokens < 0 {
		panic("simd: MatQ4KI row range")
	}
	if r1 == r0 || tokens == 0 {
		return
	}
	checkRows(tokens, len(xq), xstride, 32*m.Blocks)
	checkRows(tokens, len(xs), xsstride, m.Blocks)
	checkRows(tokens, len(xsum), xsstride, m.Blocks)
	checkRows(tokens, len(y), ldy, r1-r0)
	matQ4KIWith(current(), y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
}

// matQ4KIGo is MatQ4KI's definition, read from the repacked bytes.
func matQ4KIGo(y []float32, ldy int, m *Q4KI, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
	ilEach(y, ldy, r0, r1, tokens, add, m.Blocks*q4kiGroup, m.NSB*2*Q8IRows, func(t, l, wo, so int) float32 {
		x, xst, xsu := xq[t*xstride:], xs[t*xsstride:], xsum[t*xsstride:]
		s := m.S[so:]
		var acc float32
		for k := range m.Blocks {
			g := m.W[wo+k*q4kiGroup:]
			var isum int32
			for c := range 4 {
				v := g[c*4*Q8IRows+l*4:]
				for i := range 4 {
					isum += int32(v[i]&15)*int32(x[32*k+4*c+i]) + int32(v[i]>>4)*int32(x[32*k+16+4*c+i])
				}
			}
			sb := k / 8 * 2 * Q8IRows
			a := F16ToF32(s[sb+l]) * float32(g[16*Q8IRows+l])
			mm := F16ToF32(s[sb+Q8IRows+l]) * float32(g[17*Q8IRows+l])
			acc += xst[k] * (float32(a*float32(isum)) - float32(mm*float32(xsu[k])))
		}
		return acc
	})
}
