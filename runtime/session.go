package runtime

import (
	"context"
	"fmt"
	"math"

	"github.com/shrink-llm/shrink/runtime/simd"
)

// Session is one sequence being processed: its KV cache (float32) and
// scratch. A session is not safe for concurrent use; several sessions of one
// model may run concurrently.
type Session struct {
	m   *Model
	max int
	n   int
	kc  [][]float32 // per layer, [max, kvDim]
	// vc is stored transposed, per layer [kvHeads, headDim, max], so that
	// the attention-weighted sum of values is one dot product per output
	// element over contiguous positions.
	vc   [][]float32
	hook ActivationHook
	e    *exec

	cap int // tokens the scratch below is sized for
	stepBufs
	scores []float32 // [threads, attnTokBlock, max]
	logits []float32 // decode logits, [vocab]
	rowScr []float32
	aj     attnJob
	p0, T  int // the forward pass under way: first position, tokens
	bytes  int64
	closed bool
}

// NewSession starts an empty sequence whose KV cache holds maxTokens
// positions; 0 means the model's full context.
func (m *Model) NewSession(maxTokens int) (*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	ctxLen := m.cfg.ContextLength
	if maxTokens == 0 {
		maxTokens = ctxLen
	}
	if maxTokens < 0 || maxTokens > ctxLen {
		return nil, fmt.Errorf("session of %d tokens: must be between 1 and the model context of %d", maxTokens, ctxLen)
	}
	s := &Session{m: m, max: maxTokens, hook: m.opts.Hook, e: newExec(m.pool, m.opts.ExactQ8)}
	L := len(m.layers)
	s.kc = make([][]float32, L)
	s.vc = make([][]float32, L)
	for l := range L {
		s.kc[l] = make([]float32, maxTokens*m.kvDim)
		s.vc[l] = make([]float32, maxTokens*m.kvDim)
	}
	s.scores = make([]float32, m.pool.threads*attnTokBlock*maxTokens)
	s.logits = make([]float32, m.cfg.VocabSize)
	s.rowScr = make([]float32, m.embdScratch)
	s.aj.s = s
	s.bytes = m.sessionCacheBytes(maxTokens)
	m.sessionBytes.Add(s.bytes)
	s.ensure(1) // adds the scratch to both counts
	return s, nil
}

// SessionBytes is the memory a session of maxTokens positions (0: the
// model's context) holds for one-token steps: its KV cache, attention
// scores, logits and scratch. A server sizing a pool of sessions checks it
// before creating any.
func (m *Model) SessionBytes(maxTokens int) int64 {
	if maxTokens <= 0 || maxTokens > m.cfg.ContextLength {
		maxTokens = m.cfg.ContextLength
	}
	h := m.cfg.HiddenSize
	scratch := 2*h + 2*m.qDim + m.kvDim + 2*m.ffn + len(m.invFreq)
	return m.sessionCacheBytes(maxTokens) + 4*int64(scratch)
}

// sessionCacheBytes is a session's memory apart from its per-step scratch.
func (m *Model) sessionCacheBytes(maxTokens int) int64 {
	n := int64(maxTokens)
	kv := 2 * int64(len(m.layers)) * n * int64(m.kvDim)
	scores := int64(m.pool.threads*attnTokBlock) * n
	return 4 * (kv + scores + int64(m.cfg.VocabSize) + int64(m.embdScratch))
}

// ensure sizes the scratch for batches of T tokens.
func (s *Session) ensure(T int) {
	if T <= s.cap {
		return
	}
	m := s.m
	old := s.scratchBytes()
	s.stepBufs = m.newStepBufs(s.e, T)
	s.cap = T
	diff := s.scratchBytes() - old
	s.bytes += diff
	if !s.closed {
		m.sessionBytes.Add(diff)
	}
}

func (s *Session) scratchBytes() int64 {
	n := s.floats() + cap(s.e.xs) + cap(s.e.tmp)
	return int64(4*n + cap(s.e.xq))
}

// SetHook replaces the session's activation hook (nil disables it).
func (s *Session) SetHook(h ActivationHook) { s.hook = h }

// Len is the number of tokens in the cache.
func (s *Session) Len() int { return s.n }

// Cap is the number of tokens the cache can hold.
func (s *Session) Cap() int { return s.max }

// Reset empties the cache; the memory is kept for reuse.
func (s *Session) Reset() { s.n = 0 }

// Close releases the session's memory from the model's accounting.
func (s *Session) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.m.sessionBytes.Add(-s.bytes)
	s.kc, s.vc = nil, nil
}

