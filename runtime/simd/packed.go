package simd

import (
	"iter"
	"sync"
)

// Packed is a view of consecutive rows of a packed low-bit matrix (quant's
// KindQK — q2…q6 — and KindQ4S; layout in quant/qk.go and format/SPEC.md),
// each plane starting at the view's first row. This package imports
// nothing, so the few layout facts the kernels need are restated here:
//
//   - a row has Blocks blocks of 32 weights (the row zero-padded);
//   - Lo holds the low LoBits (4 or 2) bits of each quant, Hi the next
//     HiBits (0, 1 or 2), each a bit plane cut into chunks of 128 weights
//     (the row's last chunk shorter: 32, 64 or 96); in a chunk of h weights
//     and p bits per weight, byte j of the chunk's s = h·p/8 bytes holds
//     weight j + k·s in bits [k·p, (k+1)·p);
//   - Sym (q4s): Sup holds one float16 scale d per group of Group weights
//     and weight i decodes to d·(q_i − 8); otherwise Sub holds a 12-bit
//     (6-bit scale sc | 6-bit offset mn << 6) per group, two groups per
//     3 bytes little-endian, Sup a float16 pair (d, dmin) per 256 weights,
//     and weight i decodes to (d·sc)·q_i − dmin·mn.
type Packed struct {
	Lo, Hi, Sub []byte
	Sup         []uint16
	// Bytes per row of Lo, Hi and Sub; uint16 elements per row of Sup.
	LoRow, HiRow, SubRow, SupRow int
	LoBits, HiBits               int
	Group                        int
	Sym                          bool
	Blocks                       int
}

// Rows returns the view of rows [r0, r1) of w.
func (w *Packed) Rows(r0, r1 int) Packed {
	v := *w
	v.Lo = w.Lo[r0*w.LoRow : r1*w.LoRow]
	v.Hi = w.Hi[r0*w.HiRow : r1*w.HiRow]
	v.Sub = w.Sub[r0*w.SubRow : r1*w.SubRow]
	v.Sup = w.Sup[r0*w.SupRow : r1*w.SupRow]
	return v
}

// groupParams is the float32 step a and offset m of group g of row r:
// weight q decodes to a·q − m. Both are exact products (an 11-bit float16
// significand times a 6-bit integer or 8).
func (w *Packed) groupParams(r, g int) (a, m float32) {
	sup := w.Sup[r*w.SupRow : (r+1)*w.SupRow]
	if w.Sym {
		d := F16ToF32(sup[g])
		return d, 8 * d
	}
	sb := g * w.Group / 256
	sc, mn := w.subScales(r, g)
	return F16ToF32(sup[2*sb]) * float32(sc), F16ToF32(sup[2*sb+1]) * float32(mn)
}

// subScales is the 6-bit scale and offset of group g of row r of a
// two-level view, stored as 12-bit pairs (two groups in three bytes).
func (w *Packed) subScales(r, g int) (sc, mn uint8) {
	b := w.Sub[r*w.SubRow+3*(g/2):]
	v := (uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16) >> (12 * (g & 1))
	return uint8(v & 63), uint8(v >> 6 & 63)
}

// rowPlanes returns row r's lo and hi planes (hi is empty without one).
func (w *Packed) rowPlanes(r int) (lo, hi []byte) {
	return w.Lo[r*w.LoRow : (r+1)*w.LoRow], w.Hi[r*w.HiRow : (r+1)*w.HiRow]
}

// unpackPlaneBits ORs the p-bit fields of one row's plane, shifted left by
// shift, into q (len(q) = 32·Blocks).
func unpackPlaneBits(q []uint8, src []byte, shift, p int) {
	mask := uint8(1)<<p - 1
	for c0 := 0; c0 < len(q); c0 += 128 {
		h := min(128, len(q)-c0)
		s := h * p / 8
		d := src[c0*p/8 : c0*p/8+s]
		for i := range h {
			q[c0+i] |= (d[i%s] >> (i / s * p) & mask) << shift
		}
	}
}

