package convert

import (
	"cmp"
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/quant/gptq"
	"github.com/shrink-llm/shrink/runtime"
)

// MeasureOptions choose what the planner's measurement pass tries.
type MeasureOptions struct {
	// Candidates are the encodings tried on every projection (default
	// DefaultCandidates).
	Candidates []quant.Encoding
	// Calibration, when set, makes the cost activation-weighted (see
	// MeasureCosts) and feeds the packed encoders' weighted scale search
	// and GPTQ, exactly as the conversion will.
	Calibration *Calibration
	// Rounding is the conversion's rounding: each candidate is measured as
	// it will be written.
	Rounding Rounding
	// GPTQ and GPTQNoImportance are the conversion's GPTQ settings
	// (Options.GPTQ, Options.GPTQNoImportance).
	GPTQ             gptq.Options
	GPTQNoImportance bool
	// Sensitivity is how a candidate's damage is predicted (default
	// SensitivityOutputError); SensitivityKL needs Probe.Documents.
	Sensitivity Sensitivity
	// Probe chooses the KL probe's text and token budget.
	Probe ProbeOptions
	// InPlace (SensitivityKL only), when set, is an earlier plan's choice
	// per tensor: every probe then runs with all the other tensors in
	// their chosen encodings, and a candidate's cost is the KL it adds
	// over the tensor left uncompressed there (a refinement pass: the
	// costs see how errors of different tensors compound).
	InPlace map[string]quant.Encoding
	// Workers bounds the threads (default 2).
	Workers int
	// Progress, if set, is called after each tensor.
	Progress func(done, total int)
}

// Measure names the cost MeasureCosts computes, for the plan's record.
func (o MeasureOptions) Measure() string {
	if o.Sensitivity == SensitivityKL {
		return fmt.Sprintf("KL probe: mean KL divergence of the next-token distributions with the tensor alone encoded, on %d calibration tokens, %s rounding", cmp.Or(o.Probe.Tokens, DefaultProbeTokens), roundingName(o.Rounding))
	}
	if o.Calibration != nil {
		return fmt.Sprintf("activation-weighted relative squared error ‖(W−Ŵ)X‖²/‖WX‖² on %d calibration tokens, %s rounding", o.Calibration.Tokens, roundingName(o.Rounding))
	}
	return fmt.Sprintf("relative squared weight error ‖W−Ŵ‖²/‖W‖², %s rounding", roundingName(o.Rounding))
}

func roundingName(r Rounding) Rounding {
	if r == "" {
		return RoundingRTN
	}
	return r
}

