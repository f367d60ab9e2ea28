package eval

import (
	"context"
	"fmt"
	"time"

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
	Ctx        int        // chunk length in tokens
	Chunks     int        // at most this many chunks (0 = all)
	Convention Convention // default ScoreAll
	// Progress, if set, is called after each chunk.
	Progress func(done, total int)
}

// Report is the outcome of evaluating a candidate against a reference on the
// same tokens.
type Report struct {
	Ctx         int        `json:"ctx"`
	Chunks      int        `json:"chunks"`
	Convention  Convention `json:"convention"`
	Summary     Summary    `json:"summary"`
	ChunkNLL    []float64  `json:"chunk_nll"`     // candidate: Σ −ln p per chunk
	ChunkNLLRef []float64  `json:"chunk_nll_ref"` // reference
	Seconds     float64    `json:"seconds"`
	// TokensPerSecond counts tokens pushed through both models per second.
	TokensPerSecond float64 `json:"tokens_per_second"`
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
	chunks = n / o.Ctx
	if chunks == 0 {
		return 0, fmt.Errorf("text has %d tokens, fewer than one chunk of %d", n, o.Ctx)
	}
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

// CheckCompatible fails when two models cannot be compared token by token.
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
	return nil
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
	if err := CheckCompatible(ref, cand); err != nil {
		return nil, err
	}
	chunks, err := opts.check(ref, len(tokens))
	if err != nil {
		return nil, err
	}
	if err := checkTokens(tokens[:chunks*opts.Ctx], ref.Config().VocabSize); err != nil {
		return nil, err
	}
	rs, err := ref.NewSession(opts.Ctx)
	if err != nil {
		return nil, err
	}
	cs := rs
	if cand != ref {
		if cs, err = cand.NewSession(opts.Ctx); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	rep := &Report{Ctx: opts.Ctx, Chunks: chunks, Convention: opts.Convention}
	var acc Accumulator
	for c := range chunks {
		in, lo, hi := chunkInput(tokens, c, opts.Ctx, opts.Convention, AddedBOS(ref))
		rl, err := prefill(ctx, rs, in)
		if err != nil {
			return nil, fmt.Errorf("reference, chunk %d: %w", c+1, err)
		}
		cl := rl
		if cand != ref {
			if cl, err = prefill(ctx, cs, in); err != nil {
				return nil, fmt.Errorf("candidate, chunk %d: %w", c+1, err)
			}
		}
		var nll, nllRef float64
		for p := lo; p < hi; p++ {
			t := Compare(rl[p], cl[p], tokens[c*opts.Ctx+p+1])
			nll += t.NLL
			nllRef += t.NLLRef
			acc.Add(t)
		}
		rep.ChunkNLL = append(rep.ChunkNLL, nll)
		rep.ChunkNLLRef = append(rep.ChunkNLLRef, nllRef)
		if opts.Progress != nil {
			opts.Progress(c+1, chunks)
		}
	}
	rep.Summary = acc.Summary()
	rep.Seconds = time.Since(start).Seconds()
	passes := 2
	if cand == ref {
		passes = 1
	}
	rep.TokensPerSecond = float64(passes*chunks*opts.Ctx) / rep.Seconds
	return rep, nil
}

// Perplexity runs one model and returns the per-chunk sums of −ln p over the
// scored predictions, the figures ../shared's references record.
func Perplexity(ctx context.Context, m *runtime.Model, tokens []int, opts Options) ([]float64, error) {
	chunks, err := opts.check(m, len(tokens))
	if err != nil {
		return nil, err
	}
	if err := checkTokens(tokens[:chunks*opts.Ctx], m.Config().VocabSize); err != nil {
		return nil, err
	}
	s, err := m.NewSession(opts.Ctx)
	if err != nil {
		return nil, err
	}
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
