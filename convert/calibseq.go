package convert

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// layerPass is layer-by-layer calibration (CalibOptions.Layerwise): the
// hidden states of every calibration sequence are kept at the input of one
// block, `at`. Statistics of block l are collected when the conversion
// first asks for them, by running block l (uncompressed) on those hidden
// states; the hidden states move past block l once the conversion has
// recorded all of l's compressed projections, which then replace l's
// weights for that one run. So each block's statistics see the error of
// the compressed blocks before it, and only one block's statistics are
// held at a time.
type layerPass struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every record
	err     error         // sticky: a failed pass fails every later request

	rt     *runtime.Model
	file   *format.File // the uncompressed model, restored after each block
	sess   *runtime.Session
	hidden [][]float32 // per sequence, tokens×hidden, input of block at
	seqLen []int

	at, statsAt int // hidden is block at's input; stats are of block statsAt (-1: none)
	stats       map[string]*lowrank.Stats
	keyLayer    map[string]int // wanted statistics and their block
	want        []int          // per block: projection tensors to record before moving on
	got         []*runtime.MemSource

	timing  *CalibTiming
	threads int // statistics' budget (0: GOMAXPROCS), the runtime's

	// sequential (CalibOptions.Sequential): block statsAt's statistics
	// are those of one stage (stageOf), stage; else stage is -1 (all).
	sequential bool
	stage      int
	keyPoint   map[string]string // wanted statistics and their hook point
	wantStage  [][len(hookStages)]int

	// asym (CalibOptions.Asymmetric): fpHidden are the uncompressed
	// model's hidden states, at block fpAt's output once fpIn holds that
	// block's uncompressed inputs (by hook point, every token in sequence
	// order); cross holds D = (X − X̃)·X̃ᵀ beside stats.
	asym     bool
	fpHidden [][]float32
	fpAt     int
	fpIn     map[string][]float32
	cross    map[string][]float64
}

// hookStages are a block's projection inputs in the order the block
// computes them: q, k, v read the first; the attention output projection
// the second; gate and up the third; down the fourth.
var hookStages = [...]string{runtime.HookAttnIn, runtime.HookAttnOutIn, runtime.HookFFNIn, runtime.HookFFNDownIn}

// stageOf is point's index in hookStages (-1 when it is none of them).
func stageOf(point string) int {
	for i, p := range hookStages {
		if p == point {
			return i
		}
	}
	return -1
}

// CalibTiming is where calibration's time went.
type CalibTiming struct {
	// Forward is the model's own work over the calibration tokens (in
	// layer-by-layer mode: each block once uncompressed for its
	// statistics, once compressed to move on).
	Forward time.Duration
	// Statistics is the accumulation of XXᵀ (inside Forward's runs but
	// not counted in Forward).
	Statistics time.Duration
}

func (p *layerPass) close() error {
	var err error
	if p.sess != nil {
		p.sess.Close()
	}
	if p.rt != nil {
		err = p.rt.Close()
	}
	if p.file != nil {
		if cerr := p.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// statsFor returns the statistics of key, running the pass up to its block
// (and, sequential, its stage). It waits while the block before, or the
// stages before key's in its block, are not fully recorded.
func (p *layerPass) statsFor(ctx context.Context, key string) (*lowrank.Stats, error) {
	l, ok := p.keyLayer[key]
	if !ok {
		return nil, nil
	}
	stage := -1
	if p.sequential {
		stage = stageOf(p.keyPoint[key])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.err != nil:
			return nil, p.err
		case l < p.at || (l == p.at && p.statsAt == l && stage < p.stage):
			return nil, fmt.Errorf("calibration: the statistics of %s were freed (projections are converted in order)", key)
		case l == p.at && p.statsAt == l && stage == p.stage:
			st := p.stats[key]
			if st == nil || st.Count == 0 {
				return nil, fmt.Errorf("calibration: no finite activations reached %s", key)
			}
			return st, nil
		case l == p.at && p.recordedBefore(l, stage):
			if err := p.collect(ctx, stage); err != nil {
				p.err = err
				return nil, err
			}
		case l != p.at && p.want[p.at] <= len(p.got[p.at].Weights):
			if err := p.advance(ctx); err != nil {
				p.err = err
				return nil, err
			}
		default:
			ch := p.changed
			p.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				p.mu.Lock()
				return nil, context.Cause(ctx)
			}
			p.mu.Lock()
		}
	}
}

// recordedBefore reports whether every projection of block l in a stage
// before stage is recorded (always, for stage ≤ 0).
func (p *layerPass) recordedBefore(l, stage int) bool {
	if stage <= 0 {
		return true
	}
	var have [len(hookStages)]int
	for name := range p.got[l].Weights {
		if _, point, ok := projection(name); ok {
			if s := stageOf(point); s >= 0 {
				have[s]++
			}
		}
	}
	for s := range stage {
		if have[s] < p.wantStage[l][s] {
			return false
		}
	}
	return true
}