// MeasureCosts is the planner's measurement pass (in the spirit of EXL2's):
// every dense projection of the plan is encoded in every candidate encoding
// the way the conversion would encode it (same rounding, same calibration
// weighting), decoded back, and its damage measured as the relative squared
// output error ‖(W−Ŵ)X‖²/‖WX‖² = tr(ΔW·XXᵀ·ΔWᵀ)/tr(W·XXᵀ·Wᵀ) under the
// calibration statistics of its input (the relative squared weight error
// without them), weighted by the tensor's share of the projections'
// weights. A relative error is comparable across tensors of different
// scale; the allocation then spends bytes where they remove the most of it.
// With SensitivityKL the cost is instead a KL probe (see klProbe): the mean
// KL divergence of the model's next-token distributions on a slice of the
// calibration text with that tensor alone replaced by its decoded
// candidate, which says how much the output cares about the tensor.
// One tensor's weights are resident at a time (besides the probe's
// uncompressed model, which is mapped).
func MeasureCosts(ctx context.Context, m *Model, plan *Plan, o MeasureOptions) ([]BudgetTensor, error) {
	cands := o.Candidates
	if len(cands) == 0 {
		cands = DefaultCandidates
	}
	workers := max(o.Workers, 1)
	if o.Workers == 0 {
		workers = 2
	}
	if o.Rounding == RoundingGPTQ && o.Calibration == nil {
		return nil, fmt.Errorf("measuring with gptq rounding needs calibration statistics")
	}
	if o.Calibration != nil && o.Calibration.Layerwise() {
		// Layer-by-layer statistics appear only as the conversion reaches
		// each block; the plan has to be made before.
		return nil, fmt.Errorf("the planner's measurement needs the whole model's calibration statistics before the conversion (a model calibration pass)")
	}
	descs := make(map[string]*TensorDesc, len(m.Tensors))
	for _, t := range m.Tensors {
		descs[t.Name] = t
	}
	var todo []int
	for i, e := range plan.Entries {
		if _, _, ok := projection(e.Name); ok && len(e.Shape) == 2 && e.Kind.Dense() {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return nil, fmt.Errorf("the model has no dense projections to plan")
	}
	var probe *klProbe
	switch o.Sensitivity {
	case "", SensitivityOutputError:
	case SensitivityKL:
		var err error
		if probe, err = newKLProbe(ctx, m, o.Probe, workers); err != nil {
			return nil, err
		}
		defer probe.close()
	default:
		return nil, fmt.Errorf("planner sensitivity %q: want %s or %s", o.Sensitivity, SensitivityKL, SensitivityOutputError)
	}
	enc := &encoder{cal: o.Calibration, rounding: o.Rounding, gptqOpt: o.GPTQ, gptqNoImp: o.GPTQNoImportance}
	if o.InPlace != nil {
		if probe == nil {
			return nil, fmt.Errorf("probing with the other tensors in place needs the KL probe")
		}
		base := &runtime.MemSource{Cfg: probe.rt.Config()}
		for _, i := range todo {
			e := plan.Entries[i]
			c, ok := o.InPlace[e.Name]
			if !ok {
				return nil, fmt.Errorf("tensor %q has no earlier choice", e.Name)
			}
			rows, cols, err := matrixShape(e.Shape)
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", e.Name, err)
			}
			w, err := loadProjection(ctx, descs[e.Name], rows, cols)
			if err != nil {
				return nil, err
			}
			size, err := c.Size(rows, cols)
			if err != nil {
				return nil, fmt.Errorf("tensor %q as %v: %w", e.Name, c, err)
			}
			got := make([]float32, rows*cols)
			if err := enc.roundTrip(ctx, e.Name, c, make([]byte, size), got, w, rows, cols, workers); err != nil {
				return nil, fmt.Errorf("tensor %q as %v: %w", e.Name, c, err)
			}
			base.Add(f32Weight(e.Name, got, rows, cols))
		}
		if err := probe.setBase(ctx, base); err != nil {
			return nil, err
		}
	}
	var out []BudgetTensor
	for n, i := range todo {
		e := plan.Entries[i]
		d := descs[e.Name]
		rows, cols, err := matrixShape(e.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", e.Name, err)
		}
		w, err := loadProjection(ctx, d, rows, cols)
		if err != nil {
			return nil, err
		}
		var h []float64
		var ref, floor float64
		switch {
		case probe != nil && o.InPlace != nil:
			// What the others' errors alone cost, with this tensor exact.
			if floor, err = probe.cost(ctx, e.Name, w, rows, cols); err != nil {
				return nil, err
			}
		case probe == nil:
			if h, err = enc.inputGram(ctx, e.Name, cols); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", e.Name, err)
			}
			ref = quadForm(ctx, h, w, nil, rows, cols, workers)
		}
		bt := BudgetTensor{Name: e.Name, Params: int64(rows) * int64(cols)}
		got := make([]float32, rows*cols)
		for _, c := range cands {
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("candidate %v: %w", c, err)
			}
			size, err := c.Size(rows, cols)
			if err != nil {
				return nil, fmt.Errorf("tensor %q as %v: %w", e.Name, c, err)
			}
			buf := make([]byte, size)
			if err := enc.roundTrip(ctx, e.Name, c, buf, got, w, rows, cols, workers); err != nil {
				return nil, fmt.Errorf("tensor %q as %v: %w", e.Name, c, err)
			}
			cost := 0.0
			switch {
			case probe != nil:
				if cost, err = probe.cost(ctx, e.Name, got, rows, cols); err != nil {
					return nil, err
				}
				cost = max(cost-floor, 0)
			case ref > 0:
				cost = quadForm(ctx, h, w, got, rows, cols, workers) / ref
			}
			bt.Choices = append(bt.Choices, Choice{Encoding: c, Bytes: size, Cost: cost})
		}
		out = append(out, bt)
		if o.Progress != nil {
			o.Progress(n+1, len(todo))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	// A tensor's relative error counts in proportion to its weights: the
	// cost of a plan is then the weight-averaged relative error, and the
	// allocation compares error removed per bit of every tensor alike. (Summed
	// unweighted, the small attn_k/attn_v errors weigh as much as the
	// largest matrices', and the allocation starves the large ones: on
	// llama-stories-12m that plan at 4.5 bits/weight had a 33% higher KLD
	// than plain q4.)
	// A KL probe's costs are already in the units of the model's output
	// and add up (to first order) over tensors as they are.
	var total int64
	for _, t := range out {
		total += t.Params
	}
	for i := range out {
		if probe == nil {
			w := float64(out[i].Params) / float64(total)
			for j := range out[i].Choices {
				out[i].Choices[j].Cost *= w
			}
		}
		sortChoices(out[i].Choices)
	}
	return out, nil
}

