package gptq

import (
	"encoding/binary"
	"math"

	"github.com/shrink-llm/shrink/quant"
)

// Refinement (Options.Refine) after the one greedy pass.
//
// The pass decides each column once, left to right, and each group's
// parameters once, before the columns after it are known. With E = W − Ŵ
// the error of a row and Hd the damped XXᵀ the pass factored, the output
// error it reduces is f = E·Hd·Eᵀ. Refinement then lowers f further by
// exact coordinate descent on the same objective, keeping the bytes a valid
// file of the same encoding:
//
//   - codes: with G = E·Hd, moving column c's value by δ changes f by
//     −2δ·G_c + δ²·Hd_cc, least at δ* = G_c/Hd_cc; the code nearest the
//     value Ŵ_c + δ* is taken when it lowers f;
//   - group parameters, codes fixed: a group's values are a·q − m, so a
//     change (α, μ) of its scale and offset moves them by α·q − μ, and f
//     by a quadratic in (α, μ) with the group's 2×2 block of Hd; its
//     minimum is mapped to the stored grid (6-bit sub-scales under the
//     super-block's float16 pair, or a float16 scale for q8 and q4s) and
//     the best of the nearby grid points is taken when it lowers f.
//
// Every accepted move lowers f by its exact quadratic change, so f never
// rises. A pass over all codes then all groups is repeated Refine times.
// Cost per pass and row: O(cols²) to start (G), plus O(cols) per accepted
// code move and O(group·cols) per accepted parameter move.

// refineScratch is one worker's float64 row state.
type refineScratch struct {
	t, e, g []float64 // target (dead columns 0), error, E·Hd
	dq      []float32 // the row's current values
	q       []int32   // the row's codes (q8: signed)
	x, d    []float64 // one group's code terms and value changes
	one     [1]float64
}

// code and value access of row r of the block at original column c.
func (p *pass) code(b *block, r, c int) int32 {
	if p.e.Kind == quant.KindQ8 {
		return int32(int8(p.dst[(b.r0+r)*p.cols+c]))
	}
	return int32(b.q[r*b.padded+c])
}

func (p *pass) setCode(b *block, r, c int, q int32) {
	if p.e.Kind == quant.KindQ8 {
		p.dst[(b.r0+r)*p.cols+c] = byte(int8(q))
		return
	}
	b.q[r*b.padded+c] = uint8(q)
}

// value decodes code q under (a, m) as the decoder does.
func (p *pass) value(q int32, a, m float32) float32 {
	if p.e.Kind == quant.KindQ8 {
		return float32(q) * a
	}
	return float32(a*float32(q)) - m
}

// nearest is the code the encoder's rounding gives v under (a, m).
func (p *pass) nearest(v, a, m float32) int32 {
	switch p.e.Kind {
	case quant.KindQ8:
		return int32(roundQ8(v, a))
	case quant.KindQ4S:
		return int32(roundQ4S(v, a))
	}
	return int32(roundQK(v, a, m, 1<<p.e.Bits-1))
}

// refine runs Options.Refine passes over every row of the block; the codes
// (b.q, or dst for q8), group parameters (b.a, b.m and their bytes in
// dst) change in place.
func (p *pass) refine(b *block) {
	n := p.cols
	s := &refineScratch{t: make([]float64, n), e: make([]float64, n), g: make([]float64, n),
		dq: make([]float32, n), q: make([]int32, n), x: make([]float64, p.e.Group), d: make([]float64, p.e.Group)}
	for r := range b.rb {
		p.refineRow(b, r, s)
	}
}

