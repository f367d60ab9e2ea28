package eval

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/runtime"
)

// Convention says which predictions of a chunk are scored.
type Convention string

const (
	// ScoreAll scores every next-token prediction inside the chunk (ctx−1).
	ScoreAll Convention = "all"
	// ScoreHalf is llama.cpp's llama-perplexity convention: the chunk's first
	// token is replaced by BOS (when the model has one) and only the tokens
	// at positions ctx/2 … ctx−1 are scored (ctx/2 predictions), so every
	// scored token sees at least half a context.
	ScoreHalf Convention = "half"
)

// Options control a run.
type Options struct {
	Ctx    int // chunk length in tokens
	Chunks int // at most this many chunks (0 = all)
	// First is the index (0-based) of the first chunk evaluated: chunks
	// First … First+Chunks−1 of the stream, so that a slice of a long
	// stream (say one disjoint from calibration text) can be compared.
	First      int
	Convention Convention // default ScoreAll
	// Progress, if set, is called after each chunk.
	Progress func(done, total int)
}

// Report is the outcome of evaluating a candidate against a reference on the
// same tokens.
type Report struct {
	Ref    *ModelInfo `json:"reference,omitempty"`
	Model  *ModelInfo `json:"model,omitempty"`
	Input  *Input     `json:"input,omitempty"`
	Ctx    int        `json:"ctx"`
	Chunks int        `json:"chunks"`
	// FirstChunk is the index of the first chunk evaluated (Options.First).
	FirstChunk int `json:"first_chunk,omitempty"`
	// AvailableChunks is how many chunks the input holds (Chunks is fewer
	// when Options.Chunks limited the run).
	AvailableChunks int        `json:"available_chunks"`
	Convention      Convention `json:"convention"`
	Summary         Summary    `json:"summary"`
	// ChunkCorLnPPL is the Pearson correlation over chunks of the two
	// models' ln PPL (Summary.CorLnPPL is llama.cpp's per-token figure).
	ChunkCorLnPPL float64   `json:"chunk_cor_ln_ppl"`
	ChunkNLL      []float64 `json:"chunk_nll"`     // candidate: Σ −ln p per chunk
	ChunkNLLRef   []float64 `json:"chunk_nll_ref"` // reference
	// Seconds is the time spent on this candidate: the reference's and the
	// candidate's forward passes and the comparison.
	Seconds float64 `json:"seconds"`
	// TokensPerSecond counts tokens pushed through both models per second
	// of Seconds; RefTokensPerSecond and ModelTokensPerSecond are each
	// model's forward passes alone.
	TokensPerSecond      float64 `json:"tokens_per_second"`
	RefTokensPerSecond   float64 `json:"ref_tokens_per_second"`
	ModelTokensPerSecond float64 `json:"model_tokens_per_second"`
	Threads              int     `json:"threads"`
	// Self is set when the candidate was the reference model itself.
	Self bool `json:"self,omitempty"`
	// Exact is set when every product ran with float32 activations
	// (runtime.Options.ExactQ8): the figures then hold the weight error only.
	Exact bool `json:"exact,omitempty"`
}

func (o *Options) check(m *runtime.Model, n int) (chunks int, err error) {
	if o.Convention == "" {
		o.Convention = ScoreAll
	}
	if o.Convention != ScoreAll && o.Convention != ScoreHalf {
		return 0, fmt.Errorf("unknown scoring convention %q (want all or half)", o.Convention)
	}
	if o.Ctx < 4 {
		return 0, fmt.Errorf("context %d too small (want at least 4)", o.Ctx)
	}
	if c := m.Config().ContextLength; c > 0 && o.Ctx > c {
		return 0, fmt.Errorf("context %d exceeds the model's %d", o.Ctx, c)
	}
	if o.Chunks < 0 {
		return 0, fmt.Errorf("chunk limit %d is negative", o.Chunks)
	}
	if o.First < 0 {
		return 0, fmt.Errorf("first chunk %d is negative", o.First)
	}
	chunks = n / o.Ctx
	if chunks == 0 {
		return 0, fmt.Errorf("text has %d tokens, fewer than one chunk of %d", n, o.Ctx)
	}
	if o.First >= chunks {
		return 0, fmt.Errorf("first chunk %d is past the last one: the text has %d chunks of %d tokens (0 … %d)", o.First, chunks, o.Ctx, chunks-1)
	}
	chunks -= o.First
	if o.Chunks > 0 {
		chunks = min(chunks, o.Chunks)
	}
	return chunks, nil
}

