package runtime

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
)

// benchSpec is a GPT-2-small-sized Llama: dim 768, FFN 2048, 12 layers,
// 12 heads, vocab 32000, tied embeddings (110M parameters).
var benchSpec = format.ModelConfig{
	Arch: "llama", VocabSize: 32000, HiddenSize: 768, IntermediateSize: 2048,
	NumLayers: 12, NumHeads: 12, NumKVHeads: 12, HeadDim: 64, ContextLength: 2048,
	RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu",
	TiedEmbeddings: true, BOS: 1, EOS: []int{2},
}

// buildBench encodes a random model quickly: values come from one pool of
// normals reused at shifting offsets (the kernels do not care about
// independence), and encoding runs in parallel.
func buildBench(b *testing.B, enc quant.Encoding) *MemSource {
	b.Helper()
	r := newRand(1)
	pool := randn(r, 1<<20+7, 1)
	off := 0
	src := &MemSource{Cfg: benchSpec}
	add := func(name string, rows, cols int, mean float64) {
		n := rows * cols
		v := make([]float32, n)
		scale := float32(1 / math.Sqrt(float64(cols)))
		if rows == 1 {
			scale = 0.1
		}
		for i := range v {
			v[i] = float32(mean) + scale*pool[(off+i)%len(pool)]
		}
		off += 7919
		sz, _ := enc.Size(rows, cols)
		data := make([]byte, sz)
		if err := quant.EncodeParallel(context.Background(), enc, data, v, rows, cols, 2); err != nil {
			b.Fatal(err)
		}
		shape := []int64{int64(rows), int64(cols)}
		if rows == 1 {
			shape = []int64{int64(cols)}
		}
		src.Add(DenseWeight(name, shape, enc, data))
	}
	c := benchSpec
	h, f := c.HiddenSize, c.IntermediateSize
	add("token_embd.weight", c.VocabSize, h, 0)
	add("output_norm.weight", 1, h, 1)
	for l := range c.NumLayers {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", 1, h, 1)
		add(p+"ffn_norm.weight", 1, h, 1)
		add(p+"attn_q.weight", h, h, 0)
		add(p+"attn_k.weight", h, h, 0)
		add(p+"attn_v.weight", h, h, 0)
		add(p+"attn_output.weight", h, h, 0)
		add(p+"ffn_gate.weight", f, h, 0)
		add(p+"ffn_up.weight", f, h, 0)
		add(p+"ffn_down.weight", h, f, 0)
	}
	return src
}

// BenchmarkLlama110M reports tokens/s for decode (one token after a
// 64-token context) and for a 128-token prefill.
func BenchmarkLlama110M(b *testing.B) {
	ctx := context.Background()
	for _, enc := range []quant.Encoding{quant.F32, quant.F16, quant.BF16, quant.Q8} {
		var src *MemSource
		get := func(b *testing.B) *MemSource {
			if src == nil {
				src = buildBench(b, enc)
			}
			return src
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/threads=%d/decode", enc, threads), func(b *testing.B) {
				s, prompt := benchSession(b, newModelT(b, get(b), Options{Threads: threads}), 512, 64, 2)
				if _, err := s.Prefill(ctx, prompt, false); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					if s.Len() == s.Cap() {
						s.Reset()
					}
					if _, err := s.Decode(ctx, 3+i%100); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tok/s")
				b.ReportMetric(float64(s.m.ResidentBytes())/(1<<20), "MiB")
			})
			b.Run(fmt.Sprintf("%v/threads=%d/prefill128", enc, threads), func(b *testing.B) {
				s, prompt := benchSession(b, newModelT(b, get(b), Options{Threads: threads}), 128, 128, 3)
				benchPrefills(b, s, prompt)
			})
		}
		src = nil // release this encoding before building the next
	}
}

// benchSession opens a session of maxTokens positions on m (closed when the
// benchmark ends) and draws a prompt of n tokens from seed.
func benchSession(b *testing.B, m *Model, maxTokens, n int, seed uint64) (*Session, []int) {
	b.Helper()
	s, err := m.NewSession(maxTokens)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s, randTokens(newRand(seed), n, m.Config().VocabSize)
}

// benchPrefills times b.N prefills of prompt, each into the emptied session,
// and reports tokens/s.
func benchPrefills(b *testing.B, s *Session, prompt []int) {
	b.Helper()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		s.Reset()
		if _, err := s.Prefill(ctx, prompt, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(prompt)*b.N)/time.Since(start).Seconds(), "tok/s")
}
