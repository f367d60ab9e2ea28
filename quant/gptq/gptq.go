package gptq

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
)

// Defaults of Options.
const (
	DefaultPercDamp  = 0.01
	DefaultBlockSize = 128
	DefaultRowBlock  = 32
)

// Options tune the pass. The zero value uses the defaults.
type Options struct {
	// PercDamp is λ/mean(diag H): λ is added to H's diagonal before
	// factoring (0 = DefaultPercDamp; negative = no damping).
	PercDamp float64
	// DampDiag adds DampDiag·H_ii to each diagonal entry besides
	// PercDamp's λ: up to a scale, H moves toward its own diagonal
	// ((1−β)·H + β·diag H with β = DampDiag/(1+DampDiag)), which shrinks
	// the correlations a short calibration estimates poorly while keeping
	// each input channel's energy, where λ alone swamps the weak channels
	// and leaves the strong ones untouched. 0 = none.
	DampDiag float64
	// BlockSize is the number of columns rounded between the lazy updates
	// of the columns after them (0 = DefaultBlockSize). Without ActOrder
	// it is rounded up to a whole number of parameter spans, so that a
	// span's weights are all current when its parameters are chosen.
	BlockSize int
	// ActOrder rounds columns in order of decreasing diag H, with static
	// groups (parameters chosen from the original weights).
	ActOrder bool
	// RefitGroups (two-level encodings, without ActOrder) fits each group's
	// 6-bit scale and offset when the pass reaches the group, from its
	// weights as the error feedback left them, under the super-block's
	// float16 pair chosen when the super-block began; without it every
	// group of a super-block is fitted when the super-block begins.
	RefitGroups bool
	// Refine, when positive, runs up to that many passes of exact
	// coordinate descent on the pass's own objective tr(E·Hd·Eᵀ) (Hd the
	// damped H) after the greedy pass: each code, then each group's stored
	// scale and offset, moves to the grid point that lowers it most (see
	// refine.go). The objective never rises. A shared Factor must have
	// been made with the same Refine > 0 (it then keeps Hd).
	Refine int
	// RowBlock is the number of rows one worker holds (0 = DefaultRowBlock).
	RowBlock int
	// Threads bounds the workers over row blocks (0 = all CPUs).
	Threads int
	// Importance, when not nil, holds cols non-negative weights passed to
	// the packed encoders' scale search (quant.EncodeWeighted).
	Importance []float32
	// Dequant, when not nil (rows·cols), receives the values the pass
	// rounded to, which decoding the output gives back.
	Dequant []float32
	// Factor, when not nil, is used instead of factoring h (which may then
	// be nil): matrices reading the same input (q, k, v) share one. It must
	// come from NewFactor with the same H, PercDamp and ActOrder.
	Factor *Factor
	// Cross, when not nil with AsymAlpha ≠ 0, is D = (X − X̃)·X̃ᵀ
	// (cols×cols, full, row-major), H being X̃X̃ᵀ of the compressed
	// model's inputs X̃ and X the uncompressed model's inputs over the
	// same tokens: the pass then rounds AsymmetricTarget(w, …, AsymAlpha)
	// instead of w, fitting the uncompressed model's output W·X from X̃
	// (asymmetric calibration, GPTAQ). Dequant and the error still refer
	// to the rounded values; the caller compares them with w.
	Cross     []float64
	AsymAlpha float64
}

// Factor is what the pass derives from H alone: the column order, the dead
// columns and the upper Cholesky factor of the damped H⁻¹.
type Factor struct {
	n        int
	actOrder bool
	dampDiag float64
	perm     []int     // position j rounds column perm[j]
	dead     []bool    // by original column: no input energy, weight zeroed
	u        []float64 // upper Cholesky factor of H⁻¹ (permuted), n×n, zeros below
	hd       []float64 // Refine: the damped H in original order, n×n (nil otherwise)
}

// NewFactor factors h (n×n, upper triangle read) under opt's PercDamp and
// ActOrder, on opt.Threads threads (0: all CPUs).
func NewFactor(h []float64, n int, opt Options) (*Factor, error) {
	if len(h) != n*n {
		return nil, fmt.Errorf("gptq: H has %d entries, want %d", len(h), n*n)
	}
	if opt.PercDamp == 0 {
		opt.PercDamp = DefaultPercDamp
	}
	p := &pass{cols: n, opt: opt}
	if err := p.factor(h); err != nil {
		return nil, fmt.Errorf("gptq: %w", err)
	}
	return &Factor{n: n, actOrder: opt.ActOrder, dampDiag: opt.DampDiag, perm: p.perm, dead: p.dead, u: p.u, hd: p.hd}, nil
}

