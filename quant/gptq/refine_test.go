package gptq

import (
	"context"
	"math"
	"testing"
)

// dampedObjective is tr(E·Hd·Eᵀ) with Hd = H + λI, λ = percDamp·mean(diag H)
// (no dead columns here), by plain loops: the objective refinement lowers.
func dampedObjective(w, got []float32, h []float64, rows, cols int, percDamp float64) float64 {
	var mean float64
	for i := range cols {
		mean += h[i*cols+i]
	}
	hd := append([]float64(nil), h...)
	for i := range cols {
		hd[i*cols+i] += percDamp * mean / float64(cols)
	}
	return outputError(w, got, hd, rows, cols)
}

// TestRefineLowersObjective: on small odd shapes of every encoding family,
// refinement never raises the pass's damped objective, lowers it on the
// packed encodings, and more passes never do worse than fewer; the bytes
// decode to the values refinement reports (quantize checks that).
func TestRefineLowersObjective(t *testing.T) {
	cases := []struct {
		enc        string
		rows, cols int
		opt        Options
		mustLower  bool
	}{
		{"q4", 23, 300, Options{}, true},
		{"q4", 23, 300, Options{RefitGroups: true}, true},
		{"q3", 9, 512, Options{RefitGroups: true, BlockSize: 64}, true},
		{"q5", 17, 257, Options{ActOrder: true}, true},
		{"q2", 11, 256, Options{RefitGroups: true}, true},
		{"q4s", 13, 96, Options{}, true},
		{"q4g64", 7, 320, Options{PercDamp: 0.1}, true},
		{"q8", 10, 70, Options{}, false},
	}
	for i, c := range cases {
		e := mustParse(t, c.enc)
		w, h := correlated(uint64(90+i), c.rows, c.cols, 2*c.cols)
		damp := c.opt.PercDamp
		if damp == 0 {
			damp = DefaultPercDamp
		}
		prev := 0.0
		for k, passes := range []int{0, 1, 4} {
			opt := c.opt
			opt.RowBlock, opt.Threads, opt.Refine = 5, 2, passes
			_, got := quantize(t, e, w, c.rows, c.cols, h, opt)
			f := dampedObjective(w, got, h, c.rows, c.cols, damp)
			t.Logf("%s [%d, %d] %+v: %d passes: objective %.6g", c.enc, c.rows, c.cols, c.opt, passes, f)
			switch {
			case k == 0:
			case f > prev*(1+1e-9):
				t.Errorf("%s [%d, %d]: %d refinement passes raise the objective to %.6g from %.6g", c.enc, c.rows, c.cols, passes, f, prev)
			case k == 1 && c.mustLower && !(f < prev*0.999):
				t.Errorf("%s [%d, %d]: one refinement pass leaves the objective at %.6g (from %.6g)", c.enc, c.rows, c.cols, f, prev)
			}
			prev = f
		}
	}
}

// TestDampDiag: DampDiag is the pass on H with its diagonal scaled by
// 1+DampDiag (the mean damping rescaled to the same λ), on plain and
// act-order passes with refinement; a factor made with another DampDiag is
// refused.
func TestDampDiag(t *testing.T) {
	const rows, cols = 9, 136
	w, h := correlated(31, rows, cols, 2*cols)
	for _, c := range []struct {
		enc    string
		dd     float64
		act    bool
		refine int
	}{{"q4", 0.25, false, 0}, {"q3", 1, false, 2}, {"q5", 0.1, true, 1}} {
		e := mustParse(t, c.enc)
		_, got := quantize(t, e, w, rows, cols, h, Options{DampDiag: c.dd, ActOrder: c.act, Refine: c.refine, RowBlock: 4})
		h2 := append([]float64(nil), h...)
		for i := range cols {
			h2[i*cols+i] *= 1 + c.dd
		}
		_, want := quantize(t, e, w, rows, cols, h2, Options{PercDamp: DefaultPercDamp / (1 + c.dd), ActOrder: c.act, Refine: c.refine, RowBlock: 4})
		fg, fw := outputError(w, got, h, rows, cols), outputError(w, want, h, rows, cols)
		if math.Abs(fg-fw) > 1e-6*fw {
			t.Errorf("%+v: objective %.9g with DampDiag, %.9g with the diagonal scaled", c, fg, fw)
		}
		f, err := NewFactor(h, cols, Options{DampDiag: c.dd, ActOrder: c.act})
		if err != nil {
			t.Fatal(err)
		}
		size, _ := e.Size(rows, cols)
		if err := Quantize(context.Background(), e, make([]byte, size), w, rows, cols, nil, Options{ActOrder: c.act, Factor: f}); err == nil {
			t.Errorf("%+v: factor made with DampDiag accepted without it", c)
		}
	}
}
