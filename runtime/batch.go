package runtime

import (
	"context"
	"fmt"
	"slices"

	"github.com/shrink-llm/shrink/format"
)

// Batch advances several sessions of one model by one token each with a
// single pass over the weights: every matrix product is one matrix-matrix
// product with a row per session (the prefill tile kernels), and only
// attention, which reads each session's own KV cache, runs per session.
// Decoding is bound by reading the weights, so n sessions in one Batch step
// cost about as much memory traffic as one Decode.
//
// Every session gets exactly the logits Session.Decode would give it, bit
// for bit, and so the same tokens as decoding alone (Model.Generate,
// `shrink run`): q8 products run on the register-tiled matrix-matrix
// kernel, whose result for each token equals the one-token kernel's (see
// simd.MatQ8), so a q8 model gets the full arithmetic reuse of prefill;
// the tiles of other encodings run token by token through the one-token
// kernels (each row block is still read from memory once per step, the
// other sessions' rows reading it from cache). SetTiled(true) lets those
// other encodings use their register tiles too: more arithmetic per weight
// byte, but a different summation order, so their logits differ from
// Decode's in the last bits and a near-tie can pick another token.
//
// A Batch holds scratch for at most its capacity of sessions; it is not safe
// for concurrent use and must not run at the same time as any of the
// sessions it is given. Activation hooks are not called for batched steps.
type Batch struct {
	m   *Model
	e   *exec
	max int

	stepBufs
	k      []float32 // [max, kvDim]: the step's keys, before they go to each session's cache
	logits []float32 // [max, vocab]
	last   []float32 // [max, hidden]: each session's last row, for the head
	pos    []int     // each row's position in its session
	n      []int     // each session's rows in the step under way
	flat   []int     // Step's tokens, one after another
	out    [][]float32
	ss     []*Session // the sessions of the step under way
	aj     batchAttn
}

// NewBatch returns a Batch for up to maxSeqs sessions per step.
func (m *Model) NewBatch(maxSeqs int) (*Batch, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if maxSeqs <= 0 {
		return nil, fmt.Errorf("batch of %d sessions: must be at least 1", maxSeqs)
	}
	T := maxSeqs
	b := &Batch{m: m, e: newExec(m.pool, m.opts.ExactQ8), max: T}
	b.e.perToken = true
	b.stepBufs = m.newStepBufs(b.e, T)
	b.k = make([]float32, T*m.kvDim)
	b.logits = make([]float32, T*m.cfg.VocabSize)
	b.last = make([]float32, T*m.cfg.HiddenSize)
	b.pos = make([]int, T)
	b.n = make([]int, T)
	b.flat = make([]int, 0, T)
	b.out = make([][]float32, T)
	return b, nil
}

// TokensIndependent reports whether every product of the model gives each
// token of a step the bits it would get in any other step (q8 and q4s on
// the interleaved kernels; see Step).
func (b *Batch) TokensIndependent() bool {
	for _, mm := range b.m.matrices() {
		if mm == nil {
			continue
		}
		for _, d := range mm.denses() {
			if !d.tokensIndependent() || b.e.exactQ8 && d.quantized() {
				return false
			}
		}
	}
	return true
}

// SetTiled chooses the register-tiled kernels for every encoding (true)
// or only where they are exact, q8 (false, the default), for later steps.
func (b *Batch) SetTiled(tiled bool) { b.e.perToken = !tiled }

// Cap is the most sessions one step takes.
func (b *Batch) Cap() int { return b.max }

// Decode appends tokens[i] to ss[i] for every i and returns each session's
// logits for its next token. The slices belong to the Batch and are
// overwritten by the next Decode. Every session must be open, belong to the
// Batch's model, appear once and have room for one more token; on an error
// before the forward pass no session changes. If ctx ends during the pass
// the sessions are left unusable for further tokens (their caches are
// partly written): Reset them.
func (b *Batch) Decode(ctx context.Context, ss []*Session, tokens []int) ([][]float32, error) {
	if len(ss) != len(tokens) {
		return nil, fmt.Errorf("batch decode: %d sessions and %d tokens (want the same, at least one)", len(ss), len(tokens))
	}
	rows := b.n[:0]
	for range ss {
		rows = append(rows, 1)
	}
	return b.step(ctx, ss, tokens, rows[:len(ss)])
}

