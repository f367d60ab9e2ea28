package convert

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
)

// Options tune a conversion run; the zero value is usable.
type Options struct {
	// Workers bounds the goroutines encoding one tensor (default 2, the
	// machine size we target; more only helps on bigger machines).
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
	// from the plan.
	Factorize lowrank.Options
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
	if len(plan.Entries) != len(m.Tensors) {
		return nil, fmt.Errorf("plan has %d tensors, model %d", len(plan.Entries), len(m.Tensors))
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
	// Factored tensors take their own buffers (recycle is nil).
	type job struct {
		t       format.Tensor
		data    [][]byte
		recycle []byte
		dense   bool
	}
	jobs := make(chan job, 1)
	free := make(chan []byte, 2)
	free <- nil
	free <- nil
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for j := range jobs {
			if err == nil {
				if e := w.WriteTensor(j.t, j.data...); e != nil {
					err = fmt.Errorf("%s: writing tensor %q: %w", out, j.t.Name, e)
				}
			}
			if j.dense {
				free <- j.recycle
			}
		}
		writeErr <- err
	}()

	fz := startFactoring(ctx, m, plan, opts)
	defer fz.stop()
	enc := &encoder{workers: opts.Workers, cal: opts.Calibration}
	res := &Result{Path: out, Plan: plan}
	var done int64
	encErr := func() error {
		defer close(jobs)
		for i, pe := range plan.Entries {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("conversion cancelled: %w", err)
			}
			d := m.Tensors[i]
			if d.Name != pe.Name {
				return fmt.Errorf("plan entry %d is %q but the model's tensor is %q", i, pe.Name, d.Name)
			}
			var j job
			if pe.Kind == format.KindDense || pe.Kind == "" {
				buf := <-free
				t, data, err := enc.encode(ctx, d, pe, buf)
				if err != nil {
					free <- buf
					return fmt.Errorf("%s: tensor %q: %w", d.File, d.Name, err)
				}
				j = job{t: t, data: [][]byte{data}, recycle: data, dense: true}
			} else {
				r, err := fz.result(ctx, i)
				if err != nil {
					return fmt.Errorf("%s: tensor %q: %w", d.File, d.Name, err)
				}
				j = job{t: r.t, data: r.data}
				res.LowRank = append(res.LowRank, r.rep)
			}
			jobs <- j
			res.Tensors = append(res.Tensors, j.t)
			done += pe.SourceBytes
			if opts.Progress != nil {
				opts.Progress(Progress{Index: i + 1, Count: len(plan.Entries), Name: d.Name, DoneBytes: done, TotalSourceBytes: plan.SourceBytes})
			}
		}
		return nil
	}()
	if err := <-writeErr; err != nil {
		return nil, err
	}
	if encErr != nil {
		return nil, encErr
	}
	meta := map[string]string{"source_bytes": fmt.Sprint(plan.SourceBytes), "policy": plan.Policy}
	if c := opts.Calibration; c != nil && len(res.LowRank) > 0 {
		meta["calibration"] = fmt.Sprintf("%d tokens from documents %s", c.Tokens, c.Docs)
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
	workers int
	f32     []float32
	// cal, when set, weights the packed encoders' scale search by each
	// input column's mean squared activation.
	cal *Calibration
}

