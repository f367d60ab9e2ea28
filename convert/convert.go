package convert

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/quant/gptq"
)

// Options tune a conversion run; the zero value is usable.
type Options struct {
	// Workers is the thread budget of the whole conversion (default 2, the
	// machine size we target): dense encodings and factorisations
	// (Factorize.Threads is set from it) together never keep more than
	// Workers goroutines computing at once.
	Workers int
	// Progress, if set, is called after each tensor is written.
	Progress func(p Progress)
	// Metadata is copied into the file header.
	Metadata map[string]string
	// Calibration holds the activation statistics low-rank methods read
	// (whiten, asvd, whitened lorc); with them every factored matrix also
	// reports its activation error.
	Calibration *Calibration
	// Factorize tunes the factorisations (route, seed); LoRCWhiten is taken
	// from the plan and Threads from Workers.
	Factorize lowrank.Options
	// AllowNonFinite keeps NaN and ±Inf weights in the float encodings
	// (f32, f16, bf16) instead of refusing the tensor; q8 and factored
	// matrices cannot represent them and refuse them regardless.
	AllowNonFinite bool
	// Rounding of the q8 and packed projections: RoundingRTN ("" too) or
	// RoundingGPTQ, which needs Calibration.
	Rounding Rounding
	// GPTQ tunes RoundingGPTQ: PercDamp, BlockSize, ActOrder and RefitGroups are read
	// (zero values: quant/gptq's defaults, in stored column order).
	// AsymAlpha ≠ 0 rounds each projection's asymmetric target (GPTAQ:
	// fit the uncompressed model's output from the compressed model's
	// inputs; gptq.AsymmetricTarget) and needs a Calibration made with
	// CalibOptions.Asymmetric; Cross is filled in per tensor.
	GPTQ gptq.Options
	// GPTQNoImportance makes GPTQ choose group parameters by plain error
	// instead of the activation-weighted error.
	GPTQNoImportance bool
}

// Progress reports one finished tensor.
type Progress struct {
	Index, Count     int // tensors done (1-based) and in total
	Name             string
	DoneBytes        int64 // source bytes consumed so far
	TotalSourceBytes int64
}

// Result describes a finished conversion.
type Result struct {
	Path     string
	Plan     *Plan
	Tensors  []format.Tensor
	Bytes    int64 // output file size
	Duration time.Duration
	// LowRank reports every factored matrix, in plan order.
	LowRank []LowRankReport
	// Rounding is the time GPTQ rounding took (factoring XXᵀ included).
	Rounding time.Duration
}

