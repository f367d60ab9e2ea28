package convert

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"time"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// CalibOptions choose the calibration text and how much of it is used.
type CalibOptions struct {
	// Text is the corpus; it is cut into documents at DocSep lines
	// (default textdata.DefaultDocSep; "-" keeps the text whole).
	Text string
	// Documents, when set, replaces Text: the documents of the range Docs,
	// already split (the CLI streams them from the file; see
	// textdata.ScanDocuments).
	Documents []string
	DocSep    string
	// Docs selects documents (1-based, inclusive), so that calibration and
	// evaluation text need not overlap.
	Docs textdata.DocRange
	// Tokens is how many tokens are run (default 8192). The framed stream
	// (BOS + document + EOS, as eval frames text) is cut at Tokens.
	Tokens int
	// Seq is the tokens per sequence (default 256, at most the model's
	// context); each sequence starts with an empty cache.
	Seq int
	// Keys are the statistics to collect (Candidate.StatsKey); nil = every
	// hook point of every layer.
	Keys []string
	// TempDir holds the temporary uncompressed model (default os.TempDir()).
	TempDir string
	// Threads for the runtime (0 = all CPUs).
	Threads int
	// Progress, if set, is called after each sequence with tokens done.
	Progress func(done, total int)
	// Layerwise collects each block's statistics only when the conversion
	// asks for them, with the blocks before it already compressed (see
	// layerPass): memory holds one block's statistics, and each block is
	// fitted to the inputs the compressed model will give it. The
	// Calibration then serves exactly one Convert, which must be given
	// it, and must be closed. False runs the uncompressed model once and
	// keeps every statistic (what SVD-LLM describes, and what a sweep
	// reuses across conversions).
	Layerwise bool
	// Sequential (layer by layer only) also orders the inputs inside a
	// block: the attention input's statistics come from the block as it
	// is, the attention output projection's once q, k and v are
	// compressed, the FFN input's once the attention output projection is
	// too, the down projection's once gate and up are: each projection is
	// fitted to the inputs the compressed model gives it.
	Sequential bool
	// Asymmetric (layer by layer only) also runs the uncompressed model on
	// the same tokens and accumulates, for each input, D = (X − X̃)·X̃ᵀ
	// beside X̃X̃ᵀ (X the uncompressed model's input, X̃ the compressed
	// model's): what GPTQ's asymmetric target (gptq.Options.Cross) needs.
	// It holds the uncompressed model's hidden states and one block's
	// inputs (tokens × the four input widths floats) besides.
	Asymmetric bool
}

// CalibPass is how calibration statistics are collected (--calib-pass).
type CalibPass string

const (
	// CalibPassLayer: layer by layer, each block's inputs from the
	// compressed blocks before it (CalibOptions.Layerwise).
	CalibPassLayer CalibPass = "layer"
	// CalibPassSequential: layer by layer, and inside each block each
	// input from the block's projections before it compressed
	// (CalibOptions.Sequential).
	CalibPassSequential CalibPass = "sequential"
	// CalibPassModel: one pass over the uncompressed model.
	CalibPassModel CalibPass = "model"
)

// ParseCalibPass reads a --calib-pass value ("" is CalibPassLayer).
func ParseCalibPass(s string) (CalibPass, error) {
	return parseChoice("calibration pass", s, CalibPassLayer, CalibPassLayer, CalibPassSequential, CalibPassModel)
}

// Calibration holds the activation statistics of the uncompressed model,
// one lowrank.Stats per (layer, hook point) input, keyed by StatsKey.
type Calibration struct {
	Stats  map[string]*lowrank.Stats // nil in layer-by-layer mode
	Tokens int                       // tokens run through the model
	Docs   textdata.DocRange         // documents they came from (Last exact)
	// Timing of the calibration's stages so far (layer-by-layer: it grows
	// during Convert).
	Timing CalibTiming
	pass   *layerPass
}

// Layerwise reports whether the statistics are collected layer by layer
// during the conversion.
func (c *Calibration) Layerwise() bool { return c != nil && c.pass != nil }

// Asymmetric reports whether the calibration also collects D = (X − X̃)·X̃ᵀ
// for each input (CalibOptions.Asymmetric).
func (c *Calibration) Asymmetric() bool { return c != nil && c.pass != nil && c.pass.asym }

// Close releases a layer-by-layer calibration's model and hidden states.
func (c *Calibration) Close() error {
	if c == nil || c.pass == nil {
		return nil
	}
	return c.pass.close()
}

// statsFor returns the statistics of key, or nil when none are collected
// for it. In layer-by-layer mode it may run the pass up to key's block.
func (c *Calibration) statsFor(ctx context.Context, key string) (*lowrank.Stats, error) {
	if c == nil {
		return nil, nil
	}
	if c.pass != nil {
		return c.pass.statsFor(ctx, key)
	}
	return c.Stats[key], nil
}