// chunkInput returns the tokens fed to the model for chunk c and the range
// [lo, hi) of positions whose next-token prediction is scored.
func chunkInput(tokens []int, c, ctxLen int, conv Convention, bos int) (in []int, lo, hi int) {
	in = append([]int(nil), tokens[c*ctxLen:(c+1)*ctxLen]...)
	if conv == ScoreHalf {
		if bos >= 0 {
			in[0] = bos
		}
		return in, ctxLen/2 - 1, ctxLen - 1
	}
	return in, 0, ctxLen - 1
}

// CheckCompatible fails when two models cannot be compared token by token:
// a compressed model must keep its original's architecture, shapes and
// tokenizer, so any difference means the wrong pair of files was given.
func CheckCompatible(ref, cand *runtime.Model) error {
	rc, cc := ref.Config(), cand.Config()
	if rc.Arch != cc.Arch {
		return fmt.Errorf("architectures differ: reference %s, candidate %s", rc.Arch, cc.Arch)
	}
	if rc.VocabSize != cc.VocabSize {
		return fmt.Errorf("vocabularies differ: reference %d tokens, candidate %d", rc.VocabSize, cc.VocabSize)
	}
	rt, ct := ref.Tokenizer(), cand.Tokenizer()
	if (rt == nil) != (ct == nil) {
		return fmt.Errorf("only one of the models has a tokenizer")
	}
	if rt != nil {
		if rt.VocabSize() != ct.VocabSize() || rt.BOS() != ct.BOS() || rt.EOS() != ct.EOS() {
			return fmt.Errorf("tokenizers differ (vocab %d/%d, bos %d/%d, eos %d/%d)",
				rt.VocabSize(), ct.VocabSize(), rt.BOS(), ct.BOS(), rt.EOS(), ct.EOS())
		}
		for id := range rt.VocabSize() {
			if rt.Token(id) != ct.Token(id) {
				return fmt.Errorf("tokenizers differ at id %d: %q vs %q", id, rt.Token(id), ct.Token(id))
			}
		}
	}
	if shape(rc) != shape(cc) {
		return fmt.Errorf("architectures differ: reference %s %s, candidate %s %s", rc.Arch, shape(rc), cc.Arch, shape(cc))
	}
	return nil
}

func shape(c format.ModelConfig) string {
	return fmt.Sprintf("(%d layers, hidden %d, %d heads, %d kv heads, ffn %d, context %d)",
		c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKVHeads, c.IntermediateSize, c.ContextLength)
}

// start checks the options against m and the token stream, and returns the
// number of chunks to evaluate, the stream from the first of them on, and a
// session on m for one chunk.
func (o *Options) start(m *runtime.Model, tokens []int) (chunks int, from []int, s *runtime.Session, err error) {
	if chunks, err = o.check(m, len(tokens)); err != nil {
		return 0, nil, nil, err
	}
	from = tokens[o.First*o.Ctx:]
	if err := checkTokens(from[:chunks*o.Ctx], m.Config().VocabSize); err != nil {
		return 0, nil, nil, err
	}
	if s, err = m.NewSession(o.Ctx); err != nil {
		return 0, nil, nil, err
	}
	return chunks, from, s, nil
}

