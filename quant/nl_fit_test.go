package quant_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

const (
	nlFitStride = 8
	nlFitIters  = 14
)

// TestNLLevelsFit re-derives q4nl's level table from the projection weights
// of llama-stories-12m (FitNLLevels from an evenly spaced start) and checks
// that quant.NLLevels is that fit, within one unit per level (the fit's
// float summation order may move a rounding).
func TestNLLevelsFit(t *testing.T) {
	if testing.Short() {
		t.Skip("fits a level table over 10M weights")
	}
	dir := testshared.Path(t, "models", "llama-stories-12m")
	files, err := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no safetensors in %s: %v", dir, err)
	}
	var x []float32
	cols := 0
	for _, f := range files {
		for name, ts := range testshared.ReadSafetensors(t, f) {
			if !strings.Contains(name, "_proj.weight") || ts.Shape[1] != 384 {
				continue // the 384-column projections: one row length for the fit
			}
			cols = ts.Shape[1]
			v := ts.Floats()
			for r := 0; r+cols <= len(v); r += nlFitStride * cols {
				x = append(x, v[r:r+cols]...) // every nlFitStride-th row
			}
		}
	}
	var start [16]int8
	for i := range start {
		start[i] = int8(-127 + i*254/15)
	}
	got := start
	for range nlFitIters {
		got = quant.FitNLLevels(x, cols, 32, 1, got)
	}
	t.Logf("fitted levels %v", got)
	for i, v := range got {
		if d := int(v) - int(quant.NLLevels[i]); d < -1 || d > 1 {
			t.Fatalf("fitted levels %v, stored %v", got, quant.NLLevels)
		}
	}
}