// unpackRowRef writes row r's quants (unsigned, 0 … 2^bits−1) into q.
func (w *Packed) unpackRowRef(q []uint8, r int) {
	clear(q)
	lo, hi := w.rowPlanes(r)
	unpackPlaneBits(q, lo, 0, w.LoBits)
	if w.HiBits > 0 {
		unpackPlaneBits(q, hi, w.LoBits, w.HiBits)
	}
}

// blockSumsRef returns the exact sums Σ_{i∈b} val(q_i)·xq_i of row r's
// 32-weight blocks b, q_i the row's quants.
func (w *Packed) blockSumsRef(r int, xq []int8, val func(q uint8) int32) []int32 {
	q := make([]uint8, 32*w.Blocks)
	w.unpackRowRef(q, r)
	isum := make([]int32, w.Blocks)
	for b := range isum {
		for i := 32 * b; i < 32*(b+1); i++ {
			isum[b] += val(q[i]) * int32(xq[i])
		}
	}
	return isum
}

// dotPackedRowRef is the definition of the packed product for row r and one
// token: Σ_b xs[b]·(a·isum_b − m·xsum[b]) over the row's 32-weight blocks b
// in order, with isum_b = Σ_{i∈b} q_i·xq_i (exact int32), (a, m) the
// parameters of the group holding block b, and the float32 operations
// evaluated left to right, each rounded.
func dotPackedRowRef(w *Packed, r int, xq []int8, xs []float32, xsum []int32) float32 {
	var acc float32
	for b, isum := range w.blockSumsRef(r, xq, func(q uint8) int32 { return int32(q) }) {
		a, m := w.groupParams(r, 32*b/w.Group)
		acc += xs[b] * (float32(a*float32(isum)) - float32(m*float32(xsum[b])))
	}
	return acc
}

// SumQ8Blocks writes the sum of each block of 32 quantized activations, the
// xsum the packed kernels take (len(xsum) = len(xq)/32).
func SumQ8Blocks(xsum []int32, xq []int8) {
	for b := range xsum {
		var s int32
		for _, v := range xq[32*b : 32*b+32] {
			s += int32(v)
		}
		xsum[b] = s
	}
}

// DotPackedRows computes y[r] = Σ_b xs[b]·(a·isum_b − m·xsum[b]) (y[r] +=
// … when add) for rows r < len(y) of w against one token of activations
// quantized to int8 in blocks of 32 (QuantizeQ8 with group 32, zero-padded
// to 32·w.Blocks; xs its scales, xsum its SumQ8Blocks). It reads the packed
// bytes as they are stored. The integer sums are exact; the Go kernels
// evaluate the float32 part in the order of the definition (bit for bit),
// assembly may reorder it.
func DotPackedRows(y []float32, w *Packed, xq []int8, xs []float32, xsum []int32, add bool) {
	checkPacked(w, len(y), xq, xs, xsum)
	packedRows(y, w, xq, xs, xsum, add)
}