// Quantize writes w ([rows, cols] row-major, not modified) into dst
// (exactly e.Size(rows, cols) bytes) in encoding e, rounding with error
// feedback under h, the cols×cols matrix XXᵀ of the inputs (row-major;
// only its upper triangle, column ≥ row, is read, as lowrank.Stats keeps
// it). e must be q8 or a packed encoding.
func Quantize(ctx context.Context, e quant.Encoding, dst []byte, w []float32, rows, cols int, h []float64, opt Options) error {
	if e.Kind != quant.KindQ8 && !e.IsPacked() {
		return fmt.Errorf("gptq: encoding %v has no rounding to improve (want q8 or a packed encoding)", e)
	}
	size, err := e.Size(rows, cols)
	if err != nil {
		return fmt.Errorf("gptq %v [%d, %d]: %w", e, rows, cols, err)
	}
	switch {
	case int64(len(dst)) != size:
		return fmt.Errorf("gptq %v [%d, %d]: have %d output bytes, want %d", e, rows, cols, len(dst), size)
	case len(w) != rows*cols:
		return fmt.Errorf("gptq %v [%d, %d]: have %d weights", e, rows, cols, len(w))
	case opt.Factor == nil && len(h) != cols*cols:
		return fmt.Errorf("gptq %v [%d, %d]: H has %d entries, want %d", e, rows, cols, len(h), cols*cols)
	case opt.Importance != nil && len(opt.Importance) != cols:
		return fmt.Errorf("gptq %v [%d, %d]: %d importances, want %d", e, rows, cols, len(opt.Importance), cols)
	case opt.Dequant != nil && len(opt.Dequant) != rows*cols:
		return fmt.Errorf("gptq %v [%d, %d]: dequant buffer of %d", e, rows, cols, len(opt.Dequant))
	}
	for i, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("gptq %v [%d, %d]: row %d column %d: %w %v", e, rows, cols, i/cols, i%cols, quant.ErrNonFinite, v)
		}
	}
	if opt.PercDamp == 0 {
		opt.PercDamp = DefaultPercDamp
	}
	if opt.BlockSize <= 0 {
		opt.BlockSize = DefaultBlockSize
	}
	if opt.RowBlock <= 0 {
		opt.RowBlock = DefaultRowBlock
	}
	if opt.Threads <= 0 {
		opt.Threads = runtime.GOMAXPROCS(0)
	}
	p := &pass{e: e, dst: dst, w: w, rows: rows, cols: cols, opt: opt}
	p.span = e.Group
	if e.Kind == quant.KindQK {
		p.span = quant.SuperBlock
	}
	if !opt.ActOrder {
		p.opt.BlockSize = (opt.BlockSize + p.span - 1) / p.span * p.span
	}
	if f := opt.Factor; f != nil {
		if f.n != cols || f.actOrder != opt.ActOrder || f.dampDiag != opt.DampDiag || (opt.Refine > 0 && f.hd == nil) {
			return fmt.Errorf("gptq %v [%d, %d]: factor of %d columns (act order %v, for refinement %v) given", e, rows, cols, f.n, f.actOrder, f.hd != nil)
		}
		p.perm, p.dead, p.u, p.hd = f.perm, f.dead, f.u, f.hd
	} else if err := p.factor(h); err != nil {
		return fmt.Errorf("gptq %v [%d, %d]: %w", e, rows, cols, err)
	}
	if opt.Cross != nil && opt.AsymAlpha != 0 {
		f := &Factor{n: cols, actOrder: opt.ActOrder, dampDiag: opt.DampDiag, perm: p.perm, dead: p.dead, u: p.u}
		target, err := AsymmetricTarget(w, rows, cols, opt.Cross, f, opt.AsymAlpha, opt.Threads)
		if err != nil {
			return fmt.Errorf("gptq %v [%d, %d]: %w", e, rows, cols, err)
		}
		for i, v := range target {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("gptq %v [%d, %d]: asymmetric target at row %d column %d: %w %v", e, rows, cols, i/cols, i%cols, quant.ErrNonFinite, v)
			}
		}
		p.w = target
	}
	clear(dst)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.Threads)
	for r0 := 0; r0 < rows; r0 += p.opt.RowBlock {
		r1 := min(r0+p.opt.RowBlock, rows)
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			return p.rowBlock(gctx, r0, r1)
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("gptq %v [%d, %d]: %w", e, rows, cols, err)
	}
	return nil
}

