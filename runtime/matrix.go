package runtime

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime/simd"
)

// Tile sizes of the matrix kernels. A row block is the unit of work handed to
// a thread for matrix-vector products; for matrix-matrix products a tile is a
// row block × a token block, which the simd Mat kernels walk in register
// tiles (four tokens at a time for float weights, two for q8) so that a few
// activation rows stay in L1 while the block's weight rows (≤ 32 × 4·cols
// bytes) stay in L2.
const (
	rowBlock = 32
	tokBlock = 16
	// Products below this many multiply-adds run on the calling thread only:
	// waking workers costs more than the work.
	inlineWork = 1 << 15
	// decodeBlocks is about how many row blocks per thread a
	// matrix-vector product is split into.
	decodeBlocks = 8
)

// dense is one encoded matrix, held as typed views of its bytes (never a
// float32 copy unless the encoding is f32 itself).
type dense struct {
	rows, cols int
	enc        quant.Encoding
	data       []byte
	f32        []float32 // KindF32
	u16        []uint16  // KindF16, KindBF16
	q          []int8    // KindQ8 quants, rows·cols
	s          []uint16  // KindQ8 f16 scales, rows·ng
	ng         int
	// cq and ngq are the per-token width of the quantized activations and
	// their scales for KindQ8: cols and ng rounded up to whole blocks of
	// max(64, group) quants, zero-padded, so that every row but the last
	// can go through the whole-group VNNI kernels (see tile).
	cq, ngq int
	// pk views a packed low-bit matrix (quant KindQK, KindQ4S, KindQ4NL);
	// its activations are int8 in blocks of 32, cq = 32·pk.Blocks wide.
	pk *simd.Packed
	// nl: pk's quants index quant.NLLevels (KindQ4NL), which takes the
	// simd NL kernels.
	nl bool
	// qi is the KindQ8 matrix repacked for the interleaved kernels
	// (simd.Q8I), made at load where they run on this CPU: they compute
	// the q8 definition bit for bit with a fraction of the row-major
	// kernels' vector instructions once several tokens share the weights
	// (batched decode, prefill). It costs a heap copy of the quants.
	qi *simd.Q8I
	// qs is the same for a q4s matrix (simd.Q4SI), as small as its planes.
	qs *simd.Q4SI
	// qk is the same for a two-level q4 or q6 matrix (simd.QKI), its
	// scales and offsets widened to bytes (4.625 bits per weight against
	// 4.5 for q4).
	qk *simd.QKI
}

// interleaved reports whether d's products run on the interleaved kernels,
// which take row ranges starting at multiples of simd.Q8IRows.
func (d *dense) interleaved() bool { return d.qi != nil || d.qs != nil || d.qk != nil }

// packedView builds the simd view of a packed part's planes.
func packedView(p *WeightPart, rows, cols int) (*simd.Packed, error) {
	lo, hi, sub, sup, l, err := quant.PackedPlanes(p.Encoding, p.Data, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("part %q: %w", p.Role, err)
	}
	return &simd.Packed{
		Lo: lo, Hi: hi, Sub: sub, Sup: sup,
		LoRow: l.LoRow, HiRow: l.HiRow, SubRow: l.SubRow, SupRow: l.SupRow / 2,
		LoBits: l.LoBits, HiBits: l.HiBits, Group: p.Encoding.Group,
		Sym: p.Encoding.Kind == quant.KindQ4S || p.Encoding.Kind == quant.KindQ4NL, Blocks: l.PaddedCols / quant.PackBlock,
	}, nil
}

// quantized reports whether d's products use int8 activations.
func (d *dense) quantized() bool { return d.enc.Kind == quant.KindQ8 || d.pk != nil }

// actGroup is the activation quantization group of a quantized matrix.
func (d *dense) actGroup() int {
	if d.pk != nil {
		return quant.PackBlock
	}
	return d.enc.Group
}