func (s *Session) check(tokens []int) error {
	if s.closed {
		return fmt.Errorf("runtime: session is closed")
	}
	if s.m.closed.Load() {
		return ErrClosed
	}
	if len(tokens) == 0 {
		return fmt.Errorf("no tokens to process")
	}
	if s.n+len(tokens) > s.max {
		return fmt.Errorf("%d tokens plus the %d already in the session exceed its capacity of %d (model context %d)",
			len(tokens), s.n, s.max, s.m.cfg.ContextLength)
	}
	v := s.m.cfg.VocabSize
	for i, t := range tokens {
		if t < 0 || t >= v {
			return fmt.Errorf("token id %d at position %d is outside the vocabulary (size %d)", t, i, v)
		}
	}
	return nil
}

// Prefill appends tokens to the sequence, pushing them through the graph as
// a matrix (in chunks of PrefillChunk), and returns logits: one slice per
// position when allLogits, else only the last position's. The returned
// slices belong to the caller.
func (s *Session) Prefill(ctx context.Context, tokens []int, allLogits bool) ([][]float32, error) {
	if err := s.check(tokens); err != nil {
		return nil, err
	}
	v := s.m.cfg.VocabSize
	var back []float32
	var out [][]float32
	if allLogits {
		back = make([]float32, len(tokens)*v)
		out = make([][]float32, len(tokens))
		for i := range out {
			out[i] = back[i*v : (i+1)*v : (i+1)*v]
		}
	} else {
		back = make([]float32, v)
		out = [][]float32{back}
	}
	for off := 0; off < len(tokens); off += PrefillChunk {
		end := min(off+PrefillChunk, len(tokens))
		var lg []float32
		switch {
		case allLogits:
			lg = back[off*v : end*v]
		case end == len(tokens):
			lg = back
		}
		if err := s.forward(ctx, tokens[off:end], lg, allLogits); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Decode appends one token and returns the logits for the next. The slice is
// owned by the session and overwritten by the next Decode. After the first
// call it allocates nothing.
func (s *Session) Decode(ctx context.Context, token int) ([]float32, error) {
	var one [1]int
	one[0] = token
	if err := s.check(one[:]); err != nil {
		return nil, err
	}
	if err := s.forward(ctx, one[:], s.logits, false); err != nil {
		return nil, err
	}
	return s.logits, nil
}

// forward runs tokens (at most s.cap after ensure) at positions s.n… and
// appends them to the cache. When logits is non-nil it receives the logits
// of every token (all) or of the last one.
func (s *Session) forward(ctx context.Context, tokens []int, logits []float32, all bool) (err error) {
	if ferr := guardFaults(func() { err = s.forwardMapped(ctx, tokens, logits, all) }); ferr != nil {
		return ferr
	}
	return err
}

// forwardMapped is forward; it reads the mapped weights, so it runs under
// guardFaults.
func (s *Session) forwardMapped(ctx context.Context, tokens []int, logits []float32, all bool) error {
	m := s.m
	T := len(tokens)
	s.ensure(T)
	h := m.cfg.HiddenSize
	p0 := s.n
	st := s.step(s.x[:T*h], s.xn[:T*h], p0, T)
	for t, id := range tokens {
		m.embed(st.x[t*h:(t+1)*h], st.xn[:h], id, p0+t, s.rowScr)
	}
	if m.rope {
		half := len(m.invFreq)
		ropeTable(s.cos[:T*half], s.sin[:T*half], m.invFreq, p0, T)
	}
	if err := st.layers(ctx, s); err != nil {
		return err
	}
	x, xn := st.x, st.xn
	eps := float32(m.cfg.NormEps)
	if logits != nil {
		if all {
			m.norm(xn, x, m.outNorm, m.outNormB, T, eps)
			s.e.mul(m.output, logits[:T*m.cfg.VocabSize], xn, T, false)
		} else {
			last := x[(T-1)*h : T*h]
			m.norm(xn[:h], last, m.outNorm, m.outNormB, 1, eps)
			s.e.mul(m.output, logits[:m.cfg.VocabSize], xn[:h], 1, false)
		}
	}
	s.n += T
	return nil
}

// step is the graph step over the T rows of x (positions p0…) with the
// session's scratch (xn: T×hidden) and hook; it sets the positions keys
// and attend work on.
func (s *Session) step(x, xn []float32, p0, T int) step {
	st := s.view(s.m, s.e, x, xn, T)
	st.hook = s.hook
	s.p0, s.T = p0, T
	return st
}

// block runs transformer block l over the T rows of x (positions p0…, the
// rotary tables already set for them), in place; xn is T×hidden scratch.
func (s *Session) block(l int, x, xn []float32, p0, T int) {
	st := s.step(x, xn, p0, T)
	st.block(l, s)
}

// keys is attender.keys: the session's own cache rows of the step.
func (s *Session) keys(l int) []float32 {
	kvd := s.m.kvDim
	return s.kc[l][s.p0*kvd : (s.p0+s.T)*kvd]
}

// attend is attender.attend for the step's T tokens at positions s.p0…;
// the keys are already in the cache (keys), q is s.q and att s.att.
func (s *Session) attend(l int, q, k, v, _ []float32) {
	m := s.m
	p0, T := s.p0, s.T
	vc := s.vc[l]
	for t := range T {
		for i, e := range v[t*m.kvDim : (t+1)*m.kvDim] {
			vc[i*s.max+p0+t] = e
		}
	}
	if m.rope {
		half := len(m.invFreq)
		hd := m.cfg.HeadDim
		for t := range T {
			c, sn := s.cos[t*half:(t+1)*half], s.sin[t*half:(t+1)*half]
			applyRope(q[t*m.qDim:(t+1)*m.qDim], m.cfg.NumHeads, hd, c, sn)
			applyRope(k[t*m.kvDim:(t+1)*m.kvDim], m.cfg.NumKVHeads, hd, c, sn)
		}
	}
	s.attention(l, p0, T)
}

// rmsNorm is x·rsqrt(mean(x²)+eps)·w. The mean of squares is accumulated in
// float64 and rounded to float32 (transformers computes it in float32 with a
// pairwise reduction; float64 is at least as close to the exact value).
func rmsNorm(y, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	variance := float32(ss / float64(len(x)))
	r := float32(1 / math.Sqrt(float64(variance+eps)))
	for i, v := range x {
		y[i] = w[i] * (v * r)
	}
}

// layerNorm is (x−mean)/sqrt(var+eps)·w + b with the biased variance, as
// torch.nn.LayerNorm; statistics in float64.
func layerNorm(y, x, w, b []float32, eps float32) {
	n := float64(len(x))
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / n
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	r := 1 / math.Sqrt(ss/n+float64(eps))
	for i, v := range x {
		o := (float64(v) - mean) * r * float64(w[i])
		if b != nil {
			o += float64(b[i])
		}
		y[i] = float32(o)
	}
}

// addBias adds b to each of the T rows of x; a nil b is zero.
func addBias(x, b []float32, T int) {
	if b == nil {
		return
	}
	n := len(b)
	for t := range T {
		r := x[t*n : (t+1)*n]
		for i, v := range b {
			r[i] += v
		}
	}
}

// geluTanh is GPT-2's gelu_new: 0.5x(1+tanh(√(2/π)(x+0.044715x³))).
func geluTanh(x float32) float32 {
	v := float64(x)
	return float32(0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))))
}