func checkTokens(tokens []int, vocab int) error {
	for i, t := range tokens {
		if t < 0 || t >= vocab {
			return fmt.Errorf("token %d at position %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	return nil
}

// Run evaluates cand against ref on tokens: both models see exactly the same
// chunks, and every scored position is compared distribution to distribution.
// cand may be ref itself, which gives KLD 0 and PPL ratio 1 exactly.
func Run(ctx context.Context, ref, cand *runtime.Model, tokens []int, opts Options) (*Report, error) {
	reps, err := RunMany(ctx, ref, []*runtime.Model{cand}, tokens, opts)
	if err != nil {
		return nil, err
	}
	return reps[0], nil
}

// candState is one candidate's running evaluation.
type candState struct {
	m       *runtime.Model
	s       *runtime.Session
	acc     Accumulator
	rep     *Report
	fwd     time.Duration // its forward passes
	compare time.Duration
}

// RunMany evaluates several candidates against one reference in a single
// pass over the chunks: the reference runs once per chunk and every
// candidate is compared with its logits, which are held for one chunk only
// (ctx × vocab floats), so a sweep costs one reference pass in total.
func RunMany(ctx context.Context, ref *runtime.Model, cands []*runtime.Model, tokens []int, opts Options) ([]*Report, error) {
	if len(cands) == 0 {
		return nil, fmt.Errorf("no candidate models to evaluate")
	}
	for i, c := range cands {
		if err := CheckCompatible(ref, c); err != nil {
			if len(cands) > 1 {
				return nil, fmt.Errorf("candidate %d: %w", i+1, err)
			}
			return nil, err
		}
	}
	chunks, tokens, rs, err := opts.start(ref, tokens)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	states := make([]*candState, len(cands))
	for i, c := range cands {
		st := &candState{m: c, rep: &Report{Ctx: opts.Ctx, Chunks: chunks, FirstChunk: opts.First, AvailableChunks: len(tokens)/opts.Ctx + opts.First,
			Convention: opts.Convention, Threads: c.Threads()}}
		if c != ref {
			if st.s, err = c.NewSession(opts.Ctx); err != nil {
				return nil, err
			}
			defer st.s.Close()
		}
		states[i] = st
	}
	bos := AddedBOS(ref)
	var refTime time.Duration
	var toks []Token
	var prepared []RefPosition
	for c := range chunks {
		in, lo, hi := chunkInput(tokens, c, opts.Ctx, opts.Convention, bos)
		t0 := time.Now()
		rl, err := prefill(ctx, rs, in)
		if err != nil {
			return nil, fmt.Errorf("reference, chunk %d: %w", c+1, err)
		}
		prepared = prepareChunk(prepared, rl[lo:hi], max(1, ref.Threads()))
		refTime += time.Since(t0)
		targets := tokens[c*opts.Ctx+lo+1 : c*opts.Ctx+hi+1]
		for i, st := range states {
			cl := rl
			if st.s != nil {
				t0 = time.Now()
				if cl, err = prefill(ctx, st.s, in); err != nil {
					what := "candidate"
					if len(states) > 1 {
						what = fmt.Sprintf("candidate %d", i+1)
					}
					return nil, fmt.Errorf("%s, chunk %d: %w", what, c+1, err)
				}
				st.fwd += time.Since(t0)
			}
			t0 = time.Now()
			toks = compareChunk(toks, prepared, cl[lo:hi], targets, max(1, st.m.Threads()))
			var nll, nllRef float64
			for _, t := range toks {
				nll += t.NLL
				nllRef += t.NLLRef
				st.acc.Add(t)
			}
			st.rep.ChunkNLL = append(st.rep.ChunkNLL, nll)
			st.rep.ChunkNLLRef = append(st.rep.ChunkNLLRef, nllRef)
			st.compare += time.Since(t0)
		}
		if opts.Progress != nil {
			opts.Progress(c+1, chunks)
		}
	}
	reps := make([]*Report, len(states))
	n := float64(chunks * opts.Ctx)
	for i, st := range states {
		r := st.rep
		r.Summary = st.acc.Summary()
		r.ChunkCorLnPPL = chunkCorrelation(r.ChunkNLL, r.ChunkNLLRef)
		total := refTime + st.fwd + st.compare
		r.Seconds = total.Seconds()
		passes := 2.0
		if st.s == nil {
			passes = 1 // the candidate is the reference: one forward pass
		}
		r.TokensPerSecond = rate(passes*n, total)
		r.RefTokensPerSecond = rate(n, refTime)
		r.ModelTokensPerSecond = r.RefTokensPerSecond
		if st.s != nil {
			r.ModelTokensPerSecond = rate(n, st.fwd)
		}
		r.Self = st.s == nil
		reps[i] = r
	}
	return reps, nil
}

func rate(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

// compareChunk scores every position of one chunk. The positions are
// independent, so they are split among workers; the result keeps position
// order so that the statistics do not depend on the thread count.
func compareChunk(dst []Token, ref []RefPosition, cand [][]float32, targets []int, workers int) []Token {
	n := len(ref)
	dst = append(dst[:0], make([]Token, n)...)
	parallel(n, workers, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			dst[p] = ref[p].Compare(cand[p], targets[p])
		}
	})
	return dst
}

// prepareChunk derives every position's reference probabilities once per
// chunk for all candidates, reusing dst's storage.
func prepareChunk(dst []RefPosition, ref [][]float32, workers int) []RefPosition {
	n := len(ref)
	if cap(dst) < n {
		dst = append(dst[:cap(dst)], make([]RefPosition, n-cap(dst))...)
	}
	dst = dst[:n]
	parallel(n, workers, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			dst[p].Prepare(ref[p], dst[p].p)
		}
	})
	return dst
}