func newDense(p *WeightPart) (*dense, error) {
	rows, cols, err := checkPart(p)
	if err != nil {
		return nil, err
	}
	d := &dense{rows: rows, cols: cols, enc: p.Encoding, data: p.Data}
	switch p.Encoding.Kind {
	case quant.KindF32:
		d.f32 = quant.F32View(p.Data)
	case quant.KindF16, quant.KindBF16:
		d.u16 = quant.U16View(p.Data)
	case quant.KindQ8:
		d.q, d.s, err = quant.Q8Planes(p.Data, rows, cols, p.Encoding.Group)
		if err != nil {
			return nil, fmt.Errorf("part %q: %w", p.Role, err)
		}
		d.ng = p.Encoding.Groups(cols)
		// A crafted file can hold NaN or Inf scales with valid checksums;
		// they would turn every product into NaN without a word. The scales
		// are a small fraction of the data, so checking them costs little.
		for i, b := range d.s {
			if b&0x7c00 == 0x7c00 {
				return nil, fmt.Errorf("part %q: q8 scale of row %d, group %d is not finite (0x%04x)", p.Role, i/d.ng, i%d.ng, b)
			}
		}
		blk := max(64, p.Encoding.Group)
		d.cq = (cols + blk - 1) / blk * blk
		d.ngq = d.cq / p.Encoding.Group
		if simd.Q8IFast(p.Encoding.Group) {
			// Filled by packInterleaved before the matrix is used.
			d.qi = simd.NewQ8I(rows, cols, p.Encoding.Group)
			adviseHuge(d.qi.W)
		}
	case quant.KindQK, quant.KindQ4S, quant.KindQ4NL:
		if d.pk, err = packedView(p, rows, cols); err != nil {
			return nil, err
		}
		d.nl = p.Encoding.Kind == quant.KindQ4NL
		// As for q8: a non-finite float16 scale would silently turn the
		// products into NaN.
		for i, b := range d.pk.Sup {
			if b&0x7c00 == 0x7c00 {
				return nil, fmt.Errorf("part %q: %v scale %d of row %d is not finite (0x%04x)", p.Role, p.Encoding, i%d.pk.SupRow, i/d.pk.SupRow, b)
			}
		}
		d.ng = (cols + quant.PackBlock - 1) / quant.PackBlock
		d.cq, d.ngq = quant.PackBlock*d.pk.Blocks, d.pk.Blocks
		switch {
		case d.nl:
		case simd.Q4SIFast(d.pk):
			// Filled by packInterleaved before the matrix is used.
			d.qs = simd.NewQ4SI(d.pk, rows)
			adviseHuge(d.qs.W)
		case simd.QKIFast(d.pk):
			d.qk = simd.NewQKI(d.pk, rows)
			adviseHuge(d.qk.W)
		}
	}
	return d, nil
}

// acts are the activations of one product: T rows of cols floats, plus their
// q8 quantization when the q8 fast path is used (T rows of dense.cq quants
// and dense.ngq scales, zero beyond cols and ng).
type acts struct {
	x     []float32
	xq    []int8
	xs    []float32
	xsum  []int32 // packed weights: the sum of each block of 32 quants
	xe    []int32 // interleaved q8 weights: −128·Σ of each group's quants (simd.Q8Excess)
	useQ8 bool
}