// attnTokBlock is the number of query tokens one attention work item covers.
const attnTokBlock = 8

// attnJob computes causal attention of T new tokens (positions p0…) for one
// layer, split into head × token-block items.
type attnJob struct {
	s         *Session
	l, p0, T  int
	nTokBlock int
}

func (s *Session) attention(l, p0, T int) {
	j := &s.aj
	j.l, j.p0, j.T = l, p0, T
	j.nTokBlock = (T + attnTokBlock - 1) / attnTokBlock
	n := s.m.cfg.NumHeads * j.nTokBlock
	work := T * (p0 + T) * s.m.qDim
	if s.m.pool.threads == 1 || work < inlineWork {
		for b := range n {
			j.run(b, s.m.pool.threads-1)
		}
		return
	}
	s.m.pool.run(&s.e.t, j, n)
}

func (j *attnJob) run(block, worker int) {
	s := j.s
	m := s.m
	c := &m.cfg
	hd := c.HeadDim
	head := block % c.NumHeads
	tb := block / c.NumHeads
	kvh := head / (c.NumHeads / c.NumKVHeads)
	kc, vc := s.kc[j.l], s.vc[j.l]
	scale := float32(1 / math.Sqrt(float64(hd)))
	t0, t1 := tb*attnTokBlock, min((tb+1)*attnTokBlock, j.T)
	// The block's queries against every position the last of them sees,
	// as one matrix product: scores[t, p] = q_t·k_p (positions past a
	// token's own are computed, then given zero weight).
	np := j.p0 + t1
	sc := s.scores[worker*attnTokBlock*s.max:][:(t1-t0)*np]
	simd.MatF32(sc, np, kc[kvh*hd:], m.kvDim, s.q[t0*m.qDim+head*hd:], m.qDim, np, t1-t0, hd, false)
	for t := t0; t < t1; t++ {
		w := sc[(t-t0)*np : (t-t0+1)*np]
		npos := j.p0 + t + 1
		simd.Softmax(w[:npos], scale)
		clear(w[npos:])
	}
	// out[t, i] = Σ_p w[t, p]·v[p, i]; the value cache is stored
	// transposed (row kvh·hd+i holds v[·, i]), so this is again a matrix
	// product with the cache rows as weights.
	simd.MatF32(s.att[t0*m.qDim+head*hd:], m.qDim, vc[kvh*hd*s.max:], s.max, sc, np, hd, t1-t0, np, false)
}
