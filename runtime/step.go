package runtime

import (
	"context"

	"github.com/shrink-llm/shrink/runtime/simd"
)

// attender is what differs between a forward pass of one session over T
// tokens (prefill, decode) and a Batch step over one token in each of T
// sessions: where each layer's keys go, and attention, which reads each
// sequence's own KV cache. Everything else is one graph, step.layers.
type attender interface {
	// keys is the [T, kvDim] slice that layer l's key projections are
	// written to (a session writes straight into its cache).
	keys(l int) []float32
	// attend turns layer l's projections q, k, v (biases added, no
	// rotary embedding yet) of the T rows into their attention output
	// att ([T, qDim]), writing keys and values to the caches.
	attend(l int, q, k, v, att []float32)
}

// step is the scratch of one forward pass over T rows: x holds the
// embeddings on entry and the residual stream after the last layer.
type step struct {
	m                      *Model
	e                      *exec
	hook                   ActivationHook // nil: none
	T                      int
	x, xn, q, v, att, g, u []float32 // [T, …] views
}

// stepBufs are the activation buffers of forward passes of up to a number
// of rows (a step's [T, …] views are their first T rows) and the rows'
// rotary tables. Sessions and Batches embed them.
type stepBufs struct {
	x, xn, q, v, att, g, u []float32
	cos, sin               []float32
}

// newStepBufs allocates the buffers for T rows (u only for a gated FFN) and
// reserves e's scratch for products of T rows with every matrix.
func (m *Model) newStepBufs(e *exec, T int) stepBufs {
	h := m.cfg.HiddenSize
	bf := stepBufs{
		x:   make([]float32, T*h),
		xn:  make([]float32, T*h),
		q:   make([]float32, T*m.qDim),
		v:   make([]float32, T*m.kvDim),
		att: make([]float32, T*m.qDim),
		g:   make([]float32, T*m.ffn),
	}
	if m.glu {
		bf.u = make([]float32, T*m.ffn)
	}
	half := len(m.invFreq)
	bf.cos = make([]float32, T*half)
	bf.sin = make([]float32, T*half)
	e.reserve(T, m.matrices()...)
	return bf
}

// matrices lists the model's matrices (nil where a layer has none, gate
// in a non-gated MLP).
func (m *Model) matrices() []*Matrix {
	ms := []*Matrix{m.output}
	for i := range m.layers {
		L := &m.layers[i]
		ms = append(ms, L.q, L.k, L.v, L.o, L.gate, L.up, L.down)
	}
	return ms
}

// floats is how many float32 the buffers hold.
func (bf *stepBufs) floats() int {
	return len(bf.x) + len(bf.xn) + len(bf.q) + len(bf.v) + len(bf.att) + len(bf.g) + len(bf.u) + len(bf.cos) + len(bf.sin)
}

// view returns the step of m over T rows x, xn (T×hidden) with the other
// views the first T rows of the buffers.
func (bf *stepBufs) view(m *Model, e *exec, x, xn []float32, T int) step {
	st := step{m: m, e: e, T: T, x: x, xn: xn,
		q: bf.q[:T*m.qDim], v: bf.v[:T*m.kvDim], att: bf.att[:T*m.qDim], g: bf.g[:T*m.ffn]}
	if m.glu {
		st.u = bf.u[:T*m.ffn]
	}
	return st
}

// layers runs every transformer block over the T rows of st.x.
func (st *step) layers(ctx context.Context, a attender) error {
	for l := range st.m.layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		st.block(l, a)
	}
	return nil
}

// block runs transformer block l over the T rows of st.x, in place.
func (st *step) block(l int, a attender) {
	m, T := st.m, st.T
	h := m.cfg.HiddenSize
	x, xn := st.x, st.xn
	eps := float32(m.cfg.NormEps)
	L := &m.layers[l]
	m.norm(xn, x, L.attnNorm, L.attnNormB, T, eps)
	st.call(l, HookAttnIn, xn, h)
	q, k, v := st.q, a.keys(l), st.v
	st.e.mulShared([]*Matrix{L.q, L.k, L.v}, [][]float32{q, k, v}, xn, T)
	addBias(q, L.qb, T)
	addBias(k, L.kb, T)
	addBias(v, L.vb, T)
	a.attend(l, q, k, v, st.att)
	st.call(l, HookAttnOutIn, st.att, m.qDim)
	st.e.mul(L.o, x, st.att, T, true)
	addBias(x, L.ob, T)

	m.norm(xn, x, L.ffnNorm, L.ffnNormB, T, eps)
	st.call(l, HookFFNIn, xn, h)
	g := st.g
	if m.glu {
		u := st.u
		st.e.mulShared([]*Matrix{L.gate, L.up}, [][]float32{g, u}, xn, T)
		addBias(u, L.upb, T)
		// Row by row, as a one-token step sees it: the vector
		// kernel's body and tail may round differently, and a
		// token's result must not depend on its neighbours.
		for t := range T {
			simd.SiLUMul(g[t*m.ffn:(t+1)*m.ffn], u[t*m.ffn:(t+1)*m.ffn])
		}
	} else {
		st.e.mul(L.up, g, xn, T, false)
		addBias(g, L.upb, T)
		for i, gv := range g {
			g[i] = geluTanh(gv)
		}
	}
	st.call(l, HookFFNDownIn, g, m.ffn)
	st.e.mul(L.down, x, g, T, true)
	addBias(x, L.downb, T)
}

func (st *step) call(l int, p string, a []float32, width int) {
	if st.hook != nil {
		st.hook(l, p, a, st.T, width)
	}
}

// embed writes token id's embedding at position pos into x (one row),
// with tmp (one row) and scr (m.embdScratch) as scratch.
func (m *Model) embed(x, tmp []float32, id, pos int, scr []float32) {
	m.embd.row(x, id, scr)
	if m.posEmbd != nil {
		m.posEmbd.row(tmp, pos, scr)
		for i, v := range tmp {
			x[i] += v
		}
	}
}

// norm normalizes each of the T rows of x into y with the model's norm.
func (m *Model) norm(y, x, w, b []float32, T int, eps float32) {
	h := len(w)
	for t := range T {
		if m.rms {
			rmsNorm(y[t*h:(t+1)*h], x[t*h:(t+1)*h], w, eps)
		} else {
			layerNorm(y[t*h:(t+1)*h], x[t*h:(t+1)*h], w, b, eps)
		}
	}
}
