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