// Step is Decode with several tokens for some sessions: toks[i] (at least
// one token) is appended to ss[i], all of them in one pass over the
// weights, and each session gets the logits of its last token. A prompt
// chunk then rides along with the other sessions' decoding instead of
// costing a pass of its own. The tokens of all sessions together must fit
// the Batch's capacity. With TokensIndependent, a session's logits are
// bit for bit those of Session.Prefill of the same tokens (its attention
// runs over them as Prefill's does); otherwise only single tokens are
// exact (see the Batch doc).
func (b *Batch) Step(ctx context.Context, ss []*Session, toks [][]int) ([][]float32, error) {
	if len(ss) != len(toks) {
		return nil, fmt.Errorf("batch step: %d sessions and %d token lists (want the same)", len(ss), len(toks))
	}
	if len(ss) > b.max {
		return nil, fmt.Errorf("batch step: %d sessions, the batch holds %d rows", len(ss), b.max)
	}
	flat := b.flat[:0]
	n := b.n[:len(ss)]
	for i, t := range toks {
		n[i] = len(t)
		if len(flat)+len(t) > b.max {
			return nil, fmt.Errorf("batch step: more than the batch's %d rows", b.max)
		}
		flat = append(flat, t...)
	}
	return b.step(ctx, ss, flat, n)
}

// step checks and runs a step of n[i] tokens for session i, the tokens of
// all sessions one after another in tokens.
func (b *Batch) step(ctx context.Context, ss []*Session, tokens []int, n []int) ([][]float32, error) {
	T := len(ss)
	if T == 0 {
		return nil, fmt.Errorf("batch decode: no sessions")
	}
	if len(tokens) > b.max {
		return nil, fmt.Errorf("batch decode: %d rows, the batch holds %d", len(tokens), b.max)
	}
	off := 0
	for i, s := range ss {
		if s.m != b.m {
			return nil, fmt.Errorf("batch decode: session %d belongs to another model", i)
		}
		if err := s.check(tokens[off : off+n[i]]); err != nil {
			return nil, fmt.Errorf("batch decode: session %d: %w", i, err)
		}
		off += n[i]
		for _, o := range ss[:i] {
			if o == s {
				return nil, fmt.Errorf("batch decode: session %d appears twice", i)
			}
		}
	}
	for i, s := range ss {
		s.ensure(n[i]) // its attention scratch for n[i] queries (allocates only for prompt chunks)
	}
	if err := b.forward(ctx, ss, tokens); err != nil {
		return nil, err
	}
	v := b.m.cfg.VocabSize
	for i := range T {
		b.out[i] = b.logits[i*v : (i+1)*v : (i+1)*v]
	}
	return b.out[:T], nil
}

// forward is Session.forward for n[i] tokens in each session i.
func (b *Batch) forward(ctx context.Context, ss []*Session, tokens []int) (err error) {
	if ferr := guardFaults(func() { err = b.forwardMapped(ctx, ss, tokens) }); ferr != nil {
		return ferr
	}
	return err
}

// forwardMapped is forward; it reads the mapped weights, so it runs under
// guardFaults.
func (b *Batch) forwardMapped(ctx context.Context, ss []*Session, tokens []int) error {
	m := b.m
	T := len(tokens)
	h := m.cfg.HiddenSize
	st := b.view(m, b.e, b.x[:T*h], b.xn[:T*h], T)
	half := len(m.invFreq)
	r := 0
	for i, s := range ss {
		for j := range b.n[i] {
			p := s.n + j
			b.pos[r] = p
			m.embed(st.x[r*h:(r+1)*h], st.xn[r*h:(r+1)*h], tokens[r], p, s.rowScr)
			if m.rope {
				ropeTable(b.cos[r*half:(r+1)*half], b.sin[r*half:(r+1)*half], m.invFreq, p, 1)
			}
			r++
		}
	}
	b.ss = ss
	defer func() { b.ss = nil }()
	if err := st.layers(ctx, b); err != nil {
		return err
	}
	// The head reads each session's last row only.
	S := len(ss)
	last := st.x
	if S != T {
		last = b.last[:S*h]
		r = 0
		for i := range ss {
			r += b.n[i]
			copy(last[i*h:(i+1)*h], st.x[(r-1)*h:r*h])
		}
	}
	m.norm(st.xn[:S*h], last, m.outNorm, m.outNormB, S, float32(m.cfg.NormEps))
	b.e.mul(m.output, b.logits[:S*m.cfg.VocabSize], st.xn[:S*h], S, false)
	for i, s := range ss {
		s.n += b.n[i]
	}
	return nil
}

