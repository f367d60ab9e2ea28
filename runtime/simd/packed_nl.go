package simd

import "sync"

// The non-uniform 4-bit encoding (quant's KindQ4NL, q4nl) has q4s's planes
// — a 4-bit Lo plane and one float16 scale d per group in Sup, no Hi or Sub
// plane — but quant q stands for the level levels[q] of a 16-entry int8
// table rather than q − 8. Its products are
//
//	y[r] = Σ_b xs[b]·(d·isum_b),  isum_b = Σ_{i∈b} levels[q_i]·xq_i
//
// over the row's blocks b of 32 weights (d the scale of b's group), the
// integer sums exact (|levels| ≤ 127, so |isum_b| < 2^19) and the float32
// operations evaluated left to right, each rounded: the Go kernels below
// follow that order bit for bit.

// DotPackedNLRows is DotPackedRows for a q4nl view: y[r] (+)= the product
// above for rows r < len(y) of w and one token (xq: 32·w.Blocks int8
// quants, zero beyond the row; xs: w.Blocks scales).
func DotPackedNLRows(y []float32, w *Packed, levels *[16]int8, xq []int8, xs []float32, add bool) {
	checkPackedNL(w, len(y), xq, xs)
	packedNLRowsGo(y, w, levels, xq, xs, add)
}

// MatPackedNL is the matrix-matrix form of DotPackedNLRows: y[t·ldy + r]
// (+)= row r of w times token t for r < rows, t < tokens, token t's
// activations at xq[t·xstride:] and xs[t·xsstride:].
func MatPackedNL(y []float32, ldy int, w *Packed, levels *[16]int8, xq []int8, xs []float32, xstride, xsstride, rows, tokens int, add bool) {
	if tokens == 0 || rows == 0 {
		return
	}
	checkPackedNL(w, rows, xq[(tokens-1)*xstride:], xs[(tokens-1)*xsstride:])
	if len(y) < (tokens-1)*ldy+rows {
		panic("simd: packed output shorter than the tile")
	}
	matPackedNLGo(y, ldy, w, levels, xq, xs, xstride, xsstride, rows, tokens, add)
}

func checkPackedNL(w *Packed, rows int, xq []int8, xs []float32) {
	n := 32 * w.Blocks
	if len(xq) < n || len(xs) < w.Blocks {
		panic("simd: packed activations shorter than the row")
	}
	ng := 0
	if w.Group > 0 {
		ng = (n + w.Group - 1) / w.Group
	}
	if w.Group%32 != 0 || w.Group <= 0 || w.LoBits != 4 || w.HiBits != 0 || w.SubRow != 0 || w.SupRow < ng {
		panic("simd: bad q4nl view")
	}
	if len(w.Lo) < rows*w.LoRow || len(w.Sup) < rows*w.SupRow || w.LoRow*2 != n {
		panic("simd: packed planes shorter than the rows")
	}
}

// dotPackedNLRowRef is the definition for row r and one token.
func dotPackedNLRowRef(w *Packed, levels *[16]int8, r int, xq []int8, xs []float32) float32 {
	var acc float32
	for b, isum := range w.blockSumsRef(r, xq, func(q uint8) int32 { return int32(levels[q]) }) {
		d := F16ToF32(w.Sup[r*w.SupRow+32*b/w.Group])
		acc += float32(xs[b] * float32(d*float32(isum)))
	}
	return acc
}

// unpackNLRow writes row r's levels (int8) into q (32·w.Blocks long): in
// a chunk of h weights, byte j of the Lo plane holds weights j and j + h/2.
func unpackNLRow(q []int8, w *Packed, levels *[16]int8, r int) {
	lo := w.Lo[r*w.LoRow : (r+1)*w.LoRow]
	for c0 := 0; c0 < len(q); c0 += 128 {
		s := min(128, len(q)-c0) / 2
		d := lo[c0/2 : c0/2+s]
		qa, qb := q[c0:c0+s], q[c0+s:c0+2*s]
		for j, v := range d {
			qa[j] = levels[v&15]
			qb[j] = levels[v>>4]
		}
	}
}