// tile computes Y[t, r] (+)= W[r,:]·X[t,:] for r in [r0, r1), t in [t0, t1).
// Everything goes through the simd Mat kernels: register tiles of four rows
// × four tokens (float) or × two tokens (q8), the Rows kernels for the rest
// and for decode (one token), which stream the rows four at a time.
func (d *dense) tile(Y []float32, ldy int, a *acts, r0, r1, t0, t1 int, add bool) {
	c := d.cols
	rows, toks := r1-r0, t1-t0
	y := Y[t0*ldy+r0:]
	x := a.x[t0*c : t1*c]
	switch d.enc.Kind {
	case quant.KindF32:
		simd.MatF32(y, ldy, d.f32[r0*c:r1*c], c, x, c, rows, toks, c, add)
	case quant.KindF16:
		simd.MatF16(y, ldy, d.u16[r0*c:r1*c], c, x, c, rows, toks, c, add)
	case quant.KindBF16:
		simd.MatBF16(y, ldy, d.u16[r0*c:r1*c], c, x, c, rows, toks, c, add)
	case quant.KindQK, quant.KindQ4S, quant.KindQ4NL:
		if a.useQ8 && d.nl {
			v := d.pk.Rows(r0, r1)
			simd.MatPackedNL(y, ldy, &v, &quant.NLLevels, a.xq[t0*d.cq:], a.xs[t0*d.ngq:], d.cq, d.ngq, rows, toks, add)
			return
		}
		if a.useQ8 && d.qs != nil {
			simd.MatQ4SI(y, ldy, d.qs, r0, r1, a.xq[t0*d.cq:], a.xs[t0*d.ngq:], a.xsum[t0*d.ngq:], d.cq, d.ngq, toks, add)
			return
		}
		if a.useQ8 && d.qk != nil {
			simd.MatQKI(y, ldy, d.qk, r0, r1, a.xq[t0*d.cq:], a.xs[t0*d.ngq:], a.xsum[t0*d.ngq:], d.cq, d.ngq, toks, add)
			return
		}
		if a.useQ8 {
			v := d.pk.Rows(r0, r1)
			simd.MatPacked(y, ldy, &v, a.xq[t0*d.cq:], a.xs[t0*d.ngq:], a.xsum[t0*d.ngq:], d.cq, d.ngq, rows, toks, add)
			return
		}
		// Exact path: the decoded rows times float32 activations.
		w := make([]float32, rows*c)
		for r := r0; r < r1; r++ {
			d.row(w[(r-r0)*c:(r-r0+1)*c], r)
		}
		simd.MatF32(y, ldy, w, c, x, c, rows, toks, c, add)
	case quant.KindQ8:
		g, ng := d.enc.Group, d.ng
		if a.useQ8 {
			d.tileQ8(y, ldy, a, r0, r1, t0, t1, add)
			return
		}
		for t := t0; t < t1; t++ {
			y := Y[t*ldy+r0 : t*ldy+r1]
			x := a.x[t*c : (t+1)*c]
			for r := r0; r < r1; r++ {
				store1(y, r-r0, dotQ8F32(d.q[r*c:(r+1)*c], d.s[r*ng:(r+1)*ng], x, g), add)
			}
		}
	}
}

// tokensIndependent reports whether tile gives each token of a tile
// exactly the result a one-token tile gives it: q8 weights, whose matrix
// kernel keeps the row kernel's order of operations (simd.MatQ8; the
// float-activation path runs token by token anyway). The float and packed
// register tiles sum in another order than their row kernels.
func (d *dense) tokensIndependent() bool {
	return d.enc.Kind == quant.KindQ8 || d.qs != nil || d.qk != nil
}