// MatPacked is the matrix-matrix form of DotPackedRows for prefill:
// y[t·ldy + r] (+)= row r of w times token t, for r < rows and t < tokens;
// token t's activations start at xq[t·xstride], xs[t·xsstride] and
// xsum[t·xsstride].
func MatPacked(y []float32, ldy int, w *Packed, xq []int8, xs []float32, xsum []int32, xstride, xsstride, rows, tokens int, add bool) {
	if tokens == 0 || rows == 0 {
		return
	}
	checkPacked(w, rows, xq[(tokens-1)*xstride:], xs[(tokens-1)*xsstride:], xsum[(tokens-1)*xsstride:])
	if len(y) < (tokens-1)*ldy+rows {
		panic("simd: packed output shorter than the tile")
	}
	matPacked(y, ldy, w, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
}

func checkPacked(w *Packed, rows int, xq []int8, xs []float32, xsum []int32) {
	n := 32 * w.Blocks
	if len(xq) < n || len(xs) < w.Blocks || len(xsum) < w.Blocks {
		panic("simd: packed activations shorter than the row")
	}
	if w.Group%32 != 0 || w.Group <= 0 || (w.LoBits != 4 && w.LoBits != 2) || w.HiBits < 0 || w.HiBits > 2 {
		panic("simd: bad packed view")
	}
	if len(w.Lo) < rows*w.LoRow || len(w.Hi) < rows*w.HiRow || len(w.Sub) < rows*w.SubRow || len(w.Sup) < rows*w.SupRow ||
		w.LoRow*8 != n*w.LoBits || w.HiRow*8 != n*w.HiBits {
		panic("simd: packed planes shorter than the rows")
	}
}

// packedRowsRef and matPackedRef are the plain definitions.
func packedRowsRef(y []float32, w *Packed, xq []int8, xs []float32, xsum []int32, add bool) {
	for r := range y {
		v := dotPackedRowRef(w, r, xq, xs, xsum)
		if add {
			v += y[r]
		}
		y[r] = v
	}
}

func matPackedRef(y []float32, ldy int, w *Packed, xq []int8, xs []float32, xsum []int32, xstride, xsstride, rows, tokens int, add bool) {
	for t := range tokens {
		packedRowsRef(y[t*ldy:t*ldy+rows], w, xq[t*xstride:], xs[t*xsstride:], xsum[t*xsstride:], add)
	}
}

// packedRowsGo is the portable row-range kernel: it unpacks each chunk of
// 128 weights into int8 and sums each block of 32 with four accumulators.
func packedRowsGo(y []float32, w *Packed, xq []int8, xs []float32, xsum []int32, add bool) {
	var q [128]int8
	for r := range y {
		var acc float32
		for blk, qb := range w.rowBlocks(r, &q) {
			a, m := w.groupParams(r, blk*32/w.Group)
			isum := dot32(qb, xq[32*blk:32*blk+32])
			acc += xs[blk] * (float32(a*float32(isum)) - float32(m*float32(xsum[blk])))
		}
		if add {
			acc += y[r]
		}
		y[r] = acc
	}
}

// The tile kernel multiplies three tokens at once in one 64-bit integer
// (SWAR): each weight position holds the three tokens' activations biased
// to x+128 ∈ [1, 255] in 21-bit lanes, so q·lanes is one multiplication,
// and a block's 32 products per lane stay below 32·63·255 < 2^21 (no carry
// between lanes for any bit width up to 6). The bias is removed per block
// with 128·Σq. Two such words (six tokens) share each unpacked chunk.
const (
	swarLane  = 21
	swarMask  = 1<<swarLane - 1
	swarToks  = 3
	swarWords = 2
)

// packedScratch is the tile kernel's working memory, pooled so that the
// kernel allocates nothing in steady state.
type packedScratch struct {
	xp []uint64
}

var packedScratchPool = sync.Pool{New: func() any { return new(packedScratch) }}

// matPackedGo is the portable tile kernel (see the SWAR note above); one
// token alone goes to the row-range kernel.
func matPackedGo(y []float32, ldy int, w *Packed, xq []int8, xs []float32, xsum []int32, xstride, xsstride, rows, tokens int, add bool) {
	if tokens == 1 {
		packedRowsGo(y[:rows], w, xq, xs, xsum, add)
		return
	}
	sc := packedScratchPool.Get().(*packedScratch)
	defer packedScratchPool.Put(sc)
	n := 32 * w.Blocks
	if cap(sc.xp) < swarWords*n {
		sc.xp = make([]uint64, swarWords*n)
	}
	xp := sc.xp[:swarWords*n]
	var q [128]int8
	const per = swarToks * swarWords
	for t0 := 0; t0 < tokens; t0 += per {
		nt := min(per, tokens-t0)
		clear(xp)
		for k := range nt {
			x := xq[(t0+k)*xstride : (t0+k)*xstride+n]
			word := xp[(k/swarToks)*n : (k/swarToks+1)*n]
			sh := uint(k%swarToks) * swarLane
			for i, v := range x {
				word[i] |= uint64(uint8(v)^0x80) << sh
			}
		}
		x0, x1 := xp[:n], xp[n:2*n]
		for r := range rows {
			var acc [per]float32
			for blk, qb := range w.rowBlocks(r, &q) {
				a, m := w.groupParams(r, blk*32/w.Group)
				p0 := x0[32*blk : 32*blk+32]
				p1 := x1[32*blk : 32*blk+32]
				var s0, s1 uint64
				var qs int32
				if nt > swarToks {
					for i, v := range qb {
						u := uint64(v)
						s0 += u * p0[i]
						s1 += u * p1[i]
						qs += int32(v)
					}
				} else {
					for i, v := range qb {
						s0 += uint64(v) * p0[i]
						qs += int32(v)
					}
				}
				bias := 128 * qs
				for k := range nt {
					s := s0
					if k >= swarToks {
						s = s1
					}
					isum := int32(s>>(uint(k%swarToks)*swarLane)&swarMask) - bias
					u := t0 + k
					acc[k] += xs[u*xsstride+blk] * (float32(a*float32(isum)) - float32(m*float32(xsum[u*xsstride+blk])))
				}
			}
			for k := range nt {
				i := (t0+k)*ldy + r
				v := acc[k]
				if add {
					v += y[i]
				}
				y[i] = v
			}
		}
	}
}

// rowBlocks yields row r's 32-weight blocks in order, each as its index
// and its quants as int8, unpacking them 128 at a time into q.
func (w *Packed) rowBlocks(r int, q *[128]int8) iter.Seq2[int, []int8] {
	return func(yield func(int, []int8) bool) {
		lo, hi := w.rowPlanes(r)
		n := 32 * w.Blocks
		for c0 := 0; c0 < n; c0 += 128 {
			h := min(128, n-c0)
			unpackChunk(q[:h], lo[c0*w.LoBits/8:], hi, c0, w.LoBits, w.HiBits)
			for b := range h / 32 {
				if !yield(c0/32+b, q[32*b:32*b+32]) {
					return
				}
			}
		}
	}
}

// unpackChunk writes the h quants of the chunk starting at weight c0 of a
// row into q: lo is the row's lo plane from the chunk on, hi the whole
// row's hi plane (nil without one).
func unpackChunk(q []int8, lo, hi []byte, c0, loBits, hiBits int) {
	h := len(q)
	if loBits == 4 {
		s := h / 2
		for j, v := range lo[:s] {
			q[j] = int8(v & 15)
			q[j+s] = int8(v >> 4)
		}
	} else {
		s := h / 4
		for j, v := range lo[:s] {
			q[j] = int8(v & 3)
			q[j+s] = int8(v >> 2 & 3)
			q[j+2*s] = int8(v >> 4 & 3)
			q[j+3*s] = int8(v >> 6)
		}
	}
	if hiBits > 0 {
		per := 8 / hiBits // weights per byte of the chunk's hi plane
		s, mask := h/per, byte(1)<<hiBits-1
		d := hi[c0/per : c0/per+s]
		for k := range per {
			qk := q[k*s : (k+1)*s]
			for j, v := range d {
				qk[j] |= int8(v>>(hiBits*k)&mask) << loBits
			}
		}
	}
}

// dot32 is the exact integer dot product of 32 quants with 32 activations.
func dot32(w, x []int8) int32 {
	w, x = w[:32], x[:32]
	var s0, s1, s2, s3 int32
	for i := 0; i < 32; i += 4 {
		s0 += int32(w[i]) * int32(x[i])
		s1 += int32(w[i+1]) * int32(x[i+1])
		s2 += int32(w[i+2]) * int32(x[i+2])
		s3 += int32(w[i+3]) * int32(x[i+3])
	}
	return (s0 + s1) + (s2 + s3)
}