// nlScratch holds one unpacked row and the per-token sums of the tile
// path, pooled so that the kernels allocate nothing in steady state.
type nlScratch struct {
	q        []int8
	isum     []float32
	acc      []float32
	ones     []uint16
	onesOnce [1]float32
}

var nlScratchPool = sync.Pool{New: func() any { return new(nlScratch) }}

func packedNLRowsGo(y []float32, w *Packed, levels *[16]int8, xq []int8, xs []float32, add bool) {
	matPackedNLGo(y, 0, w, levels, xq, xs, 0, 0, len(y), 1, add)
}

// matPackedNLGo unpacks each row once into int8 levels and multiplies it
// with every token.
func matPackedNLGo(y []float32, ldy int, w *Packed, levels *[16]int8, xq []int8, xs []float32, xstride, xsstride, rows, tokens int, add bool) {
	sc := nlScratchPool.Get().(*nlScratch)
	defer nlScratchPool.Put(sc)
	n := 32 * w.Blocks
	if cap(sc.q) < n {
		sc.q = make([]int8, n)
	}
	q := sc.q[:n]
	if tokens >= nlTileTokens {
		matPackedNLTile(sc, q, y, ldy, w, levels, xq, xs, xstride, xsstride, rows, tokens, add)
		return
	}
	for r := range rows {
		unpackNLRow(q, w, levels, r)
		sup := w.Sup[r*w.SupRow : (r+1)*w.SupRow]
		for t := range tokens {
			x, s := xq[t*xstride:t*xstride+n], xs[t*xsstride:t*xsstride+w.Blocks]
			var acc float32
			for b := range w.Blocks {
				d := F16ToF32(sup[32*b/w.Group])
				acc += float32(s[b] * float32(d*float32(dot32(q[32*b:32*b+32], x[32*b:32*b+32]))))
			}
			i := t*ldy + r
			if add {
				acc += y[i]
			}
			y[i] = acc
		}
	}
}

// nlTileTokens is the token count from which matPackedNLGo takes the
// block-by-block path below.
const nlTileTokens = 2

// matPackedNLTile computes the same products as matPackedNLGo's token
// loop, bit for bit, with the integer sums from the q8 row kernels: for
// each row and block of 32, the tokens' activation blocks are the "rows"
// of a q8 product with unit scales and the row's 32 levels the
// "activations", which gives float32(Σ level·xq) for every token at once
// (an integer below 2²⁴, so exact in any summation order). The float
// combination then runs per token in block order as in the token loop.
func matPackedNLTile(sc *nlScratch, q []int8, y []float32, ldy int, w *Packed, levels *[16]int8, xq []int8, xs []float32, xstride, xsstride, rows, tokens int, add bool) {
	if cap(sc.isum) < tokens {
		sc.isum = make([]float32, tokens)
		sc.acc = make([]float32, tokens)
		sc.ones = make([]uint16, tokens)
	}
	isum, acc, ones := sc.isum[:tokens], sc.acc[:tokens], sc.ones[:tokens]
	for i := range ones {
		ones[i] = 0x3c00 // float16 1.0
	}
	sc.onesOnce[0] = 1
	for r := range rows {
		unpackNLRow(q, w, levels, r)
		sup := w.Sup[r*w.SupRow : (r+1)*w.SupRow]
		clear(acc)
		for b := range w.Blocks {
			dotQ8Rows(isum, xq[32*b:], ones, xstride, 1, q[32*b:32*b+32], sc.onesOnce[:], 32, false)
			d := F16ToF32(sup[32*b/w.Group])
			for t, v := range isum {
				acc[t] += float32(xs[t*xsstride+b] * float32(d*v))
			}
		}
		for t, a := range acc {
			i := t*ldy + r
			if add {
				a += y[i]
			}
			y[i] = a
		}
	}
}
