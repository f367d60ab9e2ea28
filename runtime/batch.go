package runtime

import (
	"context"
	"fmt"

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
	pos    []int
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
	b.pos = make([]int, T)
	b.out = make([][]float32, T)
	return b, nil
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
	T := len(ss)
	if T == 0 || T != len(tokens) {
		return nil, fmt.Errorf("batch decode: %d sessions and %d tokens (want the same, at least one)", T, len(tokens))
	}
	if T > b.max {
		return nil, fmt.Errorf("batch decode: %d sessions, the batch holds %d", T, b.max)
	}
	for i, s := range ss {
		if s.m != b.m {
			return nil, fmt.Errorf("batch decode: session %d belongs to another model", i)
		}
		if err := s.check(tokens[i : i+1]); err != nil {
			return nil, fmt.Errorf("batch decode: session %d: %w", i, err)
		}
		for _, o := range ss[:i] {
			if o == s {
				return nil, fmt.Errorf("batch decode: session %d appears twice", i)
			}
		}
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

// forward is Session.forward for one token in each of T sessions.
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
	T := len(ss)
	h := m.cfg.HiddenSize
	st := b.view(m, b.e, b.x[:T*h], b.xn[:T*h], T)
	half := len(m.invFreq)
	for i, s := range ss {
		p := s.n
		b.pos[i] = p
		m.embed(st.x[i*h:(i+1)*h], st.xn[i*h:(i+1)*h], tokens[i], p, s.rowScr)
		if m.rope {
			ropeTable(b.cos[i*half:(i+1)*half], b.sin[i*half:(i+1)*half], m.invFreq, p, 1)
		}
	}
	b.ss = ss
	defer func() { b.ss = nil }()
	if err := st.layers(ctx, b); err != nil {
		return err
	}
	m.norm(st.xn, st.x, m.outNorm, m.outNormB, T, float32(m.cfg.NormEps))
	b.e.mul(m.output, b.logits[:T*m.cfg.VocabSize], st.xn, T, false)
	for _, s := range ss {
		s.n++
	}
	return nil
}

// keys is attender.keys: the batch's scratch, copied into each session's
// cache by attend once the rotary embedding is applied.
func (b *Batch) keys(int) []float32 { return b.k[:len(b.ss)*b.m.kvDim] }

// attend is attender.attend: each session's own attention over its cache,
// with its own scratch, for its one token; the heads of all the sessions
// form one pool dispatch (one wake-up of the workers per layer rather than
// one per session).
func (b *Batch) attend(l int, q, k, v, att []float32) {
	m := b.m
	qd, kvd, half := m.qDim, m.kvDim, len(m.invFreq)
	work := 0
	for i, s := range b.ss {
		p := b.pos[i]
		qi, ki := q[i*qd:(i+1)*qd], k[i*kvd:(i+1)*kvd]
		if m.rope {
			c, sn := b.cos[i*half:(i+1)*half], b.sin[i*half:(i+1)*half]
			applyRope(qi, m.cfg.NumHeads, m.cfg.HeadDim, c, sn)
			applyRope(ki, m.cfg.NumKVHeads, m.cfg.HeadDim, c, sn)
		}
		copy(s.kc[l][p*kvd:(p+1)*kvd], ki)
		vc := s.vc[l]
		for j, e := range v[i*kvd : (i+1)*kvd] {
			vc[j*s.max+p] = e
		}
		copy(s.q[:qd], qi)
		// As Session.attention sets it up for one token at p.
		s.aj.l, s.aj.p0, s.aj.T, s.aj.nTokBlock = l, p, 1, 1
		work += (p + 1) * qd
	}
	j := &b.aj
	j.ss, j.heads = b.ss, m.cfg.NumHeads
	n := len(b.ss) * j.heads
	if m.pool.threads == 1 || work < inlineWork {
		for blk := range n {
			j.run(blk, m.pool.threads-1)
		}
	} else {
		m.pool.run(&b.e.t, j, n)
	}
	j.ss = nil
	for i, s := range b.ss {
		copy(att[i*qd:(i+1)*qd], s.att[:qd])
	}
}

// batchAttn is the attention of a Batch step: item b is head b mod heads
// of session b / heads, each computed exactly as that session's own
// attention computes it (its attnJob, its scratch per worker).
type batchAttn struct {
	ss    []*Session
	heads int
}

func (j *batchAttn) run(block, worker int) {
	j.ss[block/j.heads].aj.run(block%j.heads, worker)
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
