package gptq

import (
	"context"
	"math"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// refGPTQ is the textbook pass in float64 with an explicit inverse: for
// each column j in order, round it (a group's scale is chosen by quant's
// q8 encoder from the group's current weights when j starts the group),
// spread the error e/[H⁻¹]jj along row j of H⁻¹ to the later columns, and
// eliminate j from H⁻¹ (the OBS update). It returns the rounded values.
func refGPTQ(t *testing.T, w []float32, rows, cols, group int, h []float64, percDamp float64) []float64 {
	n := cols
	var mean float64
	for i := range n {
		mean += h[i*n+i]
	}
	damp := percDamp * mean / float64(n)
	// Gauss–Jordan inverse of H + λI.
	a := make([]float64, n*2*n)
	for i := range n {
		for j := range n {
			a[i*2*n+j] = h[i*n+j]
		}
		a[i*2*n+i] += damp
		a[i*2*n+n+i] = 1
	}
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r*2*n+c]) > math.Abs(a[p*2*n+c]) {
				p = r
			}
		}
		for k := range 2 * n {
			a[c*2*n+k], a[p*2*n+k] = a[p*2*n+k], a[c*2*n+k]
		}
		d := a[c*2*n+c]
		for k := range 2 * n {
			a[c*2*n+k] /= d
		}
		for r := range n {
			if r != c {
				f := a[r*2*n+c]
				for k := range 2 * n {
					a[r*2*n+k] -= f * a[c*2*n+k]
				}
			}
		}
	}
	hinv := make([]float64, n*n)
	for i := range n {
		copy(hinv[i*n:(i+1)*n], a[i*2*n+n:(i+1)*2*n])
	}
	wf := make([]float64, rows*cols)
	for i, v := range w {
		wf[i] = float64(v)
	}
	out := make([]float64, rows*cols)
	scale := make([]float64, rows)
	e := quant.Q8Group(group)
	for j := range n {
		if j%group == 0 {
			g1 := min(j+group, n)
			span := make([]float32, rows*(g1-j))
			for r := range rows {
				for c := j; c < g1; c++ {
					span[r*(g1-j)+c-j] = float32(wf[r*cols+c])
				}
			}
			size, _ := e.Size(rows, g1-j)
			enc := make([]byte, size)
			if _, err := quant.EncodeWeighted(context.Background(), e, enc, span, rows, g1-j, 1, nil); err != nil {
				t.Fatal(err)
			}
			_, sc, err := quant.Q8Planes(enc, rows, g1-j, group)
			if err != nil {
				t.Fatal(err)
			}
			for r := range rows {
				scale[r] = float64(quant.HalfToFloat(sc[r]))
			}
		}
		d := hinv[j*n+j]
		for r := range rows {
			v := wf[r*cols+j]
			q := 0.0
			if scale[r] != 0 {
				q = math.Max(-127, math.Min(127, math.RoundToEven(v/scale[r])))
			}
			dq := q * scale[r]
			out[r*cols+j] = dq
			ev := (v - dq) / d
			for k := j + 1; k < n; k++ {
				wf[r*cols+k] -= ev * hinv[j*n+k]
			}
		}
		// Eliminate j: H⁻¹ ← H⁻¹ − H⁻¹[:,j] H⁻¹[j,:] / H⁻¹[j,j].
		for i := j + 1; i < n; i++ {
			f := hinv[i*n+j] / d
			for k := j + 1; k < n; k++ {
				hinv[i*n+k] -= f * hinv[j*n+k]
			}
		}
	}
	return out
}

// TestAgainstFloat64Reference: the blocked float32 pass over the Cholesky
// factor of H⁻¹ makes the textbook float64 pass's choices (bar a few
// near-ties) and reaches its output error.
func TestAgainstFloat64Reference(t *testing.T) {
	cases := []struct {
		rows, cols, group, block int
	}{
		{13, 96, 32, 32},
		{9, 100, 32, 64},
		{21, 160, 64, 128},
	}
	for i, c := range cases {
		w, h := correlated(uint64(40+i), c.rows, c.cols, 3*c.cols)
		e := quant.Q8Group(c.group)
		_, got := quantize(t, e, w, c.rows, c.cols, h, Options{BlockSize: c.block, RowBlock: 5, Threads: 2})
		want := refGPTQ(t, w, c.rows, c.cols, c.group, h, DefaultPercDamp)
		differ := 0
		for k := range want {
			if float64(got[k]) != want[k] {
				differ++
			}
		}
		eg := outputError(w, got, h, c.rows, c.cols)
		wf := make([]float32, len(want))
		for k, v := range want {
			wf[k] = float32(v)
		}
		er := outputError(w, wf, h, c.rows, c.cols)
		t.Logf("[%d, %d] group %d block %d: %d of %d weights differ; error %.6g, reference %.6g", c.rows, c.cols, c.group, c.block, differ, len(want), eg, er)
		if differ > len(want)/100 {
			t.Errorf("[%d, %d]: %d of %d rounded values differ from the float64 reference", c.rows, c.cols, differ, len(want))
		}
		if math.Abs(eg-er) > 0.01*er {
			t.Errorf("[%d, %d]: output error %.6g, float64 reference %.6g", c.rows, c.cols, eg, er)
		}
	}
}