// pass is the state shared by the row-block workers (read-only once
// factor has run).
type pass struct {
	e          quant.Encoding
	dst        []byte
	w          []float32
	rows, cols int
	opt        Options
	span       int       // columns whose parameters are chosen together
	perm       []int     // position j rounds column perm[j]
	dead       []bool    // by original column: no input energy, weight zeroed
	u          []float64 // upper Cholesky factor of H⁻¹ (permuted), cols×cols, zeros below
	hd         []float64 // Refine: damped H, original order, cols×cols
}

// factor builds perm, dead and u from h.
func (p *pass) factor(h []float64) error {
	n := p.cols
	at := func(i, j int) float64 {
		if i > j {
			i, j = j, i
		}
		return h[i*n+j]
	}
	p.dead = make([]bool, n)
	diag := make([]float64, n)
	var mean float64
	for i := range n {
		d := at(i, i)
		if math.IsNaN(d) || d < 0 || math.IsInf(d, 0) {
			return fmt.Errorf("H diagonal %d is %v", i, d)
		}
		if d == 0 {
			p.dead[i], d = true, 1
		}
		diag[i] = d
		mean += d
	}
	mean /= float64(max(n, 1))
	p.perm = make([]int, n)
	for i := range p.perm {
		p.perm[i] = i
	}
	if p.opt.ActOrder {
		sort.SliceStable(p.perm, func(a, b int) bool { return diag[p.perm[a]] > diag[p.perm[b]] })
	}
	damp := max(p.opt.PercDamp, 0) * mean
	dd := max(p.opt.DampDiag, 0)
	threads := p.opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	a := make([]float64, n*n)
	for try := 0; ; try++ {
		for i := range n {
			pi := p.perm[i]
			for j := i + 1; j < n; j++ {
				pj := p.perm[j]
				if p.dead[pi] || p.dead[pj] {
					a[i*n+j] = 0
				} else {
					a[i*n+j] = at(pi, pj)
				}
			}
			a[i*n+i] = diag[pi]*(1+dd) + damp
		}
		// a = R·Rᵀ (R upper, from the last column) gives
		// H⁻¹ = R⁻ᵀR⁻¹ = UᵀU with U = R⁻¹: the upper Cholesky factor
		// of H⁻¹ without forming H⁻¹.
		if lowrank.InverseCholeskyUpper(a, n, threads) {
			break
		}
		if try == 3 {
			return fmt.Errorf("H is not positive definite even with damping %g", damp)
		}
		damp = 10 * max(damp, 1e-8*mean, 1e-12)
	}
	if p.opt.Refine > 0 {
		// The objective refinement lowers: the matrix just factored, in
		// the stored column order, both triangles.
		p.hd = make([]float64, n*n)
		for i := range n {
			for j := i + 1; j < n; j++ {
				if !p.dead[i] && !p.dead[j] {
					v := at(i, j)
					p.hd[i*n+j], p.hd[j*n+i] = v, v
				}
			}
			p.hd[i*n+i] = diag[i]*(1+dd) + damp
		}
	}
	// The strict lower triangle was the factorization's scratch.
	for i := 1; i < n; i++ {
		clear(a[i*n : i*n+i])
	}
	p.u = a
	return nil
}

// block is one worker's rows.
type block struct {
	r0     int // first row
	rb     int
	padded int       // packed: codes per row in q
	wb     []float32 // rb × cols, permuted column order, updated in place
	errs   []float32 // rb × BlockSize scaled errors of the current block
	q      []uint8   // packed: rb × PaddedCols quants
	a, m   []float32 // rb × groups: weight = a·q − m (q8: a = scale)
}

