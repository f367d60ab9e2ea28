package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

func newModelT(tb testing.TB, src WeightSource, opts Options) *Model {
	tb.Helper()
	m, err := New(src, nil, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func prefillT(tb testing.TB, m *Model, tokens []int) [][]float32 {
	tb.Helper()
	s, err := m.NewSession(len(tokens))
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	out, err := s.Prefill(context.Background(), tokens, true)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func maxDiffRows(got [][]float32, want [][]float64) float64 {
	var d float64
	for t := range want {
		d = max(d, maxAbsDiff32(got[t], want[t]))
	}
	return d
}

// TestForwardMatchesReference checks every family in every encoding against
// the float64 reference on the same (decoded) weights, including the
// activations handed to the hook. q8 runs its exact (float32-activation)
// path here; the int8-activation path is checked separately.
func TestForwardMatchesReference(t *testing.T) {
	encs := []quant.Encoding{quant.F32, quant.F16, quant.BF16, quant.Q8Group(32)}
	for si, spec := range tinySpecs {
		for _, lowRank := range []bool{false, true} {
			for ei, enc := range encs {
				spec := spec
				spec.lowRank = lowRank
				name := fmt.Sprintf("%s/%v/lowrank=%v", spec.name, enc, lowRank)
				t.Run(name, func(t *testing.T) {
					seed := uint64(100*si + 10*ei + 1)
					src := buildTiny(t, spec, enc, seed)
					r := newRand(seed)
					tokens := randTokens(r, 13, spec.vocab)
					want, wantActs := newRefModel(t, src).forward(tokens)
					got := map[string][][]float32{}
					hook := func(l int, p string, x []float32, rows, cols int) {
						k := fmt.Sprintf("%d/%s", l, p)
						for i := range rows {
							got[k] = append(got[k], append([]float32(nil), x[i*cols:(i+1)*cols]...))
						}
					}
					threads := 1 + ei%2
					m := newModelT(t, src, Options{Threads: threads, ExactQ8: true, Hook: hook})
					// Two prefill calls: the second chunk attends to the cache.
					s, err := m.NewSession(0)
					if err != nil {
						t.Fatal(err)
					}
					a, err := s.Prefill(context.Background(), tokens[:5], true)
					if err != nil {
						t.Fatal(err)
					}
					b, err := s.Prefill(context.Background(), tokens[5:], true)
					if err != nil {
						t.Fatal(err)
					}
					logits := append(a, b...)
					if d := maxDiffRows(logits, want); d > 1e-4 {
						t.Fatalf("logits differ from reference by %g", d)
					}
					if len(got) != len(wantActs) {
						t.Fatalf("hook saw %d points, want %d", len(got), len(wantActs))
					}
					for k, rows := range wantActs {
						if len(got[k]) != len(rows) {
							t.Fatalf("hook %s: %d rows, want %d", k, len(got[k]), len(rows))
						}
						if d := maxDiffRows(got[k], rows); d > 1e-4 {
							t.Fatalf("hook %s differs from reference by %g", k, d)
						}
					}
				})
			}
		}
	}
}

// TestQ8FastPathNearReference bounds the extra error of int8 activations.
func TestQ8FastPathNearReference(t *testing.T) {
	for _, spec := range tinySpecs {
		for _, g := range []int{32, 64, 128} {
			t.Run(fmt.Sprintf("%s/g%d", spec.name, g), func(t *testing.T) {
				src := buildTiny(t, spec, quant.Q8Group(g), 7)
				tokens := randTokens(newRand(7), 11, spec.vocab)
				want, _ := newRefModel(t, src).forward(tokens)
				got := prefillT(t, newModelT(t, src, Options{Threads: 2}), tokens)
				var scale float64
				for _, row := range want {
					for _, v := range row {
						scale = max(scale, math.Abs(v))
					}
				}
				if d := maxDiffRows(got, want); d > 0.03*scale || d == 0 {
					t.Fatalf("q8 fast path differs from reference by %g (logit scale %g)", d, scale)
				}
			})
		}
	}
}

// TestPrefillEqualsDecode: one batched prefill gives the same logits as
// feeding the tokens one at a time.
func TestPrefillEqualsDecode(t *testing.T) {
	for _, spec := range tinySpecs {
		for _, enc := range []quant.Encoding{quant.F32, quant.Q8} {
			t.Run(spec.name+"/"+enc.String(), func(t *testing.T) {
				src := buildTiny(t, spec, enc, 11)
				tokens := randTokens(newRand(11), 21, spec.vocab)
				m := newModelT(t, src, Options{Threads: 2})
				batch := prefillT(t, m, tokens)
				s, err := m.NewSession(len(tokens))
				if err != nil {
					t.Fatal(err)
				}
				var first []float32
				for i, id := range tokens {
					lg, err := s.Decode(context.Background(), id)
					if err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						first = append(first, lg...)
					}
					for j := range lg {
						if d := math.Abs(float64(lg[j] - batch[i][j])); d > 1e-5 {
							t.Fatalf("position %d logit %d: decode %v, prefill %v", i, j, lg[j], batch[i][j])
						}
					}
				}
				if s.Len() != len(tokens) {
					t.Fatalf("Len %d, want %d", s.Len(), len(tokens))
				}
				// Reset starts over and reproduces the first position
				// exactly (same kernels, same order).
				s.Reset()
				lg, err := s.Decode(context.Background(), tokens[0])
				if err != nil {
					t.Fatal(err)
				}
				for j := range lg {
					if lg[j] != first[j] {
						t.Fatalf("after Reset: logit %d is %v, first decode gave %v", j, lg[j], first[j])
					}
				}
			})
		}
	}
}

// TestLongPromptChunks exercises prompts longer than PrefillChunk.
func TestLongPromptChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("long prompt")
	}
	spec := tinySpecs[0]
	spec.ctx = PrefillChunk + 40
	src := buildTiny(t, spec, quant.F32, 5)
	tokens := randTokens(newRand(5), PrefillChunk+30, spec.vocab)
	want, _ := newRefModel(t, src).forward(tokens)
	m := newModelT(t, src, Options{Threads: 2})
	got := prefillT(t, m, tokens)
	if d := maxDiffRows(got, want); d > 1e-4 {
		t.Fatalf("all logits differ by %g", d)
	}
	s, _ := m.NewSession(0)
	last, err := s.Prefill(context.Background(), tokens, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || maxAbsDiff32(last[0], want[len(want)-1]) > 1e-4 {
		t.Fatalf("last-only logits wrong")
	}
}

func TestErrors(t *testing.T) {
	spec := tinySpecs[0]
	src := buildTiny(t, spec, quant.F32, 3)
	m := newModelT(t, src, Options{Threads: 1})
	ctx := context.Background()
	if _, err := m.NewSession(spec.ctx + 1); err == nil {
		t.Error("session larger than context accepted")
	}
	s, err := m.NewSession(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prefill(ctx, []int{1, 2, 3, 4, 5}, false); err == nil || !strings.Contains(err.Error(), "capacity") {
		t.Errorf("overflowing prefill: %v", err)
	}
	if _, err := s.Prefill(ctx, []int{1, spec.vocab}, false); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("out-of-vocabulary id: %v", err)
	}
	if _, err := s.Decode(ctx, -1); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("negative id: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("failed calls changed Len to %d", s.Len())
	}
	if _, err := s.Prefill(ctx, nil, false); err == nil {
		t.Error("empty prefill accepted")
	}
	sc := SamplerConfig{TopP: 1}
	_, err = m.Generate(ctx, []int{1, 2, 3}, spec.ctx, sc, nil)
	want := fmt.Sprintf("prompt of 3 tokens plus %d new tokens exceeds the model context of %d", spec.ctx, spec.ctx)
	if err == nil || err.Error() != want {
		t.Errorf("context overflow: %v, want %q", err, want)
	}
	if _, err := m.Generate(ctx, []int{1}, 3, SamplerConfig{TopP: 2}, nil); err == nil {
		t.Error("invalid sampler accepted by Generate")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prefill(cctx, []int{1}, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	m.Close()
	if _, err := s.Decode(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("closed model: %v", err)
	}
}

func TestNewRejectsBadModels(t *testing.T) {
	spec := tinySpecs[0]
	mutate := []struct {
		name string
		f    func(*MemSource)
	}{
		{"arch", func(s *MemSource) { s.Cfg.Arch = "rwkv" }},
		{"heads", func(s *MemSource) { s.Cfg.NumKVHeads = 3 }},
		{"context", func(s *MemSource) { s.Cfg.ContextLength = 0 }},
		{"missing tensor", func(s *MemSource) { delete(s.Weights, "blk.1.attn_k.weight") }},
		{"missing output", func(s *MemSource) { delete(s.Weights, "output.weight") }},
		{"wrong shape", func(s *MemSource) { s.Weights["blk.0.attn_q.weight"] = s.Weights["blk.0.attn_k.weight"] }},
		{"ffn size", func(s *MemSource) { s.Cfg.IntermediateSize = 7 }},
		{"rope scaling", func(s *MemSource) { s.Cfg.RopeScaling = &format.RopeScaling{Type: "yarn", Factor: 2} }},
		{"bias required", func(s *MemSource) { s.Cfg.AttnBias = true }},
	}
	for _, tc := range mutate {
		t.Run(tc.name, func(t *testing.T) {
			src := buildTiny(t, spec, quant.F32, 1)
			tc.f(src)
			if m, err := New(src, nil, Options{Threads: 1}); err == nil {
				m.Close()
				t.Fatal("accepted")
			}
		})
	}
}

func TestDecodeAllocationFree(t *testing.T) {
	for _, enc := range []quant.Encoding{quant.F32, quant.Q8, quant.F16} {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/th%d", enc, threads), func(t *testing.T) {
				spec := tinySpecs[2]
				spec.ctx = 512
				spec.lowRank = enc == quant.F16
				src := buildTiny(t, spec, enc, 9)
				m := newModelT(t, src, Options{Threads: threads})
				s, err := m.NewSession(0)
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if _, err := s.Decode(ctx, 3); err != nil {
					t.Fatal(err)
				}
				allocs := testing.AllocsPerRun(50, func() {
					if _, err := s.Decode(ctx, 5); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Fatalf("%v allocations per Decode", allocs)
				}
			})
		}
	}
}

func TestGenerate(t *testing.T) {
	spec := tinySpecs[0]
	src := buildTiny(t, spec, quant.F32, 21)
	src.Cfg.EOS = nil
	m := newModelT(t, src, Options{Threads: 2})
	ctx := context.Background()
	prompt := []int{1, 7, 9}
	greedy := SamplerConfig{TopP: 1}
	var ids []int
	st, err := m.Generate(ctx, prompt, 10, greedy, func(id int) error { ids = append(ids, id); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.PromptTokens != 3 || st.GenTokens != 10 || len(ids) != 10 {
		t.Fatalf("stats %+v, %d tokens", st, len(ids))
	}
	// Greedy generation is argmax of the reference on the growing sequence.
	seq := append([]int(nil), prompt...)
	ref := newRefModel(t, src)
	for i := range 4 {
		lg, _ := ref.forward(seq)
		last := lg[len(lg)-1]
		best := 0
		for j := range last {
			if last[j] > last[best] {
				best = j
			}
		}
		if ids[i] != best {
			t.Fatalf("token %d: generated %d, reference argmax %d", i, ids[i], best)
		}
		seq = append(seq, best)
	}
	// Stop at EOS: make the 4th generated token an EOS.
	m.cfg.EOS = []int{ids[3]}
	first := -1
	for i, id := range ids {
		if id == ids[3] {
			first = i
			break
		}
	}
	var got []int
	st, err = m.Generate(ctx, prompt, 10, greedy, func(id int) error { got = append(got, id); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != first || st.GenTokens != first+1 {
		t.Fatalf("EOS stop: emitted %d tokens (stats %d), want %d (+1 EOS)", len(got), st.GenTokens, first)
	}
	// onToken errors stop generation and come back unchanged.
	stop := errors.New("stop")
	if _, err := m.Generate(ctx, prompt, 10, greedy, func(int) error { return stop }); err != stop {
		t.Fatalf("onToken error: %v", err)
	}
	// Sampled generation is reproducible for a seed.
	sc := SamplerConfig{Temperature: 0.9, TopK: 10, TopP: 0.95, Seed: 4}
	var a, b []int
	m.Generate(ctx, prompt, 8, sc, func(id int) error { a = append(a, id); return nil })
	m.Generate(ctx, prompt, 8, sc, func(id int) error { b = append(b, id); return nil })
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different tokens: %v vs %v", a, b)
	}
}

func TestResidentBytes(t *testing.T) {
	spec := tinySpecs[0]
	src := buildTiny(t, spec, quant.Q8, 2)
	var file int64
	for _, w := range src.Weights {
		file += w.bytes()
	}
	m := newModelT(t, src, Options{Threads: 1})
	base := m.ResidentBytes()
	if base <= 0 || base > 2*file {
		t.Fatalf("resident %d bytes for %d bytes of weights", base, file)
	}
	s, _ := m.NewSession(32)
	kv := int64(2 * spec.layers * 32 * spec.kvHeads * (spec.hidden / spec.heads) * 4)
	if got := m.ResidentBytes() - base; got < kv {
		t.Fatalf("session adds %d bytes, KV alone is %d", got, kv)
	}
	s.Close()
	if m.ResidentBytes() != base {
		t.Fatalf("closed session still counted: %d vs %d", m.ResidentBytes(), base)
	}
}

// TestConcurrentSessions runs sessions of one model from several goroutines
// (one pool) and checks each gets the single-session result bit for bit.
// (The reference is one session's decode, not a prefill: prefill's
// attention sums in another order, and on a q8 model a difference in the
// last bit can move an activation across a rounding boundary of its int8
// quantization, which shows in the logits far above float error.)
func TestConcurrentSessions(t *testing.T) {
	spec := tinySpecs[2]
	src := buildTiny(t, spec, quant.Q8, 31)
	m := newModelT(t, src, Options{Threads: 3})
	tokens := randTokens(newRand(31), 17, spec.vocab)
	want := make([][]float32, len(tokens))
	s0, err := m.NewSession(len(tokens))
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range tokens {
		lg, err := s0.Decode(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = append([]float32(nil), lg...)
	}
	s0.Close()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := m.NewSession(len(tokens))
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for i, id := range tokens {
				lg, err := s.Decode(context.Background(), id)
				if err != nil {
					errs <- err
					return
				}
				if d := maxAbsDiff32(lg, testshared.Convert[float64](want[i])); d != 0 {
					errs <- fmt.Errorf("position %d differs by %g", i, d)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