// wants reports whether statistics for key are (or will be) collected.
func (c *Calibration) wants(key string) bool {
	if c == nil {
		return false
	}
	if c.pass != nil {
		_, ok := c.pass.keyLayer[key]
		return ok
	}
	return c.Stats[key] != nil
}

// crossFor returns D = (X − X̃)·X̃ᵀ of key (CalibOptions.Asymmetric), or
// nil when it is not collected. Call it after statsFor(key).
func (c *Calibration) crossFor(key string) []float64 {
	if c == nil || c.pass == nil {
		return nil
	}
	return c.pass.crossFor(key)
}

// record passes a converted tensor to a layer-by-layer pass.
func (c *Calibration) record(t format.Tensor, data [][]byte) {
	if c != nil && c.pass != nil {
		c.pass.record(t, data)
	}
}

// forMethod returns the statistics for key, failing when the method needs
// them and they are missing.
func (c *Calibration) forMethod(method lowrank.Method, need bool, key string) (*lowrank.Stats, error) {
	var st *lowrank.Stats
	if c != nil && c.pass == nil {
		st = c.Stats[key]
	}
	if st == nil && need && !c.wants(key) {
		return nil, fmt.Errorf("%s needs calibration statistics for input %s (--calib)", method, key)
	}
	return st, nil
}

// Calibrate runs the uncompressed model over calibration text and
// accumulates the statistics of each linear layer's input. The model is
// converted losslessly (the checkpoint's own float encoding, or f32 when it
// mixes them) to a temporary .shrink in opts.TempDir, run by the runtime
// with an activation hook, and deleted afterwards.
func Calibrate(ctx context.Context, m *Model, opts CalibOptions) (*Calibration, error) {
	if opts.Tokens <= 0 {
		opts.Tokens = 8192
	}
	if opts.DocSep == "" {
		opts.DocSep = textdata.DefaultDocSep
	} else if opts.DocSep == "-" {
		opts.DocSep = ""
	}
	docs := opts.Documents
	if docs == nil {
		var err error
		if docs, err = opts.Docs.Select(textdata.SplitDocuments(opts.Text, opts.DocSep)); err != nil {
			return nil, fmt.Errorf("calibration text: %w", err)
		}
	}
	// Named with the pid, so the next conversion into the folder removes it
	// should this process be killed before its deferred removal runs.
	dir, err := format.MkdirTemp(opts.TempDir, "shrink-calib")
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	defer os.RemoveAll(dir)
	enc := losslessEncoding(m.Tensors)
	plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: enc, Embed: &enc, Output: &enc})
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	tmp := filepath.Join(dir, "reference.shrink")
	if _, err := Convert(ctx, m, plan, tmp, Options{Workers: opts.Threads}); err != nil {
		return nil, fmt.Errorf("calibration: converting the uncompressed model: %w", err)
	}
	f, err := format.Open(tmp)
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	tok, err := runtime.LoadTokenizer(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("calibration: tokenizer: %w", err)
	}
	rt, err := runtime.New(runtime.FileSource{F: f}, tok, runtime.Options{Threads: opts.Threads, ExactQ8: true})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("calibration: %w", err)
	}
	pass := &layerPass{rt: rt, file: f, statsAt: -1, changed: make(chan struct{})}
	defer func() {
		if pass != nil {
			pass.close()
		}
	}()
	if tok == nil {
		return nil, fmt.Errorf("calibration: the model has no tokenizer to read the text with")
	}
	// Framing stops after the document that reaches the budget, so the
	// range actually used is known.
	ids, n, err := textdata.FrameLimit(tok, docs, opts.Tokens)
	if err != nil {
		return nil, fmt.Errorf("calibration text: %w", err)
	}
	used := opts.Docs
	used.First = max(used.First, 1)
	used.Last = used.First - 1 + n
	ids = ids[:min(len(ids), opts.Tokens)]
	if len(ids) == 0 {
		return nil, fmt.Errorf("calibration text holds no tokens")
	}

	cfg := m.Config
	widths := map[string]int{
		runtime.HookAttnIn:    cfg.HiddenSize,
		runtime.HookAttnOutIn: cfg.NumHeads * cfg.HeadDim,
		runtime.HookFFNIn:     cfg.HiddenSize,
		runtime.HookFFNDownIn: cfg.IntermediateSize,
	}
	keys := opts.Keys
	if keys == nil {
		for l := range cfg.NumLayers {
			for p := range widths {
				keys = append(keys, StatsKey(l, p))
			}
		}
	}
	seq := opts.Seq
	if seq <= 0 {
		seq = 256
	}
	if c := cfg.ContextLength; c > 0 {
		seq = min(seq, c)
	}
	sess, err := rt.NewSession(seq)
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	pass.sess = sess
	if (opts.Sequential || opts.Asymmetric) && !opts.Layerwise {
		return nil, fmt.Errorf("calibration: sequential or asymmetric statistics need the layer-by-layer pass")
	}
	if opts.Layerwise {
		pass.sequential, pass.asym = opts.Sequential, opts.Asymmetric
		if err := pass.start(ctx, m, keys, ids, seq); err != nil {
			return nil, err
		}
		cal := &Calibration{Tokens: len(ids), Docs: used, pass: pass}
		pass.timing = &cal.Timing
		pass.threads = opts.Threads
		pass = nil // now the Calibration's, released by its Close
		return cal, nil
	}
	cal := &Calibration{Stats: map[string]*lowrank.Stats{}, Tokens: len(ids), Docs: used}
	for _, k := range keys {
		cal.Stats[k] = nil // created at the first activation, with its width
	}
	col := &statsCollector{stats: cal.Stats, threads: opts.Threads, want: func(key string) bool {
		_, want := cal.Stats[key]
		return want
	}}
	sess.SetHook(col.hook)
	start := time.Now()
	for off := 0; off < len(ids); off += seq {
		sess.Reset()
		end := min(off+seq, len(ids))
		if _, err := sess.Prefill(ctx, ids[off:end], false); err != nil {
			return nil, fmt.Errorf("calibration: tokens %d-%d: %w", off, end, err)
		}
		if col.err != nil {
			return nil, col.err
		}
		if opts.Progress != nil {
			opts.Progress(end, len(ids))
		}
	}
	cal.Timing = CalibTiming{Forward: time.Since(start) - col.time, Statistics: col.time}
	var missing []string
	for k, st := range cal.Stats {
		if st == nil || st.Count == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("calibration: no finite activations reached %v", missing)
	}
	return cal, nil
}