// tileQ8 is tile for q8 weights with quantized activations. When a row
// is not whole blocks of quants (cq > cols: a low-rank factor's rank, say),
// the activations are zero-padded to cq and each row is read cq quants
// long, running into the next row's first quants and scales: they meet
// zero activations, so the sums are exact, and the kernels see whole
// groups. The last rows, which would run past the end of the matrix (one
// row, or more when cols is much shorter than cq), take the exact-length
// path.
func (d *dense) tileQ8(y []float32, ldy int, a *acts, r0, r1, t0, t1 int, add bool) {
	c, ng, g := d.cols, d.ng, d.enc.Group
	cq, ngq := d.cq, d.ngq
	toks := t1 - t0
	xq, xs := a.xq[t0*cq:t1*cq], a.xs[t0*ngq:t1*ngq]
	if d.qi != nil {
		simd.MatQ8I(y, ldy, d.qi, r0, r1, xq, xs, a.xe[t0*ngq:t1*ngq], cq, ngq, toks, add)
		return
	}
	if cq == c {
		simd.MatQ8(y, ldy, d.q[r0*c:r1*c], d.s[r0*ng:r1*ng], c, ng, xq, xs, cq, ngq, r1-r0, toks, c, g, add)
		return
	}
	// Rows r < rp can be read cq quants and ngq scales long without
	// leaving the matrix.
	rp := min(r1, (len(d.q)-cq)/c+1, (len(d.s)-ngq)/ng+1)
	if len(d.q) < cq || len(d.s) < ngq {
		rp = r0
	}
	rp = max(rp, r0)
	if rp > r0 {
		simd.MatQ8(y, ldy, d.q[r0*c:(rp-1)*c+cq], d.s[r0*ng:(rp-1)*ng+ngq], c, ng, xq, xs, cq, ngq, rp-r0, toks, cq, g, add)
	}
	if rp < r1 {
		simd.MatQ8(y[rp-r0:], ldy, d.q[rp*c:r1*c], d.s[rp*ng:r1*ng], c, ng, xq, xs, cq, ngq, r1-rp, toks, c, g, add)
	}
}

func store1(y []float32, r int, v float32, add bool) {
	if add {
		v += y[r]
	}
	y[r] = v
}

// dotQ8F32 is the q8 product against unrounded float32 activations:
// Σ_g scale_g · Σ_{i∈g} q_i·x_i. It reads the encoded bytes directly (no
// dequantized copy) and is the reference the q8 fast path is measured against.
func dotQ8F32(q []int8, s []uint16, x []float32, g int) float32 {
	x = x[:len(q)]
	var sum float32
	for gi := 0; gi*g < len(q); gi++ {
		lo, hi := gi*g, min((gi+1)*g, len(q))
		var a0, a1 float32
		i := lo
		for ; i+2 <= hi; i += 2 {
			a0 += float32(q[i]) * x[i]
			a1 += float32(q[i+1]) * x[i+1]
		}
		if i < hi {
			a0 += float32(q[i]) * x[i]
		}
		sum += quant.HalfToFloat(s[gi]) * (a0 + a1)
	}
	return sum
}

// row widens row r into dst[:cols].
func (d *dense) row(dst []float32, r int) {
	decodeRow(dst, d.data, d.enc, d.rows, d.cols, r)
}

// Matrix is a linear map y = W x evaluated directly from encoded weights:
// dense W, low-rank W ≈ A·B (y = A(Bx)) or LoRC W ≈ Q + A·B (y = Qx + A(Bx)).
//
// With q8 parts the default path quantizes the activations too (per group of
// the weight's group size, scale amax/127, round to nearest) and multiplies
// int8 by int8; this adds an activation rounding error of up to half a
// quantization step per element (relative ≈ 0.4% of the group's largest
// |x|) on top of the weight quantization. Options.ExactQ8 selects the
// float32-activation path, which has only the weight error.
type Matrix struct {
	rows, cols int
	kind       format.Kind
	w, a, b    *dense // w for dense/lorc; a [rows,k], b [k,cols] for lowrank/lorc
	rank       int
}

// NewMatrix builds a Matrix over a 2-D weight's encoded bytes without copying
// them (except on big-endian hosts or for misaligned in-memory bytes, where
// quant's views decode a copy).
func NewMatrix(w *Weight) (*Matrix, error) {
	m, err := newMatrix(w)
	if err != nil {
		return nil, err
	}
	packInterleaved(m.denses(), 1, nil)
	return m, nil
}