// loadProjection reads a projection's weights, rejecting non-finite ones.
func loadProjection(ctx context.Context, d *TensorDesc, rows, cols int) ([]float32, error) {
	if d == nil {
		return nil, fmt.Errorf("a tensor of the plan is not in the model")
	}
	w := make([]float32, rows*cols)
	if err := d.Load(ctx, w); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", d.Name, err)
	}
	if err := nonFiniteError(w, cols); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", d.Name, err)
	}
	return w, nil
}

// inputGram is the calibration XXᵀ (upper triangle, row-major cols×cols)
// of tensor name's input, or nil without statistics for it.
func (e *encoder) inputGram(ctx context.Context, name string, cols int) ([]float64, error) {
	layer, point, ok := projection(name)
	if e.cal == nil || !ok {
		return nil, nil
	}
	st, err := e.cal.statsFor(ctx, StatsKey(layer, point))
	if err != nil || st == nil || st.N != cols || st.Count == 0 {
		return nil, err
	}
	return st.XXt, nil
}

// roundTrip encodes w as enc the way encode does for a projection (GPTQ when
// the rounding asks for it, else the weighted nearest rounding) into buf
// and decodes it into got.
func (e *encoder) roundTrip(ctx context.Context, name string, enc quant.Encoding, buf []byte, got, w []float32, rows, cols, workers int) error {
	var imp []float32
	if enc.IsPacked() {
		var err error
		if imp, err = e.importance(ctx, name, cols); err != nil {
			return err
		}
	}
	_, done, err := e.encodeGPTQ(ctx, name, enc, buf, w, rows, cols, workers, imp)
	if err != nil {
		return err
	}
	if !done {
		if _, err := quant.EncodeWeighted(ctx, enc, buf, w, rows, cols, workers, imp); err != nil {
			return err
		}
	}
	return quant.Decode(enc, got, buf, rows, cols)
}

// quadForm is Σ_rows δᵀHδ with δ = w − got (δ = w when got is nil), H the
// upper triangle of a symmetric cols×cols matrix; without H it is Σδ².
// Rows are split among workers; each worker sums its rows in order and the
// partial sums are added in worker order, so the result is deterministic.
func quadForm(ctx context.Context, h []float64, w, got []float32, rows, cols, workers int) float64 {
	return sumInChunks(rows, workers, func(lo, hi int) float64 {
		d := make([]float64, cols)
		var sum float64
		for r := lo; r < hi; r++ {
			if ctx.Err() != nil {
				return sum
			}
			for c := range d {
				d[c] = float64(w[r*cols+c])
				if got != nil {
					d[c] -= float64(got[r*cols+c])
				}
			}
			if h == nil {
				for _, v := range d {
					sum += v * v
				}
				continue
			}
			for i, di := range d {
				if di == 0 {
					continue
				}
				row := h[i*cols : (i+1)*cols]
				acc := row[i] * di
				for j := i + 1; j < cols; j++ {
					acc += 2 * row[j] * d[j]
				}
				sum += acc * di
			}
		}
		return sum
	})
}

// sumInChunks splits [0, n) into at most workers contiguous chunks, sums
// each with f(lo, hi) on its own goroutine and adds the partial sums in
// chunk order, so the result does not depend on scheduling.
func sumInChunks(n, workers int, f func(lo, hi int) float64) float64 {
	workers = max(1, min(workers, n))
	part := make([]float64, workers)
	per := (n + workers - 1) / workers
	var g errgroup.Group
	for k := range workers {
		g.Go(func() error {
			part[k] = f(min(n, k*per), min(n, (k+1)*per))
			return nil
		})
	}
	_ = g.Wait() // the chunks cannot fail
	var s float64
	for _, v := range part {
		s += v
	}
	return s
}