// Convert encodes every tensor of m as plan says and writes the .shrink file
// at out. It streams: one tensor is resident at a time (its float32 values,
// its source bytes and its encoding), so peak memory follows the largest
// tensor, not the model. The output appears atomically on success; on any
// error, or if ctx is cancelled, nothing is left at out.
func Convert(ctx context.Context, m *Model, plan *Plan, out string, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if _, err := ParseRounding(string(opts.Rounding)); err != nil {
		return nil, err
	}
	if opts.Rounding == RoundingGPTQ && opts.Calibration == nil {
		return nil, fmt.Errorf("rounding %s needs calibration statistics (--calib)", RoundingGPTQ)
	}
	if opts.GPTQ.AsymAlpha != 0 && (opts.Rounding != RoundingGPTQ || !opts.Calibration.Asymmetric()) {
		return nil, fmt.Errorf("the asymmetric GPTQ target needs rounding %s and asymmetric layer-by-layer calibration", RoundingGPTQ)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("conversion cancelled: %w", err)
	}
	if len(plan.Entries) != len(m.Tensors) {
		return nil, fmt.Errorf("plan has %d tensors, model %d", len(plan.Entries), len(m.Tensors))
	}
	// Everything the plan can be checked for is checked before any work
	// starts, in plan order, so that the error names the first tensor.
	stats := make([]*lowrank.Stats, len(plan.Entries))
	for i, pe := range plan.Entries {
		d := m.Tensors[i]
		if d.Name != pe.Name {
			return nil, fmt.Errorf("plan entry %d is %q but the model's tensor is %q", i, pe.Name, d.Name)
		}
		if !pe.Kind.Factored() {
			continue
		}
		need := pe.Method == lowrank.MethodWhiten || pe.Method == lowrank.MethodASVD || pe.Kind == format.KindLoRC && pe.Whiten
		st, err := opts.Calibration.forMethod(pe.Method, need, pe.StatsKey)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", d.File, d.Name, err)
		}
		stats[i] = st
	}
	w, err := format.Create(out)
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	// The plan knows the tensor bytes before anything is read; reserving them
	// (plus room for the tokenizer and padding) halves the kernel's cost of
	// the writes on ext4.
	var blobBytes int64
	for _, b := range m.TokenizerFiles {
		blobBytes += int64(len(b))
	}
	_ = w.Preallocate(plan.TotalBytes + blobBytes + 64*int64(len(plan.Entries)+len(m.TokenizerFiles)+2))

	names := make([]string, 0, len(m.TokenizerFiles))
	for n := range m.TokenizerFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := w.WriteBlob(n, m.TokenizerFiles[n], true); err != nil {
			return nil, fmt.Errorf("%s: writing %s: %w", out, n, err)
		}
	}

	// Encoding tensor i overlaps with writing tensor i-1: the writer
	// goroutine owns one output buffer while the encoder fills the other.
	// Factored tensors take their own buffers (recycle is nil). The
	// writer, the encoder and the factorisations share one errgroup: the
	// first error of any of them cancels gctx, which stops the others at
	// their next check instead of finishing every tensor first.
	type job struct {
		t       format.Tensor
		data    [][]byte
		recycle []byte
		dense   bool
	}
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan job, 1)
	free := make(chan []byte, 2)
	free <- nil
	free <- nil
	g.Go(func() error {
		for j := range jobs {
			if err := w.WriteTensor(j.t, j.data...); err != nil {
				return fmt.Errorf("%s: writing tensor %q: %w", out, j.t.Name, err)
			}
			if j.dense {
				free <- j.recycle
			}
		}
		return nil
	})
	cpu := semaphore.NewWeighted(int64(opts.Workers))
	fz := startFactoring(gctx, g, cpu, m, plan, stats, opts)
	enc := &encoder{allowNonFinite: opts.AllowNonFinite, cal: opts.Calibration, rounding: opts.Rounding, gptqOpt: opts.GPTQ, gptqNoImp: opts.GPTQNoImportance}
	res := &Result{Path: out, Plan: plan}
	g.Go(func() error {
		defer close(jobs)
		cancelled := func() error { return fmt.Errorf("conversion cancelled: %w", context.Cause(gctx)) }
		var done int64
		for i, pe := range plan.Entries {
			if gctx.Err() != nil {
				return cancelled()
			}
			d := m.Tensors[i]
			var j job
			if !pe.Kind.Factored() {
				var buf []byte
				select {
				case buf = <-free:
				case <-gctx.Done():
					return cancelled()
				}
				th := encodeThreads(d, opts.Workers)
				if err := cpu.Acquire(gctx, int64(th)); err != nil {
					return cancelled()
				}
				t, data, err := enc.encode(gctx, d, pe, buf, th)
				cpu.Release(int64(th))
				if err != nil {
					return fmt.Errorf("%s: tensor %q: %w", d.File, d.Name, err)
				}
				j = job{t: t, data: [][]byte{data}, recycle: data, dense: true}
			} else {
				r, ok := fz.result(gctx, i)
				if !ok {
					return cancelled()
				}
				j = job{t: r.t, data: r.data}
				res.LowRank = append(res.LowRank, r.rep)
			}
			// Before the writer may recycle the buffer.
			opts.Calibration.record(j.t, j.data)
			select {
			case jobs <- j:
			case <-gctx.Done():
				return cancelled()
			}
			res.Tensors = append(res.Tensors, j.t)
			done += pe.SourceBytes
			if opts.Progress != nil {
				opts.Progress(Progress{Index: i + 1, Count: len(plan.Entries), Name: d.Name, DoneBytes: done, TotalSourceBytes: plan.SourceBytes})
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.Rounding = enc.gptqTime
	meta := map[string]string{"source_bytes": fmt.Sprint(plan.SourceBytes), "policy": plan.Policy}
	if c := opts.Calibration; c != nil && len(res.LowRank) > 0 {
		meta["calibration"] = fmt.Sprintf("%d tokens from documents %s", c.Tokens, c.Docs)
		if c.Layerwise() {
			meta["calibration"] += ", layer by layer"
		}
	}
	for k, v := range opts.Metadata {
		meta[k] = v
	}
	h := format.Header{Config: m.Config, TokenizerKind: m.TokenizerKind, Metadata: meta}
	if err := w.Commit(h); err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	// The committed file replaces any earlier one; its size is what users pay.
	st, err := os.Stat(out)
	if err != nil {
		return nil, err
	}
	res.Bytes = st.Size()
	res.Duration = time.Since(start)
	return res, nil
}

// encoder owns the buffers reused from tensor to tensor, so that a run
// allocates about one largest-tensor working set in total.
type encoder struct {
	allowNonFinite bool
	f32            []float32
	// cal, when set, weights the packed encoders' scale search by each
	// input column's mean squared activation.
	cal *Calibration
	// rounding of q8 and packed projections (Options.Rounding).
	rounding Rounding
	// gptqFactor is the factor of the statistics of input gptqKey.
	gptqKey    string
	gptqFactor *gptq.Factor
	gptqTime   time.Duration
	gptqOpt    gptq.Options
	gptqNoImp  bool
}

// importance is the per-column weight of the packed encoders' scale search
// for tensor name: the mean squared calibration activation of each input,
// or nil without statistics for it.
func (e *encoder) importance(ctx context.Context, name string, cols int) ([]float32, error) {
	if e.cal == nil {
		return nil, nil
	}
	layer, point, ok := projection(name)
	if !ok {
		return nil, nil
	}
	st, err := e.cal.statsFor(ctx, StatsKey(layer, point))
	if err != nil || st == nil || st.N != cols || st.Count == 0 {
		return nil, err
	}
	imp := make([]float32, cols)
	for c := range imp {
		// A column no calibration token ever used still counts a little,
		// so its weights are not left to chance.
		imp[c] = float32(st.XXt[c*cols+c]/float64(st.Count)) + 1e-8
	}
	return imp, nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (e *encoder) encode(ctx context.Context, d *TensorDesc, pe PlanEntry, out []byte, workers int) (format.Tensor, []byte, error) {
	rows, cols, err := matrixShape(d.Shape)
	if err != nil {
		return format.Tensor{}, nil, err
	}
	t := format.Tensor{
		Name:        d.Name,
		Shape:       append([]int64(nil), d.Shape...),
		Kind:        format.KindDense,
		SourceDType: string(d.DType),
		Parts:       []format.Part{{Role: format.RoleW, Shape: append([]int64(nil), d.Shape...), Encoding: pe.Encoding}},
	}
	if !pe.Kind.Dense() {
		return t, nil, fmt.Errorf("a %s tensor reached the dense encoder", pe.Kind)
	}
	out = grow(out, int(pe.Bytes))
	if sameDType(pe.Encoding, d.DType) {
		if sr, ok := d.Raw(); ok && sr.Size() == pe.Bytes {
			// The checkpoint already holds these exact bytes: copy them.
			if _, err := io.ReadFull(sr, out); err != nil {
				return t, nil, fmt.Errorf("reading: %w", err)
			}
			if !e.allowNonFinite {
				if err := nonFiniteBytes(out, d.DType, cols); err != nil {
					return t, nil, err
				}
			}
			t.Metrics = &format.Metrics{SNRdB: snrExact, Cosine: 1}
			return t, out, nil
		}
	}
	// GGUF Q8_0 is q8 with group 32, Q4_K is q4 and Q5_K q5: repack, not
	// re-fit.
	carry := map[quant.Encoding]func([]byte, int, int) (bool, error){
		quant.Q8:        d.carryQ8,
		quant.QK(4, 32): func(b []byte, r, c int) (bool, error) { return d.carryQK(b, r, c, 4) },
		quant.QK(5, 32): func(b []byte, r, c int) (bool, error) { return d.carryQK(b, r, c, 5) },
	}[pe.Encoding]
	if carry != nil {
		if ok, err := carry(out, rows, cols); err != nil {
			return t, nil, err
		} else if ok {
			t.Metrics = &format.Metrics{SNRdB: snrExact, Cosine: 1}
			return t, out, nil
		}
	}
	n := rows * cols
	e.f32 = grow(e.f32, n)
	// The load and the non-finite scan run on the encoder's threads: done
	// on one, they left the rest of the budget idle for a third of a q8
	// conversion.
	mustBeFinite := !e.allowNonFinite || pe.Encoding.Kind == quant.KindQ8 || pe.Encoding.IsPacked()
	nonFinite, err := d.load(ctx, e.f32, workers, mustBeFinite)
	if err != nil {
		return t, nil, err
	}
	if nonFinite {
		// The load saw one; find the first in canonical order to name it.
		if err := inParts(int64(rows), 1, workers, func(lo, hi int64) error {
			return nonFiniteFrom(e.f32[lo*int64(cols):hi*int64(cols)], cols, int(lo))
		}); err != nil {
			return t, nil, err
		}
	}
	if pe.Encoding == quant.F32 {
		// Widening is exact, so there is nothing to measure.
		if err := quant.EncodeParallel(ctx, pe.Encoding, out, e.f32, rows, cols, workers); err != nil {
			return t, nil, err
		}
		t.Metrics = &format.Metrics{SNRdB: snrExact, Cosine: 1}
		return t, out, nil
	}
	var imp []float32
	if pe.Encoding.IsPacked() {
		if imp, err = e.importance(ctx, d.Name, cols); err != nil {
			return t, nil, err
		}
	}
	mt, done, err := e.encodeGPTQ(ctx, d.Name, pe.Encoding, out, e.f32, rows, cols, workers, imp)
	if err != nil {
		return t, nil, err
	}
	if !done {
		if mt, err = quant.EncodeWeighted(ctx, pe.Encoding, out, e.f32, rows, cols, workers, imp); err != nil {
			return t, nil, err
		}
	}
	if dt := map[quant.Encoding]DType{quant.F16: DTypeF16, quant.BF16: DTypeBF16}[pe.Encoding]; dt != "" && !e.allowNonFinite {
		// The input was finite, so an infinity here is a weight beyond
		// the encoding's range (65504 for f16).
		if err := nonFiniteBytes(out, dt, cols); err != nil {
			return t, nil, fmt.Errorf("overflows %v: %w", pe.Encoding, err)
		}
	}
	t.Metrics = toFormatMetrics(mt)
	return t, out, nil
}

// snrExact stands for +Inf dB (no error), which JSON cannot carry.
const snrExact = 999

func sameDType(enc quant.Encoding, dt DType) bool {
	e, ok := dt.Encoding()
	return ok && e == enc
}

func toFormatMetrics(m quant.Metrics) *format.Metrics {
	fm := &format.Metrics{RelFrobenius: m.RelFrobenius, SNRdB: m.SNRdB, Cosine: m.Cosine, MaxAbs: m.MaxAbs}
	if math.IsInf(fm.SNRdB, 1) {
		fm.SNRdB = snrExact
	}
	if math.IsInf(fm.RelFrobenius, 0) || math.IsNaN(fm.RelFrobenius) {
		fm.RelFrobenius = -1 // undefined: the reference is all zeros
	}
	if math.IsNaN(fm.Cosine) {
		fm.Cosine = 0
	}
	// Only with --allow-nonfinite: NaN weights leave the error unmeasurable,
	// stored as -1 (undefined) rather than a NaN the format refuses.
	if math.IsNaN(fm.SNRdB) || math.IsInf(fm.SNRdB, 0) {
		fm.SNRdB = -1
	}
	if math.IsNaN(fm.MaxAbs) || math.IsInf(fm.MaxAbs, 0) {
		fm.MaxAbs = -1
	}
	return fm
}

// factoring runs the factorisations of a plan ahead of the encoder: up to
// F = min(Workers, factored tensors) at once, started in plan order, each
// with Workers/F threads of the budget, each result held in its entry's
// slot until the encoder takes it. A slot is freed only when its result is
// taken, so at most F factored tensors are in memory (being computed or
// waiting), and the encoder, which takes results in plan order, always
// waits on one that has been started. A failed factorisation returns its
// error to the errgroup at once, which cancels the whole conversion.
type factoring struct {
	slots   []chan factorResult
	running chan struct{}
}

type factorResult struct {
	t    format.Tensor
	data [][]byte
	rep  LowRankReport
}

func startFactoring(ctx context.Context, g *errgroup.Group, cpu *semaphore.Weighted, m *Model, plan *Plan, stats []*lowrank.Stats, opts Options) *factoring {
	n := 0
	for _, pe := range plan.Entries {
		if pe.Kind.Factored() {
			n++
		}
	}
	conc := max(1, min(opts.Workers, n))
	th := max(1, opts.Workers/conc)
	f := &factoring{slots: make([]chan factorResult, len(plan.Entries)), running: make(chan struct{}, conc)}
	for i, pe := range plan.Entries {
		if pe.Kind.Factored() {
			f.slots[i] = make(chan factorResult, 1)
		}
	}
	if n == 0 {
		return f
	}
	lopts := opts.Factorize
	lopts.Threads = th
	g.Go(func() error {
		for i, pe := range plan.Entries {
			if f.slots[i] == nil {
				continue
			}
			select {
			case f.running <- struct{}{}:
			case <-ctx.Done():
				return nil // the error that cancelled ctx is already recorded
			}
			g.Go(func() error {
				d := m.Tensors[i]
				st := stats[i]
				if c := opts.Calibration; st == nil && c.Layerwise() && c.wants(pe.StatsKey) {
					// Before taking threads: the pass may wait for the
					// encoder to finish the block before this one.
					var err error
					if st, err = c.statsFor(ctx, pe.StatsKey); err != nil {
						if ctx.Err() != nil {
							return nil
						}
						return fmt.Errorf("%s: tensor %q: %w", d.File, d.Name, err)
					}
				}
				if err := cpu.Acquire(ctx, int64(th)); err != nil {
					return nil
				}
				defer cpu.Release(int64(th))
				var r factorResult
				var err error
				r.t, r.data, r.rep, err = factorTensor(ctx, d, pe, st, lopts, th)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("%s: tensor %q: %w", d.File, d.Name, err)
				}
				f.slots[i] <- r
				return nil
			})
		}
		return nil
	})
	return f
}

// result waits for entry i's factorisation and frees its slot; false when
// the conversion was cancelled first.
func (f *factoring) result(ctx context.Context, i int) (factorResult, bool) {
	select {
	case r := <-f.slots[i]:
		<-f.running
		return r, true
	case <-ctx.Done():
		return factorResult{}, false
	}
}

// encodeThreads is the share of the budget a dense tensor's encoding
// takes: vectors and small matrices are not worth a goroutine.
func encodeThreads(d *TensorDesc, budget int) int {
	const perThread = 1 << 16 // elements
	return max(1, min(budget, int(d.NumElements()/perThread)))
}