func (p *pass) refineRow(b *block, r int, s *refineScratch) {
	n, e, h := p.cols, p.e, p.hd
	ng := e.Groups(n)
	src := p.w[(b.r0+r)*n : (b.r0+r+1)*n]
	for c := range n {
		s.t[c] = 0
		if !p.dead[c] {
			s.t[c] = float64(src[c])
		}
		s.q[c] = p.code(b, r, c)
		gi := c / e.Group
		s.dq[c] = p.value(s.q[c], b.a[r*ng+gi], b.m[r*ng+gi])
		s.e[c] = s.t[c] - float64(s.dq[c])
	}
	for j := range n {
		s.g[j] = 0
	}
	for c, ec := range s.e {
		if ec == 0 {
			continue
		}
		for j, hv := range h[c*n : (c+1)*n] {
			s.g[j] += ec * hv
		}
	}
	for range p.opt.Refine {
		moved := false
		for c := range n {
			gi := c / e.Group
			a, m := b.a[r*ng+gi], b.m[r*ng+gi]
			if a == 0 {
				continue
			}
			hcc := h[c*n+c]
			want := float64(s.dq[c]) + s.g[c]/hcc
			q := p.nearest(float32(want), a, m)
			if q == s.q[c] {
				continue
			}
			v := p.value(q, a, m)
			d := float64(v) - float64(s.dq[c])
			if -2*d*s.g[c]+d*d*hcc >= 0 {
				continue
			}
			s.q[c], s.dq[c] = q, v
			p.setCode(b, r, c, q)
			s.one[0] = d
			p.move(s, c, c+1, s.one[:])
			moved = true
		}
		for gi := range ng {
			if p.refitGroup(b, r, gi, s) {
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	if p.opt.Dequant != nil {
		copy(p.opt.Dequant[(b.r0+r)*n:], s.dq)
	}
}

// move applies the value changes d to columns [c0, c1): E −= d, G −= d·Hd.
func (p *pass) move(s *refineScratch, c0, c1 int, d []float64) {
	n := p.cols
	for i, dv := range d {
		if dv == 0 {
			continue
		}
		c := c0 + i
		s.e[c] -= dv
		for j, hv := range p.hd[c*n : (c+1)*n] {
			s.g[j] -= dv * hv
		}
	}
}

// refitGroup moves group gi's stored parameters of row r to the grid point
// near the least-squares optimum under Hd when that lowers f, and reports
// whether it did.
func (p *pass) refitGroup(b *block, r, gi int, s *refineScratch) bool {
	e, n := p.e, p.cols
	ng := e.Groups(n)
	c0, c1 := gi*e.Group, min((gi+1)*e.Group, n)
	w := c1 - c0
	a, m := b.a[r*ng+gi], b.m[r*ng+gi]
	// The quadratic in (α, μ): values move by α·x_i − μ·y_i, with x the
	// codes (q4s: q − 8, since m = 8·a moves with a) and y = 1 (QK) or 0.
	x := s.x[:w]
	hasOff := e.Kind == quant.KindQK
	for i := range w {
		x[i] = float64(s.q[c0+i])
		if e.Kind == quant.KindQ4S {
			x[i] -= 8
		}
	}
	var gx, gy, xhx, xhy, yhy float64
	for i := range w {
		ci := c0 + i
		gx += x[i] * s.g[ci]
		gy += s.g[ci]
		row := p.hd[ci*n+c0 : ci*n+c1]
		for k, hv := range row {
			xhx += x[i] * hv * x[k]
			xhy += x[i] * hv
			yhy += hv
		}
	}
	// Minimize −2(α·gx − μ·gy) + α²·xhx − 2αμ·xhy + μ²·yhy.
	var alpha, mu float64
	if hasOff {
		det := xhx*yhy - xhy*xhy
		if !(det > 0) {
			return false
		}
		alpha = (gx*yhy - gy*xhy) / det
		mu = (gx*xhy - gy*xhx) / det
	} else {
		if !(xhx > 0) {
			return false
		}
		alpha = gx / xhx
	}
	d := s.d[:w]
	eval := func(na, nm float32) float64 {
		var lin, quad float64
		for i := range w {
			d[i] = float64(p.value(s.q[c0+i], na, nm)) - float64(s.dq[c0+i])
		}
		for i, di := range d {
			if di == 0 {
				continue
			}
			lin += di * s.g[c0+i]
			row := p.hd[(c0+i)*n+c0 : (c0+i)*n+c1]
			var hd float64
			for k, hv := range row {
				hd += hv * d[k]
			}
			quad += di * hd
		}
		return -2*lin + quad
	}
	best, bestDelta := -1, 0.0
	var cands [][2]float32
	var apply func(k int)
	l := e.Layout(p.rows, n)
	switch e.Kind {
	case quant.KindQK:
		sub := p.dst[l.SubAt+int64((b.r0+r)*l.SubRow):][:l.SubRow]
		sup := p.dst[l.SupAt+int64((b.r0+r)*l.SupRow):][:l.SupRow]
		sb := gi * e.Group / quant.SuperBlock
		dd := quant.HalfToFloat(binary.LittleEndian.Uint16(sup[4*sb:]))
		dm := quant.HalfToFloat(binary.LittleEndian.Uint16(sup[4*sb+2:]))
		sc, mn := quant.SubScales(sub, gi)
		scs := gridNear(float64(sc), (float64(a)+alpha)/float64(dd), dd > 0)
		mns := gridNear(float64(mn), (float64(m)+mu)/float64(dm), dm > 0)
		var pairs [][2]uint8
		for _, si := range scs {
			for _, mi := range mns {
				if si == sc && mi == mn {
					continue
				}
				pairs = append(pairs, [2]uint8{si, mi})
				cands = append(cands, [2]float32{dd * float32(si), dm * float32(mi)})
			}
		}
		apply = func(k int) { e.SetSubScales(sub, gi, pairs[k][0], pairs[k][1]) }
	default:
		// One float16 scale: q8's in its scale plane, q4s's in sup.
		var at []byte
		if e.Kind == quant.KindQ8 {
			at = p.dst[quant.QuantsPlaneSize(p.rows, n)+2*int64((b.r0+r)*ng+gi):][:2]
		} else {
			at = p.dst[l.SupAt+int64((b.r0+r)*l.SupRow)+2*int64(gi):][:2]
		}
		cur := binary.LittleEndian.Uint16(at)
		want := quant.FloatToHalf(float32(float64(a) + alpha))
		var bits []uint16
		for _, h := range []uint16{want - 1, want, want + 1} {
			if h != cur && h&0x7c00 != 0x7c00 {
				bits = append(bits, h)
			}
		}
		for _, h := range bits {
			na := quant.HalfToFloat(h)
			nm := float32(0)
			if e.Kind == quant.KindQ4S {
				nm = 8 * na
			}
			cands = append(cands, [2]float32{na, nm})
		}
		apply = func(k int) { binary.LittleEndian.PutUint16(at, bits[k]) }
	}
	for k, cd := range cands {
		if delta := eval(cd[0], cd[1]); delta < bestDelta {
			best, bestDelta = k, delta
		}
	}
	if best < 0 {
		return false
	}
	na, nm := cands[best][0], cands[best][1]
	eval(na, nm)
	apply(best)
	b.a[r*ng+gi], b.m[r*ng+gi] = na, nm
	for i := range w {
		s.dq[c0+i] = p.value(s.q[c0+i], na, nm)
	}
	p.move(s, c0, c1, d)
	return true
}

// gridNear lists the 6-bit sub-scale values worth trying around the
// continuous optimum want: its floor and ceiling and the current value
// cur (alone when the super-block's factor is zero).
func gridNear(cur, want float64, ok bool) []uint8 {
	out := []uint8{uint8(cur)}
	if !ok || math.IsNaN(want) || math.IsInf(want, 0) {
		return out
	}
	for _, v := range []float64{math.Floor(want), math.Ceil(want)} {
		u := uint8(min(max(v, 0), 63))
		if u != out[0] && (len(out) < 2 || u != out[1]) {
			out = append(out, u)
		}
	}
	return out
}