// keys is attender.keys: the batch's scratch, copied into each session's
// cache by attend once the rotary embedding is applied.
func (b *Batch) keys(int) []float32 { return b.k[:b.rows()*b.m.kvDim] }

// rows is the row count of the step under way.
func (b *Batch) rows() int {
	T := 0
	for _, n := range b.n[:len(b.ss)] {
		T += n
	}
	return T
}

// attend is attender.attend: each session's own attention over its cache,
// with its own scratch, for its one token; the heads of all the sessions
// form one pool dispatch (one wake-up of the workers per layer rather than
// one per session).
func (b *Batch) attend(l int, q, k, v, att []float32) {
	m := b.m
	qd, kvd, half := m.qDim, m.kvDim, len(m.invFreq)
	work := 0
	j := &b.aj
	j.ss, j.heads = b.ss, m.cfg.NumHeads
	j.first = j.first[:0]
	items := 0
	r0 := 0
	for i, s := range b.ss {
		T := b.n[i]
		for r := r0; r < r0+T; r++ {
			p := b.pos[r]
			qi, ki := q[r*qd:(r+1)*qd], k[r*kvd:(r+1)*kvd]
			if m.rope {
				c, sn := b.cos[r*half:(r+1)*half], b.sin[r*half:(r+1)*half]
				applyRope(qi, m.cfg.NumHeads, m.cfg.HeadDim, c, sn)
				applyRope(ki, m.cfg.NumKVHeads, m.cfg.HeadDim, c, sn)
			}
			copy(s.kc[l][p*kvd:(p+1)*kvd], ki)
			vc := s.vc[l]
			for c, e := range v[r*kvd : (r+1)*kvd] {
				vc[c*s.max+p] = e
			}
		}
		copy(s.q[:T*qd], q[r0*qd:(r0+T)*qd])
		// As Session.attention sets it up for T tokens from the first
		// row's position.
		p0 := b.pos[r0]
		s.aj.l, s.aj.p0, s.aj.T = l, p0, T
		s.aj.nTokBlock = (T + attnTokBlock - 1) / attnTokBlock
		j.first = append(j.first, items)
		items += j.heads * s.aj.nTokBlock
		work += T * (p0 + T) * qd
		r0 += T
	}
	if m.pool.threads == 1 || work < inlineWork {
		for blk := range items {
			j.run(blk, m.pool.threads-1)
		}
	} else {
		m.pool.run(&b.e.t, j, items)
	}
	j.ss = nil
	r0 = 0
	for i, s := range b.ss {
		T := b.n[i]
		copy(att[r0*qd:(r0+T)*qd], s.att[:T*qd])
		r0 += T
	}
}

// batchAttn is the attention of a Batch step: session i's items (head ×
// token block, as its own attention numbers them) start at first[i], each
// computed exactly as that session's own attention computes it (its
// attnJob, its scratch per worker).
type batchAttn struct {
	ss    []*Session
	heads int
	first []int
}

func (j *batchAttn) run(block, worker int) {
	i, _ := slices.BinarySearch(j.first, block+1)
	i--
	j.ss[i].aj.run(block-j.first[i], worker)
}

// Blob returns a copy of a named blob of the .shrink file the model was
// opened from (tokenizer_config.json, say); ok is false when the model was
// not opened from a file or the file has no such blob.
func (m *Model) Blob(name string) (data []byte, ok bool, err error) {
	f, isFile := m.file.(*format.File)
	if !isFile || !f.HasBlob(name) {
		return nil, false, nil
	}
	data, err = f.Blob(name)
	return data, err == nil, err
}