// importance is the per-column weight of the packed encoders' scale search
// for tensor name: the mean squared calibration activation of each input,
// or nil without statistics for it.
func (e *encoder) importance(name string, cols int) []float32 {
	if e.cal == nil {
		return nil
	}
	layer, point, ok := projection(name)
	if !ok {
		return nil
	}
	st := e.cal.Stats[StatsKey(layer, point)]
	if st == nil || st.N != cols || st.Count == 0 {
		return nil
	}
	imp := make([]float32, cols)
	for c := range imp {
		// A column no calibration token ever used still counts a little,
		// so its weights are not left to chance.
		imp[c] = float32(st.XXt[c*cols+c]/float64(st.Count)) + 1e-8
	}
	return imp
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (e *encoder) encode(ctx context.Context, d *TensorDesc, pe PlanEntry, out []byte) (format.Tensor, []byte, error) {
	rows, cols, err := matrixShape(d.Shape)
	if err != nil {
		return format.Tensor{}, nil, err
	}
	t := format.Tensor{
		Name:        d.Name,
		Shape:       append([]int64(nil), d.Shape...),
		Kind:        format.KindDense,
		SourceDType: d.DType,
		Parts:       []format.Part{{Role: "w", Shape: append([]int64(nil), d.Shape...), Encoding: pe.Encoding}},
	}
	if pe.Kind != "" && pe.Kind != format.KindDense {
		return t, nil, fmt.Errorf("a %s tensor reached the dense encoder", pe.Kind)
	}
	out = grow(out, int(pe.Bytes))
	if sameDType(pe.Encoding, d.DType) {
		if sr, ok := d.Raw(); ok && sr.Size() == pe.Bytes {
			// The checkpoint already holds these exact bytes: copy them.
			if _, err := io.ReadFull(sr, out); err != nil {
				return t, nil, fmt.Errorf("reading: %w", err)
			}
			t.Metrics = &format.Metrics{SNRdB: snrExact, Cosine: 1}
			return t, out, nil
		}
	}
	n := rows * cols
	e.f32 = grow(e.f32, n)
	if err := d.Load(ctx, e.f32); err != nil {
		return t, nil, err
	}
	if pe.Encoding == quant.F32 {
		// Widening is exact, so there is nothing to measure.
		if err := quant.EncodeParallel(ctx, pe.Encoding, out, e.f32, rows, cols, e.workers); err != nil {
			return t, nil, err
		}
		t.Metrics = &format.Metrics{SNRdB: snrExact, Cosine: 1}
		return t, out, nil
	}
	var imp []float32
	if pe.Encoding.IsPacked() {
		imp = e.importance(d.Name, cols)
	}
	mt, err := quant.EncodeWeighted(ctx, pe.Encoding, out, e.f32, rows, cols, e.workers, imp)
	if err != nil {
		return t, nil, err
	}
	t.Metrics = toFormatMetrics(mt)
	return t, out, nil
}

// snrExact stands for +Inf dB (no error), which JSON cannot carry.
const snrExact = 999

func sameDType(enc quant.Encoding, dt string) bool {
	switch dt {
	case "F32":
		return enc == quant.F32
	case "F16":
		return enc == quant.F16
	case "BF16":
		return enc == quant.BF16
	}
	return false
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
	return fm
}

// factoring runs the factorisations of a plan ahead of the encoder: up to
// Workers at once, started in plan order, each result held in its entry's
// slot until the encoder takes it. A slot is freed only when its result is
// taken, so at most Workers factored tensors are in memory (being computed
// or waiting), and the encoder, which takes results in plan order, always
// waits on one that has been started.
type factoring struct {
	slots   []chan factorResult
	running chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

type factorResult struct {
	t    format.Tensor
	data [][]byte
	rep  LowRankReport
	err  error
}

func startFactoring(ctx context.Context, m *Model, plan *Plan, opts Options) *factoring {
	ctx, cancel := context.WithCancel(ctx)
	f := &factoring{slots: make([]chan factorResult, len(plan.Entries)), running: make(chan struct{}, opts.Workers),
		cancel: cancel, done: make(chan struct{})}
	for i, pe := range plan.Entries {
		if pe.Kind != "" && pe.Kind != format.KindDense {
			f.slots[i] = make(chan factorResult, 1)
		}
	}
	go func() {
		var wg sync.WaitGroup
		defer func() { wg.Wait(); close(f.done) }()
		for i, pe := range plan.Entries {
			if f.slots[i] == nil {
				continue
			}
			select {
			case f.running <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r factorResult
				defer func() { f.slots[i] <- r }()
				d := m.Tensors[i]
				if d.Name != pe.Name {
					r.err = fmt.Errorf("plan entry %d is %q but the model's tensor is %q", i, pe.Name, d.Name)
					return
				}
				need := pe.Method == lowrank.MethodWhiten || pe.Method == lowrank.MethodASVD || pe.Kind == format.KindLoRC && pe.Whiten
				st, err := opts.Calibration.forMethod(pe.Method, need, pe.StatsKey)
				if err != nil {
					r.err = err
					return
				}
				r.t, r.data, r.rep, r.err = factorTensor(ctx, d, pe, st, opts.Factorize, opts.Workers)
			}()
		}
	}()
	return f
}

// result waits for entry i's factorisation and frees its slot.
func (f *factoring) result(ctx context.Context, i int) (factorResult, error) {
	select {
	case r := <-f.slots[i]:
		<-f.running
		return r, r.err
	case <-ctx.Done():
		return factorResult{}, fmt.Errorf("conversion cancelled: %w", ctx.Err())
	}
}

// stop cancels what is still running and waits for it.
func (f *factoring) stop() {
	f.cancel()
	for {
		select {
		case <-f.done:
			return
		case <-f.running: // let the dispatcher finish if it waits for a slot
		}
	}
}
