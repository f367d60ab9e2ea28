package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
)

// tinySpec describes a small random model for graph tests.
type tinySpec struct {
	name                   string
	arch                   string
	vocab, hidden, ffn     int
	layers, heads, kvHeads int
	ctx                    int
	tied                   bool
	scaling                *format.RopeScaling
	lowRank                bool // store some projections as lowrank / LoRC
}

func (s tinySpec) config() format.ModelConfig {
	c := format.ModelConfig{
		Arch: s.arch, VocabSize: s.vocab, HiddenSize: s.hidden, IntermediateSize: s.ffn,
		NumLayers: s.layers, NumHeads: s.heads, NumKVHeads: s.kvHeads, HeadDim: s.hidden / s.heads,
		ContextLength: s.ctx, RopeTheta: 10000, RopeScaling: s.scaling, NormEps: 1e-5,
		TiedEmbeddings: s.tied, BOS: 1, EOS: []int{2},
	}
	switch s.arch {
	case "gpt2":
		c.NormKind, c.Activation, c.AttnBias, c.RopeTheta = "layernorm", "gelu_tanh", true, 0
	case "qwen2":
		c.NormKind, c.Activation, c.AttnBias, c.NormEps = "rmsnorm", "silu", true, 1e-6
	default:
		c.NormKind, c.Activation = "rmsnorm", "silu"
	}
	return c
}

var tinySpecs = []tinySpec{
	{name: "llama-gqa-untied", arch: "llama", vocab: 37, hidden: 24, ffn: 40, layers: 2, heads: 4, kvHeads: 2, ctx: 64},
	{name: "llama3-scaled-tied", arch: "llama", vocab: 29, hidden: 32, ffn: 48, layers: 2, heads: 2, kvHeads: 1, ctx: 64, tied: true,
		scaling: &format.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 64}},
	{name: "qwen2-bias-tied", arch: "qwen2", vocab: 43, hidden: 32, ffn: 56, layers: 2, heads: 4, kvHeads: 2, ctx: 64, tied: true},
	{name: "gpt2", arch: "gpt2", vocab: 41, hidden: 24, ffn: 96, layers: 2, heads: 3, kvHeads: 3, ctx: 48, tied: true},
}

// buildTiny makes a random model of spec in encoding enc.
func buildTiny(tb testing.TB, s tinySpec, enc quant.Encoding, seed uint64) *MemSource {
	tb.Helper()
	r := newRand(seed)
	c := s.config()
	src := &MemSource{Cfg: c}
	h, hd := s.hidden, s.hidden/s.heads
	q, kv := s.heads*hd, s.kvHeads*hd
	mat := func(name string, rows, cols int, kind int) {
		sd := 1 / math.Sqrt(float64(cols))
		if s.lowRank && kind > 0 {
			src.Add(lowRankT(tb, r, name, enc, rows, cols, max(2, min(rows, cols)/3), kind == 2, sd))
			return
		}
		src.Add(denseT(tb, r, name, enc, rows, cols, sd))
	}
	vec := func(name string, n int, mean, sd float64) { src.Add(vecT(tb, r, name, enc, n, mean, sd)) }
	gpt2 := s.arch == "gpt2"
	src.Add(denseT(tb, r, "token_embd.weight", enc, s.vocab, h, 1))
	if gpt2 {
		src.Add(denseT(tb, r, "position_embd.weight", enc, s.ctx, h, 0.3))
	}
	for l := range s.layers {
		p := fmt.Sprintf("blk.%d.", l)
		vec(p+"attn_norm.weight", h, 1, 0.1)
		vec(p+"ffn_norm.weight", h, 1, 0.1)
		mat(p+"attn_q.weight", q, h, 1)
		mat(p+"attn_k.weight", kv, h, 0)
		mat(p+"attn_v.weight", kv, h, 2)
		mat(p+"attn_output.weight", h, q, 0)
		if c.AttnBias {
			vec(p+"attn_q.bias", q, 0, 0.1)
			vec(p+"attn_k.bias", kv, 0, 0.1)
			vec(p+"attn_v.bias", kv, 0, 0.1)
		}
		mat(p+"ffn_up.weight", s.ffn, h, 1)
		mat(p+"ffn_down.weight", h, s.ffn, 2)
		if gpt2 {
			vec(p+"attn_norm.bias", h, 0, 0.1)
			vec(p+"ffn_norm.bias", h, 0, 0.1)
			vec(p+"attn_output.bias", h, 0, 0.1)
			vec(p+"ffn_up.bias", s.ffn, 0, 0.1)
			vec(p+"ffn_down.bias", h, 0, 0.1)
		} else {
			mat(p+"ffn_gate.weight", s.ffn, h, 0)
		}
	}
	vec("output_norm.weight", h, 1, 0.1)
	if gpt2 {
		vec("output_norm.bias", h, 0, 0.1)
	}
	if !s.tied {
		mat("output.weight", s.vocab, h, 0)
	}
	return src
}

