package convert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

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
}

// Calibration holds the activation statistics of the uncompressed model,
// one lowrank.Stats per (layer, hook point) input, keyed by StatsKey.
type Calibration struct {
	Stats  map[string]*lowrank.Stats
	Tokens int               // tokens run through the model
	Docs   textdata.DocRange // documents they came from (Last exact)
}

// forMethod returns the statistics for key, failing when the method needs
// them and they are missing.
func (c *Calibration) forMethod(method lowrank.Method, need bool, key string) (*lowrank.Stats, error) {
	var st *lowrank.Stats
	if c != nil {
		st = c.Stats[key]
	}
	if st == nil && need {
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
	rt, err := runtime.Open(tmp, runtime.Options{Threads: opts.Threads})
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	defer rt.Close()
	tok := rt.Tokenizer()
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
	cal := &Calibration{Stats: map[string]*lowrank.Stats{}, Tokens: len(ids), Docs: used}
	for _, k := range keys {
		cal.Stats[k] = nil // created at the first activation, with its width
	}
	var hookErr error
	hook := func(layer int, point string, x []float32, rows, cols int) {
		key := StatsKey(layer, point)
		st, want := cal.Stats[key]
		if !want {
			return
		}
		if st == nil {
			st = lowrank.NewStats(cols)
			cal.Stats[key] = st
		}
		if st.N != cols {
			if hookErr == nil {
				hookErr = fmt.Errorf("calibration: input %s has %d features, earlier %d", key, cols, st.N)
			}
			return
		}
		st.AddBatch(x[:rows*cols], rows)
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
	defer sess.Close()
	sess.SetHook(hook)
	for off := 0; off < len(ids); off += seq {
		sess.Reset()
		end := min(off+seq, len(ids))
		if _, err := sess.Prefill(ctx, ids[off:end], false); err != nil {
			return nil, fmt.Errorf("calibration: tokens %d-%d: %w", off, end, err)
		}
		if hookErr != nil {
			return nil, hookErr
		}
		if opts.Progress != nil {
			opts.Progress(end, len(ids))
		}
	}
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
