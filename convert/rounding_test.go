package convert

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// actError sums tr((W−Ŵ) H (W−Ŵ)ᵀ)/count over the projections of a
// converted file, H the calibration statistics of each one's input.
func actError(t *testing.T, m *Model, cal *Calibration, path string) (float64, int) {
	t.Helper()
	f := openShrink(t, path)
	var sum float64
	var n int
	for _, d := range m.Tensors {
		layer, point, ok := projection(d.Name)
		if !ok {
			continue
		}
		st := cal.Stats[StatsKey(layer, point)]
		ft, ok := f.Tensor(d.Name)
		if st == nil || !ok || len(ft.Parts) != 1 {
			t.Fatalf("%s: no statistics or tensor", d.Name)
		}
		rows, cols := int(ft.Shape[0]), int(ft.Shape[1])
		w, got := loadDesc(t, d), decodePart(t, f, ft)
		h := st.XXt // upper triangle
		dv := make([]float64, cols)
		var e float64
		for r := range rows {
			for i := range cols {
				dv[i] = float64(w[r*cols+i] - got[r*cols+i])
			}
			for i := range cols {
				s := h[i*cols+i] * dv[i]
				for j := i + 1; j < cols; j++ {
					s += 2 * h[i*cols+j] * dv[j]
				}
				e += dv[i] * s
			}
		}
		sum += e / float64(st.Count)
		n++
	}
	return sum, n
}

// GPTQ rounding of the demo model must cut the activation-weighted error
// of its projections well below round-to-nearest's, on the same encoding
// and statistics; without statistics it is refused.
func TestRoundingGPTQ(t *testing.T) {
	m := openDemo(t)
	cal := calibrateDemo(t, m, 2048)
	for _, enc := range []quant.Encoding{quant.Q4, quant.QK(3, 32), quant.Q4S(32), quant.Q8} {
		plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: enc})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		errs := map[Rounding]float64{}
		for _, r := range []Rounding{RoundingRTN, RoundingGPTQ} {
			out := filepath.Join(dir, string(r)+".shrink")
			if _, err := Convert(context.Background(), m, plan, out, Options{Calibration: cal, Rounding: r, Workers: 2}); err != nil {
				t.Fatalf("%v %s: %v", enc, r, err)
			}
			var n int
			errs[r], n = actError(t, m, cal, out)
			if n == 0 {
				t.Fatal("no projections")
			}
		}
		ratio := errs[RoundingGPTQ] / errs[RoundingRTN]
		t.Logf("%v: activation-weighted error RTN %.4g GPTQ %.4g ratio %.3f", enc, errs[RoundingRTN], errs[RoundingGPTQ], ratio)
		if !(ratio < 0.8) {
			t.Errorf("%v: GPTQ/RTN activation-weighted error %.3f, want < 0.8", enc, ratio)
		}
	}
	plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: quant.Q4})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Convert(context.Background(), m, plan, filepath.Join(t.TempDir(), "x.shrink"), Options{Rounding: RoundingGPTQ})
	wantErr(t, err, "gptq", "calibration")
	if _, err := ParseRounding("best"); err == nil {
		t.Error(`ParseRounding("best") accepted`)
	}
}
