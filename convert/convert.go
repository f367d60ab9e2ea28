package convert

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/shrink-llm/shrink/format"
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
	type job struct {
		t    format.Tensor
		data []byte
		file string
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
				if e := w.WriteTensor(j.t, j.data); e != nil {
					err = fmt.Errorf("%s: writing tensor %q: %w", out, j.t.Name, e)
				}
			}
			free <- j.data
		}
		writeErr <- err
	}()

	enc := &encoder{workers: opts.Workers}
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
			buf := <-free
			t, data, err := enc.encode(ctx, d, pe, buf)
			if err != nil {
				free <- buf
				return fmt.Errorf("%s: tensor %q: %w", d.File, d.Name, err)
			}
			jobs <- job{t: t, data: data}
			res.Tensors = append(res.Tensors, t)
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
	mt, err := quant.EncodeMeasured(ctx, pe.Encoding, out, e.f32, rows, cols, e.workers)
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