func randTokens(r *rand.Rand, n, vocab int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = r.IntN(vocab)
	}
	return out
}

// refModel is a deliberately plain float64 forward pass written from the
// Hugging Face model definitions (LlamaForCausalLM, Qwen2ForCausalLM,
// GPT2LMHeadModel), independent of the runtime's graph code: no cache, no
// batching, full recomputation over the whole sequence.
type refModel struct {
	tb  testing.TB
	c   format.ModelConfig
	src *MemSource
	w   map[string][]float64
}

func newRefModel(tb testing.TB, src *MemSource) *refModel {
	return &refModel{tb: tb, c: src.Cfg, src: src, w: map[string][]float64{}}
}

// get returns a tensor reconstructed in float64, or nil when absent.
func (m *refModel) get(name string) []float64 {
	if v, ok := m.w[name]; ok {
		return v
	}
	w, ok := m.src.Weights[name]
	if !ok {
		return nil
	}
	v, _, _ := denseOf(m.tb, w)
	m.w[name] = v
	return v
}

func linear(W, b, x []float64, out int) []float64 {
	in := len(x)
	y := make([]float64, out)
	for r := range out {
		var s float64
		for i := range in {
			s += W[r*in+i] * x[i]
		}
		if b != nil {
			s += b[r]
		}
		y[r] = s
	}
	return y
}

func (m *refModel) norm(x, w, b []float64) []float64 {
	n := float64(len(x))
	y := make([]float64, len(x))
	if m.c.NormKind == "layernorm" {
		var mean, v float64
		for _, e := range x {
			mean += e
		}
		mean /= n
		for _, e := range x {
			v += (e - mean) * (e - mean)
		}
		v /= n
		for i, e := range x {
			y[i] = (e-mean)/math.Sqrt(v+m.c.NormEps)*w[i] + b[i]
		}
		return y
	}
	var ms float64
	for _, e := range x {
		ms += e * e
	}
	ms /= n
	for i, e := range x {
		y[i] = e / math.Sqrt(ms+m.c.NormEps) * w[i]
	}
	return y
}

// invFreq follows transformers' _compute_default_rope_parameters and
// _compute_llama3_parameters, in float64.
func refInvFreq(c format.ModelConfig) []float64 {
	d := c.HeadDim
	inv := make([]float64, d/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(d))
	}
	if rs := c.RopeScaling; rs != nil {
		lowW := float64(rs.OriginalMaxPositionEmbeddings) / rs.LowFreqFactor
		highW := float64(rs.OriginalMaxPositionEmbeddings) / rs.HighFreqFactor
		for i, f := range inv {
			wl := 2 * math.Pi / f
			scaled := f
			if wl > lowW {
				scaled = f / rs.Factor
			}
			smooth := (float64(rs.OriginalMaxPositionEmbeddings)/wl - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
			smoothed := (1-smooth)*scaled/rs.Factor + smooth*scaled
			if !(wl < highW) && !(wl > lowW) {
				scaled = smoothed
			}
			inv[i] = scaled
		}
	}
	return inv
}

// rotate applies HF apply_rotary_pos_emb to one head: x·cos + rotate_half(x)·sin
// with cos = cat(cos(θ), cos(θ)), rotate_half(x) = cat(−x2, x1).
func rotate(x []float64, pos int, inv []float64) {
	half := len(x) / 2
	x1 := append([]float64(nil), x[:half]...)
	x2 := append([]float64(nil), x[half:]...)
	for i := range half {
		a := float64(pos) * inv[i]
		c, s := math.Cos(a), math.Sin(a)
		x[i] = x1[i]*c - x2[i]*s
		x[i+half] = x2[i]*c + x1[i]*s
	}
}