// statsCollector is the session hook that adds each wanted input batch to
// its statistics, created at the first batch with its width. It keeps the
// first width mismatch as err and the time spent on statistics.
type statsCollector struct {
	stats   map[string]*lowrank.Stats
	want    func(key string) bool
	threads int
	err     error
	time    time.Duration

	// fp, when set, holds the uncompressed model's inputs of the same
	// tokens by hook point (cursor: how far each is consumed); each
	// batch then also adds (x_fp − x)·xᵀ to cross[key] (D of the
	// asymmetric target), skipping the tokens where either is not finite.
	fp     map[string][]float32
	cursor map[string]int
	cross  map[string][]float64
}

func (c *statsCollector) hook(layer int, point string, x []float32, rows, cols int) {
	key := StatsKey(layer, point)
	if !c.want(key) {
		return
	}
	t0 := time.Now()
	st := c.stats[key]
	if st == nil {
		st = lowrank.NewStats(cols)
		st.Threads = c.threads
		c.stats[key] = st
	}
	if st.N != cols {
		if c.err == nil {
			c.err = fmt.Errorf("calibration: input %s has %d features, earlier %d", key, cols, st.N)
		}
		return
	}
	st.AddBatch(x[:rows*cols], rows)
	if c.fp != nil {
		c.addCross(key, point, x, rows, cols)
	}
	c.time += time.Since(t0)
}

// addCross adds (X_fp − X)ᵀ·X over the batch's rows to cross[key].
func (c *statsCollector) addCross(key, point string, x []float32, rows, cols int) {
	fx, at := c.fp[point], c.cursor[point]
	if at+rows*cols > len(fx) {
		if c.err == nil {
			c.err = fmt.Errorf("calibration: input %s: the uncompressed model gave %d values, the compressed one more", key, len(fx))
		}
		return
	}
	fx = fx[at : at+rows*cols]
	c.cursor[point] = at + rows*cols
	d := c.cross[key]
	if d == nil {
		d = make([]float64, cols*cols)
		c.cross[key] = d
	}
	dx := make([]float64, 0, rows*cols)
	xq := make([]float64, 0, rows*cols)
	for r := range rows {
		q, f := x[r*cols:(r+1)*cols], fx[r*cols:(r+1)*cols]
		if !finite32(q) || !finite32(f) {
			continue
		}
		for j := range cols {
			dx = append(dx, float64(f[j])-float64(q[j]))
			xq = append(xq, float64(q[j]))
		}
	}
	if k := len(dx) / max(cols, 1); k > 0 {
		th := c.threads
		if th <= 0 {
			th = goruntime.GOMAXPROCS(0)
		}
		lowrank.Gemm(th, true, false, cols, cols, k, 1, dx, cols, xq, cols, 1, d, cols)
	}
}

func finite32(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// losslessEncoding is the float encoding that holds every tensor of the
// checkpoint exactly: its own dtype when all share one, else f32.
func losslessEncoding(ts []*TensorDesc) quant.Encoding {
	enc := quant.Encoding{}
	for _, t := range ts {
		e, ok := t.DType.Encoding()
		if !ok || e == quant.F32 {
			return quant.F32
		}
		if enc != (quant.Encoding{}) && e != enc {
			return quant.F32
		}
		enc = e
	}
	if enc == (quant.Encoding{}) {
		return quant.F32
	}
	return enc
}
