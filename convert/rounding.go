package convert

import (
	"context"
	"fmt"
	"time"

	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/quant/gptq"
)

// Rounding is how a q8 or packed projection's weights are rounded to the
// encoding's levels.
type Rounding string

const (
	// RoundingRTN rounds every weight to its nearest level (the default).
	RoundingRTN Rounding = "rtn"
	// RoundingGPTQ rounds column by column, feeding each column's error
	// to the columns after it under the calibration statistics XXᵀ of the
	// projection's input (quant/gptq); it needs a Calibration.
	RoundingGPTQ Rounding = "gptq"
)

// ParseRounding reads a --rounding value ("" is RoundingRTN).
func ParseRounding(s string) (Rounding, error) {
	return parseChoice("rounding", s, RoundingRTN, RoundingRTN, RoundingGPTQ)
}

// encodeGPTQ rounds one projection with GPTQ when the rounding asks for it,
// the encoding has levels to choose (q8, packed) and its input has
// statistics; ok=false leaves the tensor to round-to-nearest.
func (e *encoder) encodeGPTQ(ctx context.Context, name string, enc quant.Encoding, out []byte, w []float32, rows, cols, workers int, imp []float32) (quant.Metrics, bool, error) {
	if e.rounding != RoundingGPTQ || (enc.Kind != quant.KindQ8 && !(enc.IsPacked() && enc.Linear())) || e.cal == nil {
		return quant.Metrics{}, false, nil
	}
	layer, point, ok := projection(name)
	if !ok {
		return quant.Metrics{}, false, nil
	}
	key := StatsKey(layer, point)
	st, err := e.cal.statsFor(ctx, key)
	if err != nil {
		return quant.Metrics{}, false, err
	}
	if st == nil || st.N != cols || st.Count == 0 {
		return quant.Metrics{}, false, nil
	}
	start := time.Now()
	defer func() { e.gptqTime += time.Since(start) }()
	if e.gptqKey != key {
		// Projections reading the same input come one after another
		// (q, k, v; gate, up): factor each input once.
		e.gptqKey, e.gptqFactor = "", nil
		f, err := gptq.NewFactor(st.XXt, cols, gptq.Options{PercDamp: e.gptqOpt.PercDamp, DampDiag: e.gptqOpt.DampDiag, ActOrder: e.gptqOpt.ActOrder, Refine: e.gptqOpt.Refine, Threads: workers})
		if err != nil {
			return quant.Metrics{}, false, fmt.Errorf("input %s: %w", key, err)
		}
		e.gptqKey, e.gptqFactor = key, f
	}
	got := make([]float32, rows*cols)
	if e.gptqNoImp {
		imp = nil
	}
	opt := gptq.Options{PercDamp: e.gptqOpt.PercDamp, DampDiag: e.gptqOpt.DampDiag, BlockSize: e.gptqOpt.BlockSize, ActOrder: e.gptqOpt.ActOrder, RefitGroups: e.gptqOpt.RefitGroups, Refine: e.gptqOpt.Refine,
		Threads: workers, Importance: imp, Dequant: got, Factor: e.gptqFactor}
	if e.gptqOpt.AsymAlpha != 0 {
		// The output to fit is the uncompressed model's (GPTAQ).
		opt.AsymAlpha = e.gptqOpt.AsymAlpha
		if opt.Cross = e.cal.crossFor(key); opt.Cross == nil {
			return quant.Metrics{}, false, fmt.Errorf("input %s: the asymmetric target needs asymmetric calibration statistics", key)
		}
	}
	if err := gptq.Quantize(ctx, enc, out, w, rows, cols, nil, opt); err != nil {
		return quant.Metrics{}, false, err
	}
	var acc quant.ErrorAccumulator
	acc.Add(w, got)
	return acc.Metrics(), true, nil
}