// parallel runs f over [0,n) split into at most workers contiguous ranges.
func parallel(n, workers int, f func(lo, hi int)) {
	workers = min(workers, n)
	if workers <= 1 {
		f(0, n)
		return
	}
	var g errgroup.Group
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		g.Go(func() error {
			f(lo, hi)
			return nil
		})
	}
	_ = g.Wait() // f cannot fail
}

// chunkCorrelation is the Pearson correlation of per-chunk ln PPL. Every
// chunk scores the same number of predictions, so ln PPL is the NLL sum
// scaled by a constant, which the correlation ignores. Identical series
// correlate 1 even when they have no spread; otherwise an undefined
// correlation (fewer than two chunks, no spread) is reported as 0.
func chunkCorrelation(a, b []float64) float64 {
	if slices.Equal(a, b) && len(a) > 0 {
		return 1
	}
	n := float64(len(a))
	if len(a) < 2 {
		return 0
	}
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= n
	mb /= n
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa == 0 || sbb == 0 {
		return 0
	}
	return sab / math.Sqrt(saa*sbb)
}

// Perplexity runs one model and returns the per-chunk sums of −ln p over the
// scored predictions, the figures ../shared's references record.
func Perplexity(ctx context.Context, m *runtime.Model, tokens []int, opts Options) ([]float64, error) {
	chunks, tokens, s, err := opts.start(m, tokens)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := make([]float64, 0, chunks)
	for c := range chunks {
		in, lo, hi := chunkInput(tokens, c, opts.Ctx, opts.Convention, AddedBOS(m))
		logits, err := prefill(ctx, s, in)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", c+1, err)
		}
		var nll float64
		for p := lo; p < hi; p++ {
			nll += NLL(logits[p], tokens[c*opts.Ctx+p+1])
		}
		out = append(out, nll)
		if opts.Progress != nil {
			opts.Progress(c+1, chunks)
		}
	}
	return out, nil
}

func prefill(ctx context.Context, s *runtime.Session, in []int) ([][]float32, error) {
	s.Reset()
	return s.Prefill(ctx, in, true)
}

// AddedBOS is the BOS id the model's tokenizer puts in front of a sequence,
// or −1 when it adds none (GPT-2). llama.cpp's half convention replaces a
// chunk's first token with BOS only for such models (llama_vocab_get_add_bos).
func AddedBOS(m *runtime.Model) int {
	tok := m.Tokenizer()
	if tok == nil {
		return m.Config().BOS
	}
	with, err1 := tok.Encode("a", true)
	without, err2 := tok.Encode("a", false)
	if err1 != nil || err2 != nil || len(with) != len(without)+1 || with[0] != tok.BOS() {
		return -1
	}
	return with[0]
}