// rowBlock rounds rows [r0, r1) and writes them into dst.
func (p *pass) rowBlock(ctx context.Context, r0, r1 int) error {
	n, e := p.cols, p.e
	ng := e.Groups(n)
	b := &block{
		r0:   r0,
		rb:   r1 - r0,
		wb:   make([]float32, (r1-r0)*n),
		errs: make([]float32, (r1-r0)*p.opt.BlockSize),
		a:    make([]float32, (r1-r0)*ng),
		m:    make([]float32, (r1-r0)*ng),
	}
	var l quant.Layout
	if e.IsPacked() {
		l = e.Layout(p.rows, n)
		b.q = make([]uint8, b.rb*l.PaddedCols)
		b.padded = l.PaddedCols
	}
	for r := range b.rb {
		src := p.w[(r0+r)*n : (r0+r+1)*n]
		row := b.wb[r*n : (r+1)*n]
		for j, c := range p.perm {
			if !p.dead[c] {
				row[j] = src[c]
			}
		}
	}
	if p.opt.ActOrder {
		// Static groups: every span's parameters from the original
		// weights (dead columns zeroed), in stored order.
		orig := make([]float32, b.rb*n)
		for r := range b.rb {
			for j, c := range p.perm {
				orig[r*n+c] = b.wb[r*n+j]
			}
		}
		if err := p.params(ctx, b, r0, orig, n, 0, n); err != nil {
			return err
		}
	}
	bs := p.opt.BlockSize
	span := make([]float32, 0)
	lz := newLazyScratch(b.rb, n, bs)
	for b0 := 0; b0 < n; b0 += bs {
		b1 := min(b0+bs, n)
		for j := b0; j < b1; j++ {
			c := p.perm[j]
			if !p.opt.ActOrder && c%p.span == 0 {
				// perm is the identity: wb columns [c, c+span) are current.
				c1 := min(c+p.span, n)
				span = span[:0]
				for r := range b.rb {
					span = append(span, b.wb[r*n+c:r*n+c1]...)
				}
				if err := p.params(ctx, b, r0, span, c1-c, c, c1); err != nil {
					return err
				}
			} else if !p.opt.ActOrder && p.opt.RefitGroups && e.Kind == quant.KindQK && c%e.Group == 0 {
				p.refit(b, r0, c)
			}
			p.roundColumn(b, r0, j, c, b0, b1)
		}
		// Lazy update of the columns after the block.
		if b1 < n {
			lazyUpdate(b.wb, b.rb, n, b0, b1, b.errs, bs, p.u, &lz)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if p.opt.Refine > 0 {
		p.refine(b)
	}
	if e.IsPacked() {
		for r := range b.rb {
			q := b.q[r*l.PaddedCols : (r+1)*l.PaddedCols]
			quant.PackPlane(p.dst[l.LoAt+int64((r0+r)*l.LoRow):][:l.LoRow], q, 0, l.LoBits)
			if l.HiBits > 0 {
				quant.PackPlane(p.dst[l.HiAt+int64((r0+r)*l.HiRow):][:l.HiRow], q, l.LoBits, l.HiBits)
			}
		}
	}
	return nil
}

// params encodes the rb × width matrix x (columns [c0, c1) of the block's
// rows) with quant's own encoder, copies the scale bytes of those groups
// into dst and caches each group's (a, m).
func (p *pass) params(ctx context.Context, b *block, r0 int, x []float32, width, c0, c1 int) error {
	e, n := p.e, p.cols
	size, err := e.Size(b.rb, width)
	if err != nil {
		return err
	}
	enc := make([]byte, size)
	var imp []float32
	if p.opt.Importance != nil {
		imp = p.opt.Importance[c0:c1]
	}
	if _, err := quant.EncodeWeighted(ctx, e, enc, x, b.rb, width, 1, imp); err != nil {
		return fmt.Errorf("rows %d…%d, columns %d…%d: %w", r0, r0+b.rb-1, c0, c1-1, err)
	}
	ng, g0, gs := e.Groups(n), c0/e.Group, e.Groups(width)
	if e.Kind == quant.KindQ8 {
		_, sc, err := quant.Q8Planes(enc, b.rb, width, e.Group)
		if err != nil {
			return err
		}
		at := quant.QuantsPlaneSize(p.rows, n)
		for r := range b.rb {
			for gi := range gs {
				bits := sc[r*gs+gi]
				g := g0 + gi
				binary.LittleEndian.PutUint16(p.dst[at+2*int64((r0+r)*ng+g):], bits)
				b.a[r*ng+g], b.m[r*ng+g] = quant.HalfToFloat(bits), 0
			}
		}
		return nil
	}
	ls := e.Layout(b.rb, width)
	l := e.Layout(p.rows, n)
	subAt, supAt := 0, 2*g0
	if e.Kind == quant.KindQK {
		subAt, supAt = 3*(g0/2), 4*(c0/quant.SuperBlock)
	}
	for r := range b.rb {
		sub := p.dst[l.SubAt+int64((r0+r)*l.SubRow):][:l.SubRow]
		sup := p.dst[l.SupAt+int64((r0+r)*l.SupRow):][:l.SupRow]
		copy(sub[subAt:], enc[ls.SubAt+int64(r*ls.SubRow):][:ls.SubRow])
		copy(sup[supAt:], enc[ls.SupAt+int64(r*ls.SupRow):][:ls.SupRow])
		for g := g0; g < g0+gs; g++ {
			b.a[r*ng+g], b.m[r*ng+g] = e.GroupParams(sub, sup, g)
		}
	}
	return nil
}

// refit fits the parameters of the group starting at column c of every
// row of the block to the row's current weights (Options.RefitGroups).
func (p *pass) refit(b *block, r0, c int) {
	e, n := p.e, p.cols
	l := e.Layout(p.rows, n)
	ng, g := e.Groups(n), c/e.Group
	c1 := min(c+e.Group, n)
	var imp []float32
	if p.opt.Importance != nil {
		imp = p.opt.Importance[c:c1]
	}
	for r := range b.rb {
		sub := p.dst[l.SubAt+int64((r0+r)*l.SubRow):][:l.SubRow]
		sup := p.dst[l.SupAt+int64((r0+r)*l.SupRow):][:l.SupRow]
		b.a[r*ng+g], b.m[r*ng+g] = e.RefitSubScales(sub, sup, g, b.wb[r*n+c:r*n+c1], imp)
	}
}

// roundColumn rounds position j (original column c) of every row of the
// block and feeds the scaled error to positions (j, b1).
func (p *pass) roundColumn(b *block, r0, j, c, b0, b1 int) {
	n, e := p.cols, p.e
	ng, g := e.Groups(n), c/e.Group
	ujj := float32(p.u[j*n+j])
	urow := p.u[j*n+j+1 : j*n+b1]
	var padded int
	if e.IsPacked() {
		padded = len(b.q) / b.rb
	}
	for r := range b.rb {
		v := b.wb[r*n+j]
		a, m := b.a[r*ng+g], b.m[r*ng+g]
		var dq float32
		switch e.Kind {
		case quant.KindQ8:
			q := roundQ8(v, a)
			p.dst[(r0+r)*n+c] = byte(q)
			dq = float32(q) * a
		case quant.KindQ4S:
			q := roundQ4S(v, a)
			b.q[r*padded+c] = q
			dq = float32(a*float32(q)) - m
		default:
			q := roundQK(v, a, m, 1<<e.Bits-1)
			b.q[r*padded+c] = q
			dq = float32(a*float32(q)) - m
		}
		if p.opt.Dequant != nil {
			p.opt.Dequant[(r0+r)*n+c] = dq
		}
		ev := (v - dq) / ujj
		b.errs[r*p.opt.BlockSize+j-b0] = ev
		if ev == 0 {
			continue
		}
		row := b.wb[r*n+j+1 : r*n+b1]
		for k, uv := range urow {
			row[k] -= ev * float32(uv)
		}
	}
}

// The roundings below are quant's encoders' own, applied to a weight that
// may lie outside the range its group's parameters were fitted to.

// roundQ8: nearest, ties to even, clamped to ±127; scale 0 gives 0.
func roundQ8(v, s float32) int8 {
	if s == 0 {
		return 0
	}
	t := v / s
	if !(t > -128) {
		return -127
	}
	if !(t < 128) {
		return 127
	}
	return int8(min(max(math.RoundToEven(float64(t)), -127), 127))
}

// roundQ4S: d = a (signed); q = clamp(quant.RoundHalfAway(v/d), −8, 7) + 8.
func roundQ4S(v, d float32) uint8 {
	if d == 0 {
		return 8
	}
	id := 1 / d
	t := min(max(float32(v*id), -64), 64)
	return uint8(min(max(int(quant.RoundHalfAway(t))+8, 0), 15))
}

// roundQK: q = clamp(quant.RoundHalfAway((v + m)/a), 0, nmax); a = 0 gives 0.
func roundQK(v, a, m float32, nmax int) uint8 {
	if a == 0 {
		return 0
	}
	id := 1 / a
	t := min(max(float32((v+m)*id), -256), 256)
	return uint8(min(max(int(quant.RoundHalfAway(t)), 0), nmax))
}