// crossFor returns D of key when block at's statistics hold it.
func (p *layerPass) crossFor(key string) []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cross == nil {
		return nil
	}
	return p.cross[key]
}

// record notes the compressed form of tensor t (parts' bytes in data, which
// are copied): the hidden states move past a block when all its
// projections are recorded.
func (p *layerPass) record(t format.Tensor, data [][]byte) {
	layer, _, ok := projection(t.Name)
	if !ok || len(t.Parts) != len(data) {
		return
	}
	w := &runtime.Weight{Name: t.Name, Shape: t.Shape, Kind: t.Kind, Parts: make([]runtime.WeightPart, len(t.Parts))}
	for i, part := range t.Parts {
		w.Parts[i] = runtime.WeightPart{Role: part.Role, Shape: part.Shape, Encoding: part.Encoding, Data: append([]byte(nil), data[i]...)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if layer < p.at || layer >= len(p.got) {
		return
	}
	p.got[layer].Add(w)
	close(p.changed)
	p.changed = make(chan struct{})
}

// run pushes every sequence's hidden states (hidden: p.hidden or
// p.fpHidden) through block at, in place when keep is false, else on a
// copy.
func (p *layerPass) run(ctx context.Context, hidden [][]float32, keep bool) error {
	h := p.rt.Config().HiddenSize
	var scratch []float32
	for i, x := range hidden {
		if keep {
			scratch = append(scratch[:0], x...)
			x = scratch
		}
		for p0 := 0; p0 < p.seqLen[i]; p0 += runtime.PrefillChunk {
			p1 := min(p0+runtime.PrefillChunk, p.seqLen[i])
			if err := p.sess.Block(ctx, p.at, x[p0*h:p1*h], p0); err != nil {
				return fmt.Errorf("calibration: block %d, sequence %d: %w", p.at, i+1, err)
			}
		}
	}
	return nil
}

// collect gathers the statistics of block at (sequential: of one stage,
// with the projections of the stages before it compressed) from the
// block run on the compressed model's hidden states; asymmetric, also D
// against the uncompressed block's inputs.
func (p *layerPass) collect(ctx context.Context, stage int) (err error) {
	if p.asym && p.fpAt != p.at {
		if err := p.captureFP(ctx); err != nil {
			return err
		}
	}
	if p.sequential && stage > 0 {
		src := &runtime.MemSource{Cfg: p.rt.Config()}
		for name, w := range p.got[p.at].Weights {
			if _, point, ok := projection(name); ok && stageOf(point) < stage {
				src.Add(w)
			}
		}
		if err := widenPacked(src); err != nil {
			return fmt.Errorf("calibration: %w", err)
		}
		if err := p.rt.ReplaceBlock(p.at, src); err != nil {
			return fmt.Errorf("calibration: %w", err)
		}
		defer func() {
			if rerr := p.rt.ReplaceBlock(p.at, runtime.FileSource{F: p.file}); rerr != nil && err == nil {
				err = fmt.Errorf("calibration: %w", rerr)
			}
		}()
	}
	p.stats, p.cross, p.statsAt = map[string]*lowrank.Stats{}, nil, -1
	col := &statsCollector{stats: p.stats, threads: p.threads, want: func(key string) bool {
		_, want := p.keyLayer[key]
		return want && (stage < 0 || stageOf(p.keyPoint[key]) == stage)
	}}
	if p.asym {
		p.cross = map[string][]float64{}
		col.fp, col.cross, col.cursor = p.fpIn, p.cross, map[string]int{}
	}
	p.sess.SetHook(col.hook)
	defer p.sess.SetHook(nil)
	t0 := time.Now()
	err = p.run(ctx, p.hidden, true)
	p.timing.Forward += time.Since(t0) - col.time
	p.timing.Statistics += col.time
	if err == nil {
		err = col.err
	}
	if err != nil {
		return err
	}
	p.statsAt, p.stage = p.at, stage
	return nil
}

// captureFP moves the uncompressed model's hidden states through the
// uncompressed block at, keeping the block's wanted inputs in fpIn.
func (p *layerPass) captureFP(ctx context.Context) error {
	tokens := 0
	for _, n := range p.seqLen {
		tokens += n
	}
	p.fpIn = map[string][]float32{}
	p.sess.SetHook(func(layer int, point string, x []float32, rows, cols int) {
		if _, want := p.keyLayer[StatsKey(layer, point)]; !want {
			return
		}
		buf := p.fpIn[point]
		if buf == nil {
			buf = make([]float32, 0, tokens*cols)
		}
		p.fpIn[point] = append(buf, x[:rows*cols]...)
	})
	defer p.sess.SetHook(nil)
	t0 := time.Now()
	err := p.run(ctx, p.fpHidden, false)
	p.timing.Forward += time.Since(t0)
	p.fpAt = p.at
	return err
}

// advance moves the hidden states past block at through its compressed
// projections, then frees them and block at's statistics.
func (p *layerPass) advance(ctx context.Context) error {
	l := p.at
	if err := widenPacked(p.got[l]); err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	if err := p.rt.ReplaceBlock(l, p.got[l]); err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	t0 := time.Now()
	err := p.run(ctx, p.hidden, false)
	if err == nil && p.asym && p.fpAt != l {
		// No statistics were asked of this block: the uncompressed
		// model's hidden states still have to move past it, through
		// the uncompressed block.
		if err = p.rt.ReplaceBlock(l, runtime.FileSource{F: p.file}); err == nil {
			err = p.run(ctx, p.fpHidden, false)
		}
	}
	p.timing.Forward += time.Since(t0)
	if err != nil {
		return err
	}
	// Back to the mapped uncompressed weights, so that the compressed
	// copies can be freed.
	if err := p.rt.ReplaceBlock(l, runtime.FileSource{F: p.file}); err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	p.got[l] = nil
	p.stats, p.statsAt, p.stage = nil, -1, -1
	p.cross, p.fpIn, p.fpAt = nil, nil, -1
	p.at++
	if p.at == len(p.want) {
		p.hidden, p.fpHidden = nil, nil
	}
	return nil
}

// start embeds the calibration sequences (seq tokens each) as block 0's
// input and notes which statistics belong to which block and how many
// projections each block has.
func (p *layerPass) start(ctx context.Context, m *Model, keys []string, ids []int, seq int) error {
	n := m.Config.NumLayers
	p.keyLayer = map[string]int{}
	for l := range n {
		for _, pt := range []string{runtime.HookAttnIn, runtime.HookAttnOutIn, runtime.HookFFNIn, runtime.HookFFNDownIn} {
			p.keyLayer[StatsKey(l, pt)] = l
		}
	}
	wanted := map[string]int{}
	p.keyPoint = map[string]string{}
	for _, k := range keys {
		l, ok := p.keyLayer[k]
		if !ok {
			return fmt.Errorf("calibration: no input %s in a model of %d layers", k, n)
		}
		wanted[k] = l
		for _, pt := range hookStages {
			if StatsKey(l, pt) == k {
				p.keyPoint[k] = pt
			}
		}
	}
	p.keyLayer = wanted
	p.stage, p.fpAt = -1, -1
	p.want = make([]int, n)
	p.wantStage = make([][len(hookStages)]int, n)
	p.got = make([]*runtime.MemSource, n)
	for l := range p.got {
		p.got[l] = &runtime.MemSource{Cfg: p.rt.Config()}
	}
	for _, t := range m.Tensors {
		if l, point, ok := projection(t.Name); ok && l < n {
			p.want[l]++
			if st := stageOf(point); st >= 0 {
				p.wantStage[l][st]++
			}
		}
	}
	h := m.Config.HiddenSize
	for off := 0; off < len(ids); off += seq {
		end := min(off+seq, len(ids))
		x := make([]float32, (end-off)*h)
		if err := p.sess.Embed(x, ids[off:end], 0); err != nil {
			return fmt.Errorf("calibration: tokens %d-%d: %w", off, end, err)
		}
		p.hidden = append(p.hidden, x)
		if p.asym {
			p.fpHidden = append(p.fpHidden, append([]float32(nil), x...))
		}
		p.seqLen = append(p.seqLen, end-off)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// widenPacked replaces the packed dense projections of src (q4, q4s,
// q4nl, …) by their float32 decoding. The calibration runtime multiplies
// packed weights by float32 activations by decoding each tile's rows for
// every token tile, the same float32 rows times the same activations with
// the same kernel as an f32 weight, so the hidden states come out bit for
// bit the same, but each weight is decoded once rather than once per tile
// of tokens. A block's projections in float32 are a few hundred MB at
// most (7B shape: 0.8 GB), held only while the block is run.
func widenPacked(src *runtime.MemSource) error {
	for _, w := range src.Weights {
		if !w.Kind.Dense() || len(w.Parts) != 1 || !w.Parts[0].Encoding.IsPacked() || len(w.Parts[0].Shape) != 2 {
			continue
		}
		p := &w.Parts[0]
		rows, cols := int(p.Shape[0]), int(p.Shape[1])
		f := make([]float32, rows*cols)
		if err := quant.Decode(p.Encoding, f, p.Data, rows, cols); err != nil {
			return fmt.Errorf("%s: %w", w.Name, err)
		}
		// Little-endian hosts use the decoded values' own bytes (no second
		// block-sized buffer), as the safetensors loader does.
		data := float32Bytes(f)
		if !quant.HostLittleEndian {
			data = make([]byte, 4*len(f))
			for i, v := range f {
				binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
			}
		}
		p.Encoding, p.Data = quant.F32, data
	}
	return nil
}
