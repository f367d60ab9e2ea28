package gptq

import (
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// TestRowScaleLowersObjective: rescaling each row's stored scales after the
// pass lowers the damped objective tr(E·Hd·Eᵀ) (up to the float16 rounding
// of the new scales) and moves some rows; the output still decodes to
// what Dequant reports (quantize checks that).
func TestRowScaleLowersObjective(t *testing.T) {
	for i, e := range []quant.Encoding{quant.Q4S(32), quant.Q4, quant.QK(3, 32), quant.Q8Group(32)} {
		rows, cols := 24, 256
		w, h := correlated(uint64(70+i), rows, cols, 3*cols)
		hd := append([]float64(nil), h...)
		var mean float64
		for k := range cols {
			mean += h[k*cols+k]
		}
		for k := range cols {
			hd[k*cols+k] += DefaultPercDamp * mean / float64(cols)
		}
		_, plain := quantize(t, e, w, rows, cols, h, Options{Threads: 2, RefitGroups: true})
		_, scaled := quantize(t, e, w, rows, cols, h, Options{Threads: 2, RefitGroups: true, RowScale: true})
		ep, es := outputError(w, plain, hd, rows, cols), outputError(w, scaled, hd, rows, cols)
		moved := 0
		for k := range plain {
			if plain[k] != scaled[k] {
				moved++
			}
		}
		t.Logf("%v: damped objective %.6g, with row scales %.6g (ratio %.4f); %d values moved", e, ep, es, es/ep, moved)
		if es > ep*(1+1e-3) {
			t.Errorf("%v: row scales raise the objective from %.6g to %.6g", e, ep, es)
		}
		if moved == 0 {
			t.Errorf("%v: row scales changed nothing", e)
		}
	}
}