// denses lists m's encoded matrices.
func (m *Matrix) denses() []*dense {
	var ds []*dense
	for _, d := range []*dense{m.w, m.a, m.b} {
		if d != nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// packInterleaved fills the interleaved copies (dense.qi, qs, qk) of the
// matrices among ds on up to threads goroutines, a run of blocks at a time,
// then hands each matrix's file bytes to drop (nil: keep them), so that
// resident memory counts the copy only.
func packInterleaved(ds []*dense, threads int, drop func([]byte)) {
	type item struct {
		d      *dense
		b0, b1 int
	}
	const run = 64 // blocks per item: 1024 rows
	var items []item
	for _, d := range ds {
		n := 0
		switch {
		case d.qi != nil:
			n = d.qi.Blocks()
		case d.qs != nil:
			n = d.qs.RowBlocks()
		case d.qk != nil:
			n = d.qk.RowBlocks()
		}
		for b := 0; b < n; b += run {
			items = append(items, item{d, b, min(b+run, n)})
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(threads, 1), len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(items); i = int(next.Add(1) - 1) {
				it := items[i]
				// The quants (q8) or lo plane (q4s, q4, q6) come first in the
				// part's bytes (format/SPEC.md); dropping each run's rows
				// as soon as they are copied keeps the peak near one copy.
				rowBytes := it.d.cols
				switch {
				case it.d.qi != nil:
					it.d.qi.Pack(it.d.q, it.d.s, it.b0, it.b1)
				case it.d.qs != nil:
					it.d.qs.Pack(it.d.pk, it.b0, it.b1)
					rowBytes = it.d.pk.LoRow
				default:
					it.d.qk.Pack(it.d.pk, it.b0, it.b1)
					rowBytes = it.d.pk.LoRow
				}
				if lo, hi := it.b0*simd.Q8IRows*rowBytes, min(it.b1*simd.Q8IRows, it.d.rows)*rowBytes; drop != nil && hi <= len(it.d.data) {
					drop(it.d.data[lo:hi])
				}
			}
		}()
	}
	wg.Wait()
	if drop != nil {
		for _, d := range ds {
			if d.interleaved() {
				drop(d.data) // the scales plane, and the quants' page edges
			}
		}
	}
}

// newMatrix is NewMatrix without filling the interleaved q8 copies, for
// loaders that fill all of a model's at once (packInterleaved).
func newMatrix(w *Weight) (*Matrix, error) {
	if len(w.Shape) != 2 {
		return nil, fmt.Errorf("tensor %s: shape %v is not 2-D", w.Name, w.Shape)
	}
	m := &Matrix{rows: int(w.Shape[0]), cols: int(w.Shape[1]), kind: w.Kind}
	if m.rows <= 0 || m.cols <= 0 {
		return nil, fmt.Errorf("tensor %s: empty shape %v", w.Name, w.Shape)
	}
	get := func(role format.Role, rows, cols int) (*dense, error) {
		p, ok := w.part(role)
		if !ok {
			return nil, fmt.Errorf("tensor %s (%s): missing part %q", w.Name, w.Kind, role)
		}
		d, err := newDense(p)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", w.Name, err)
		}
		if len(p.Shape) != 2 || (rows >= 0 && d.rows != rows) || (cols >= 0 && d.cols != cols) {
			return nil, fmt.Errorf("tensor %s: part %q has shape %v, want [%d, %d] (-1 = any)", w.Name, role, p.Shape, rows, cols)
		}
		return d, nil
	}
	var err error
	switch w.Kind {
	case format.KindDense, "":
		m.kind = format.KindDense
		m.w, err = get(format.RoleW, m.rows, m.cols)
	case format.KindLowRank, format.KindLoRC:
		if w.Kind == format.KindLoRC {
			if m.w, err = get(format.RoleW, m.rows, m.cols); err != nil {
				return nil, err
			}
		}
		if m.a, err = get(format.RoleA, m.rows, -1); err != nil {
			return nil, err
		}
		m.rank = m.a.cols
		m.b, err = get(format.RoleB, m.rank, m.cols)
	default:
		err = fmt.Errorf("tensor %s: unknown kind %q", w.Name, w.Kind)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Rows is the output size.
func (m *Matrix) Rows() int { return m.rows }

// Cols is the input size.
func (m *Matrix) Cols() int { return m.cols }

// Bytes is the encoded size of the weights the matrix reads.
func (m *Matrix) Bytes() int64 {
	var n int64
	for _, d := range []*dense{m.w, m.a, m.b} {
		if d != nil {
			n += int64(len(d.data))
		}
	}
	return n
}

// MulVec computes y = W x on the calling goroutine. It allocates scratch; the
// model graphs use the pooled, allocation-free path instead.
func (m *Matrix) MulVec(y, x []float32) { m.MulMat(y, x, 1) }

// MulMat computes Y = X Wᵀ for T rows of X ([T, cols]) into Y ([T, rows]) on
// the calling goroutine.
func (m *Matrix) MulMat(Y, X []float32, T int) {
	e := newExec(newPool(1), false)
	e.mul(m, Y, X, T, false)
}

// row widens row r of W into dst[:cols], using scr (≥ rank+cols floats) for
// low-rank parts.
func (m *Matrix) row(dst []float32, r int, scr []float32) {
	dst = dst[:m.cols]
	if m.w != nil {
		m.w.row(dst, r)
	} else {
		clear(dst)
	}
	if m.a == nil {
		return
	}
	ar := scr[:m.rank]
	br := scr[m.rank : m.rank+m.cols]
	m.a.row(ar, r)
	for j, aj := range ar {
		if aj == 0 {
			continue
		}
		m.b.row(br, j)
		for i, v := range br {
			dst[i] += aj * v
		}
	}
}

// exec runs matrix products on a pool with reusable scratch. One exec
// belongs to one session (or one call) and is not safe for concurrent use.
type exec struct {
	p       *pool
	t       task
	j       matJob
	exactQ8 bool
	// perToken makes every tile whose kernels are not token-independent
	// (see dense.tokensIndependent) run token by token through the
	// one-token (decode) kernels: a Batch in exact mode, whose results
	// then equal Session.Decode's bit for bit. The tiles still cover
	// several tokens, so each row block is read from memory once and
	// from cache for the other tokens; q8 tiles need no such care and
	// keep the register-tiled kernel's arithmetic per weight byte.
	perToken bool
	xq       []int8
	xs       []float32
	xsum     []int32
	xe       []int32
	tmp      []float32
	// gen counts the writes of xq/xs (quantizations and reallocations); a
	// q8Acts handle is valid only while gen is what it was when made.
	gen uint64
}

// q8Acts is a handle to the activation quantization that an exec's
// scratch (xq, xs) holds. A product that quantizes its input X fills the
// handle it is given; a later product of the same X may pass the handle
// back to skip quantizing again. Passing it asserts that X is the input the
// handle was made from and has not been written since, which only the code
// that made it can know: handles are local variables of one call (one
// Matrix's parts, or mulShared's matrices) and never outlive it, so a new
// graph step always quantizes afresh. The exec checks everything else:
// that nothing has been quantized into the scratch since (gen), and that
// the token count, group size and padded width match.
type q8Acts struct {
	gen             uint64 // exec.gen when made; 0: holds nothing
	T, group, width int
	sums            bool // xsum holds the block sums too (packed weights)
	excess          bool // xe holds the group excesses too (interleaved q8)
}

func newExec(p *pool, exactQ8 bool) *exec {
	return &exec{p: p, exactQ8: exactQ8}
}

// reserve grows the scratch for T-row products of any matrix in ms so that
// later products allocate nothing.
func (e *exec) reserve(T int, ms ...*Matrix) {
	for _, m := range ms {
		if m == nil {
			continue
		}
		for _, d := range []*dense{m.w, m.a, m.b} {
			if d == nil {
				continue
			}
			if cap(e.xq) < T*d.cq || cap(e.xs) < T*max(d.ngq, 1) || d.pk != nil && cap(e.xsum) < T*d.ngq ||
				d.qi != nil && cap(e.xe) < T*d.ngq {
				e.gen++ // new buffers: no handle's quantization survives
			}
			e.xq = grow(e.xq, T*d.cq)
			e.xs = grow(e.xs, T*max(d.ngq, 1))
			if d.pk != nil {
				e.xsum = grow(e.xsum, T*d.ngq)
			}
			if d.qi != nil {
				e.xe = grow(e.xe, T*d.ngq)
			}
		}
		if m.a != nil {
			e.tmp = grow(e.tmp, T*m.rank)
		}
	}
}

func grow[S ~[]E, E any](s S, n int) S {
	if cap(s) >= n {
		return s[:n]
	}
	return make(S, n)
}

// mul computes Y (+)= X Wᵀ for T rows; Y is [T, rows], X is [T, cols].
func (e *exec) mul(m *Matrix, Y, X []float32, T int, add bool) {
	var h q8Acts
	e.mulWith(m, Y, X, T, add, &h)
}

// mulShared computes Ys[i] = X msᵢᵀ for up to maxParts matrices that read
// the same X (q, k and v; gate and up). Plain dense matrices of one encoding
// run as a single pool dispatch; anything else falls back to one product
// after another, which share one quantization of X where their group sizes
// allow (X is not written in between: the products write only Ys).
func (e *exec) mulShared(ms []*Matrix, Ys [][]float32, X []float32, T int) {
	fuse := len(ms) <= maxParts
	var ds [maxParts]*dense
	for i, m := range ms {
		if !fuse {
			break
		}
		d := m.w
		// Packed matrices of different bit widths share one activation
		// quantization (blocks of 32), so they fuse too.
		fuse = m.a == nil && d != nil && d.cols == ms[0].w.cols &&
			(d.enc.Kind == ms[0].w.enc.Kind && d.enc.Group == ms[0].w.enc.Group ||
				d.pk != nil && ms[0].w.pk != nil)
		ds[i] = d
	}
	if !fuse {
		var h q8Acts
		for i, m := range ms {
			e.mulWith(m, Ys[i], X, T, false, &h)
		}
		return
	}
	e.reserve(T, ms...)
	e.denseN(ds[:len(ms)], Ys, X, T, false, nil)
}

// mulWith is mul with the caller's handle h on X's quantization (see
// q8Acts): it reuses it when still valid and leaves in it what it made.
func (e *exec) mulWith(m *Matrix, Y, X []float32, T int, add bool, h *q8Acts) {
	e.reserve(T, m)
	if m.w != nil {
		e.denseN([]*dense{m.w}, [][]float32{Y}, X, T, add, h)
		add = true
	}
	if m.a != nil {
		tmp := e.tmp[:T*m.rank]
		e.denseN([]*dense{m.b}, [][]float32{tmp}, X, T, false, h)
		// tmp is a new input: no handle (quantizing it invalidates h).
		e.denseN([]*dense{m.a}, [][]float32{Y}, tmp, T, add, nil)
	}
}

// quantize fills the q8 activation scratch with the quantization of X for
// d's group size, each token zero-padded to d.cq quants and d.ngq scales,
// unless h is a valid handle on that very quantization. h (may be nil)
// receives the handle of what the scratch holds afterwards.
func (e *exec) quantize(X []float32, T int, d *dense, h *q8Acts) {
	cols, ng, g, cq, ngq := d.cols, d.ng, d.actGroup(), d.cq, d.ngq
	sums, excess := d.pk != nil, d.qi != nil
	want := q8Acts{gen: e.gen, T: T, group: g, width: cq, sums: sums, excess: excess}
	if h != nil && h.gen != 0 && *h == want {
		return
	}
	for t := 0; t < T; t++ {
		xq, xs := e.xq[t*cq:(t+1)*cq], e.xs[t*ngq:(t+1)*ngq]
		simd.QuantizeQ8(xq[:cols], xs[:ng], X[t*cols:(t+1)*cols], g)
		clear(xq[cols:])
		clear(xs[ng:])
		if sums {
			simd.SumQ8Blocks(e.xsum[t*ngq:(t+1)*ngq], xq)
		}
		if excess {
			simd.Q8Excess(e.xe[t*ngq:(t+1)*ngq], xq, g)
		}
	}
	e.gen++
	if h != nil {
		*h = want
		h.gen = e.gen
	}
}

// denseN runs encoded matrices that share the input X (same cols, same
// encoding) as one pool dispatch: the row blocks of all of them form one
// list of work items, so the threads join once instead of once per matrix.
// ds holds at most maxParts matrices.
//
// h is the caller's handle on X's quantization (nil: none), see quantize.
func (e *exec) denseN(ds []*dense, Ys [][]float32, X []float32, T int, add bool, h *q8Acts) {
	j := &e.j
	d0 := ds[0]
	j.np = len(ds)
	j.T, j.add = T, add
	j.perToken = e.perToken
	j.a = acts{x: X[:T*d0.cols]}
	if d0.quantized() && !e.exactQ8 {
		e.quantize(X, T, d0, h)
		j.a.useQ8 = true
		j.a.xq = e.xq[:T*d0.cq]
		j.a.xs = e.xs[:T*d0.ngq]
		if d0.pk != nil {
			j.a.xsum = e.xsum[:T*d0.ngq]
		}
		if d0.qi != nil {
			j.a.xe = e.xe[:T*d0.ngq]
		}
	}
	j.nrb = 0
	work := 0
	for i, d := range ds {
		rows := rowBlock
		if T == 1 {
			// A matrix-vector product has no activation reuse to keep in
			// cache, so hand out longer contiguous runs of rows (fewer
			// claims, longer prefetch streams), still about decodeBlocks
			// per thread for balance.
			rows = max(rowBlock, (d.rows/(decodeBlocks*e.p.threads)+3)&^3)
			if d.interleaved() {
				rows = (rows + simd.Q8IRows - 1) &^ (simd.Q8IRows - 1) // whole interleaved blocks
			}
		}
		nrb := (d.rows + rows - 1) / rows
		j.parts[i] = matPart{d: d, Y: Ys[i], rb0: j.nrb, rows: rows}
		j.nrb += nrb
		work += d.rows * d.cols * T
	}
	j.tb = min(T, tokBlock)
	n := j.nrb * ((T + j.tb - 1) / j.tb)
	if e.p.threads == 1 || work < inlineWork {
		for b := 0; b < n; b++ {
			j.run(b, e.p.threads-1)
		}
	} else {
		e.p.run(&e.t, j, n)
	}
	for i := range j.np {
		j.parts[i] = matPart{}
	}
	j.a = acts{}
}

// maxParts is the most matrices one fused dispatch covers (q, k and v).
const maxParts = 3

// matPart is one matrix of a matJob; its row blocks are numbered from rb0.
type matPart struct {
	d    *dense
	Y    []float32
	rb0  int
	rows int // rows per block
}

// matJob is one or more products with the same input, split into
// row-block × token-block tiles.
type matJob struct {
	parts [maxParts]matPart
	np    int
	T     int
	a     acts
	add   bool
	tb    int // tokens per tile
	nrb   int // row blocks of all parts
	// perToken: see exec.perToken.
	perToken bool
}

func (j *matJob) run(block, _ int) {
	rb, tb := block%j.nrb, block/j.nrb
	p := &j.parts[0]
	for i := 1; i < j.np && rb >= j.parts[i].rb0; i++ {
		p = &j.parts[i]
	}
	r0 := (rb - p.rb0) * p.rows
	r1 := min(r0+p.rows, p.d.rows)
	t0 := tb * j.tb
	t1 := min(t0+j.tb, j.T)
	if j.perToken && !p.d.tokensIndependent() {
		for t := t0; t < t1; t++ {
			p.d.tile(p.Y, p.d.rows, &j.a, r0, r1, t, t+1, j.add)
		}
		return
	}
	p.d.tile(p.Y, p.d.rows, &j.a, r0, r1, t0, t1, j.add)
}
