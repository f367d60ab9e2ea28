package gptq

import (
	"encoding/binary"
	"math"

	"github.com/shrink-llm/shrink/quant"
)

// rowScale is Options.RowScale: after rounding, each row's float16 scales
// (q8's and q4s's group scales, the two-level family's super-block pair)
// are multiplied by the s that minimizes the pass's objective along the
// row, (t − s·q)·Hd·(t − s·q)ᵀ with t the row's target (w, or the
// asymmetric target) and q its rounded values: s = t·Hd·qᵀ / q·Hd·qᵀ. The
// codes stay; every weight of the row scales by s (up to the float16
// rounding of each scale), which a column-by-column pass never revisits:
// an output-matching least-squares fix per output channel. Rows whose s
// is not finite and positive are left alone. vals holds the decoded values of dst (rows×cols) and is
// updated to the new decoding.
func (p *pass) rowScale(vals []float32) error {
	n := p.cols
	hd := p.hd
	t := make([]float64, n)
	hq := make([]float64, n)
	for r := range p.rows {
		q := vals[r*n : (r+1)*n]
		for c := range n {
			t[c] = 0
			if !p.dead[c] {
				t[c] = float64(p.w[r*n+c])
			}
		}
		var tq, qq float64
		for i := range n {
			row := hd[i*n : (i+1)*n]
			var s float64
			for j, h := range row {
				s += h * float64(q[j])
			}
			hq[i] = s
			qq += float64(q[i]) * s
			tq += t[i] * s
		}
		if !(qq > 0) {
			continue
		}
		s := tq / qq
		if !(s > 0) || math.IsInf(s, 0) {
			continue
		}
		p.scaleRow(r, s)
	}
	// The stored scales moved by float16 steps: decode what was written.
	return quant.Decode(p.e, vals, p.dst, p.rows, n)
}

// scaleRow multiplies every float16 scale of row r of dst by s.
func (p *pass) scaleRow(r int, s float64) {
	var plane []byte
	if p.e.Kind == quant.KindQ8 {
		ng := p.e.Groups(p.cols)
		at := quant.QuantsPlaneSize(p.rows, p.cols)
		plane = p.dst[at+2*int64(r*ng):][:2*ng]
	} else {
		l := p.e.Layout(p.rows, p.cols)
		plane = p.dst[l.SupAt+int64(r*l.SupRow):][:l.SupRow]
	}
	for i := 0; i+1 < len(plane); i += 2 {
		v := float64(quant.HalfToFloat(binary.LittleEndian.Uint16(plane[i:])))
		binary.LittleEndian.PutUint16(plane[i:], quant.FloatToHalf(float32(v*s)))
	}
}