// forward returns logits for every position and the inputs of the linear
// layer groups, keyed "layer/point".
func (m *refModel) forward(tokens []int) (logits [][]float64, acts map[string][][]float64) {
	c := m.c
	h, hd := c.HiddenSize, c.HeadDim
	nq, nkv := c.NumHeads, c.NumKVHeads
	T := len(tokens)
	acts = map[string][][]float64{}
	rec := func(l int, p string, x []float64) {
		k := fmt.Sprintf("%d/%s", l, p)
		acts[k] = append(acts[k], x)
	}
	emb := m.get("token_embd.weight")
	xs := make([][]float64, T)
	for t, id := range tokens {
		xs[t] = append([]float64(nil), emb[id*h:(id+1)*h]...)
		if pe := m.get("position_embd.weight"); pe != nil {
			for i := range h {
				xs[t][i] += pe[t*h+i]
			}
		}
	}
	var inv []float64
	if c.Arch != "gpt2" {
		inv = refInvFreq(c)
	}
	ffn := c.IntermediateSize
	for l := range c.NumLayers {
		p := fmt.Sprintf("blk.%d.", l)
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range T {
			xn := m.norm(xs[t], m.get(p+"attn_norm.weight"), m.get(p+"attn_norm.bias"))
			rec(l, "attn_in", xn)
			qs[t] = linear(m.get(p+"attn_q.weight"), m.get(p+"attn_q.bias"), xn, nq*hd)
			ks[t] = linear(m.get(p+"attn_k.weight"), m.get(p+"attn_k.bias"), xn, nkv*hd)
			vs[t] = linear(m.get(p+"attn_v.weight"), m.get(p+"attn_v.bias"), xn, nkv*hd)
			if inv != nil {
				for hh := range nq {
					rotate(qs[t][hh*hd:(hh+1)*hd], t, inv)
				}
				for hh := range nkv {
					rotate(ks[t][hh*hd:(hh+1)*hd], t, inv)
				}
			}
		}
		for t := range T {
			att := make([]float64, nq*hd)
			for hh := range nq {
				g := hh / (nq / nkv) // repeat_kv: query head hh reads kv head hh/(nq/nkv)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					var d float64
					for i := range hd {
						d += qs[t][hh*hd+i] * ks[j][g*hd+i]
					}
					sc[j] = d / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for i := range hd {
						att[hh*hd+i] += sc[j] / sum * vs[j][g*hd+i]
					}
				}
			}
			rec(l, "attn_out_in", att)
			o := linear(m.get(p+"attn_output.weight"), m.get(p+"attn_output.bias"), att, h)
			for i := range h {
				xs[t][i] += o[i]
			}
		}
		for t := range T {
			xn := m.norm(xs[t], m.get(p+"ffn_norm.weight"), m.get(p+"ffn_norm.bias"))
			rec(l, "ffn_in", xn)
			var act []float64
			if c.Arch == "gpt2" {
				act = linear(m.get(p+"ffn_up.weight"), m.get(p+"ffn_up.bias"), xn, ffn)
				for i, v := range act {
					act[i] = 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
				}
			} else {
				g := linear(m.get(p+"ffn_gate.weight"), nil, xn, ffn)
				u := linear(m.get(p+"ffn_up.weight"), nil, xn, ffn)
				act = make([]float64, ffn)
				for i := range act {
					act[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
				}
			}
			rec(l, "ffn_down_in", act)
			d := linear(m.get(p+"ffn_down.weight"), m.get(p+"ffn_down.bias"), act, h)
			for i := range h {
				xs[t][i] += d[i]
			}
		}
	}
	out := m.get("output.weight")
	if c.TiedEmbeddings || out == nil {
		out = emb
	}
	logits = make([][]float64, T)
	for t := range T {
		xn := m.norm(xs[t], m.get("output_norm.weight"), m.get("output_norm.bias"))
		logits[t] = linear(out, nil, xn, c.VocabSize)
	}
	return logits, acts
}
