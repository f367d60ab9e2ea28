package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

// These tests check the graphs against logits computed by Hugging Face
// transformers (float32, CPU) for the small trained models in ../shared.
// They read safetensors with a minimal test-only reader and rename tensors
// to the canonical scheme themselves: the real converter lives in convert/,
// which runtime may not import; e2e/ covers the converted path.

type stTensor = testshared.Tensor

func readSafetensors(tb testing.TB, path string) map[string]stTensor {
	return testshared.ReadSafetensors(tb, path)
}

// addF32 stores a float32 tensor in encoding enc (1-D tensors stay f32).
func addF32(tb testing.TB, src *MemSource, name string, v []float32, shape []int, enc quant.Encoding) {
	rows, cols := 1, shape[0]
	s64 := []int64{int64(shape[0])}
	if len(shape) == 2 {
		rows, cols = shape[0], shape[1]
		s64 = []int64{int64(rows), int64(cols)}
	} else {
		enc = quant.F32
	}
	src.Add(DenseWeight(name, s64, enc, testshared.Encode(tb, enc, v, rows, cols)))
}

func transpose(v []float32, rows, cols int) []float32 {
	out := make([]float32, len(v))
	for r := range rows {
		for c := range cols {
			out[c*rows+r] = v[r*cols+c]
		}
	}
	return out
}

// readHFConfig decodes the checkpoint's config.json in dir into hc.
func readHFConfig(tb testing.TB, dir string, hc any) {
	tb.Helper()
	cj, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(cj, hc); err != nil {
		tb.Fatal(err)
	}
}

func hfLlama(tb testing.TB, dir string, enc quant.Encoding) *MemSource {
	var hc struct {
		Hidden     int     `json:"hidden_size"`
		Inter      int     `json:"intermediate_size"`
		Layers     int     `json:"num_hidden_layers"`
		Heads      int     `json:"num_attention_heads"`
		KV         int     `json:"num_key_value_heads"`
		HeadDim    int     `json:"head_dim"`
		Ctx        int     `json:"max_position_embeddings"`
		Eps        float64 `json:"rms_norm_eps"`
		Theta      float64 `json:"rope_theta"`
		RopeParams *struct {
			Theta float64 `json:"rope_theta"`
		} `json:"rope_parameters"`
		Vocab int  `json:"vocab_size"`
		Tied  bool `json:"tie_word_embeddings"`
	}
	readHFConfig(tb, dir, &hc)
	if hc.RopeParams != nil {
		hc.Theta = hc.RopeParams.Theta
	}
	src := &MemSource{Cfg: format.ModelConfig{
		Arch: "llama", VocabSize: hc.Vocab, HiddenSize: hc.Hidden, IntermediateSize: hc.Inter,
		NumLayers: hc.Layers, NumHeads: hc.Heads, NumKVHeads: hc.KV, HeadDim: hc.HeadDim,
		ContextLength: hc.Ctx, RopeTheta: hc.Theta, NormEps: hc.Eps, NormKind: "rmsnorm",
		Activation: "silu", TiedEmbeddings: hc.Tied, BOS: 1, EOS: []int{2},
	}}
	st := readSafetensors(tb, filepath.Join(dir, "model.safetensors"))
	ren := strings.NewReplacer(
		"model.embed_tokens.", "token_embd.", "model.norm.", "output_norm.", "lm_head.", "output.",
		"model.layers.", "blk.", "input_layernorm", "attn_norm", "post_attention_layernorm", "ffn_norm",
		"self_attn.q_proj", "attn_q", "self_attn.k_proj", "attn_k", "self_attn.v_proj", "attn_v",
		"self_attn.o_proj", "attn_output", "mlp.gate_proj", "ffn_gate", "mlp.up_proj", "ffn_up",
		"mlp.down_proj", "ffn_down")
	for name, t := range st {
		addF32(tb, src, ren.Replace(name), t.Floats(), t.Shape, enc)
	}
	// tinystories-656k is tied but stores the shared matrix as lm_head only.
	if _, ok := src.Weights["token_embd.weight"]; !ok && hc.Tied {
		w := src.Weights["output.weight"]
		w.Name = "token_embd.weight"
		src.Add(w)
		delete(src.Weights, "output.weight")
	}
	return src
}

func hfGPT2(tb testing.TB, dir string, enc quant.Encoding) *MemSource {
	var hc struct {
		Embd   int     `json:"n_embd"`
		Heads  int     `json:"n_head"`
		Layers int     `json:"n_layer"`
		Ctx    int     `json:"n_positions"`
		Eps    float64 `json:"layer_norm_epsilon"`
		Vocab  int     `json:"vocab_size"`
	}
	readHFConfig(tb, dir, &hc)
	h := hc.Embd
	src := &MemSource{Cfg: format.ModelConfig{
		Arch: "gpt2", VocabSize: hc.Vocab, HiddenSize: h, IntermediateSize: 4 * h,
		NumLayers: hc.Layers, NumHeads: hc.Heads, NumKVHeads: hc.Heads, ContextLength: hc.Ctx,
		NormEps: hc.Eps, NormKind: "layernorm", Activation: "gelu_tanh", TiedEmbeddings: true,
		AttnBias: true, BOS: -1, EOS: []int{0},
	}}
	st := readSafetensors(tb, filepath.Join(dir, "model.safetensors"))
	get := func(n string) stTensor {
		t, ok := st[n]
		if !ok {
			tb.Fatalf("missing %s", n)
		}
		return t
	}
	addF32(tb, src, "token_embd.weight", get("transformer.wte.weight").Floats(), []int{hc.Vocab, h}, enc)
	addF32(tb, src, "position_embd.weight", get("transformer.wpe.weight").Floats(), []int{hc.Ctx, h}, enc)
	addF32(tb, src, "output_norm.weight", get("transformer.ln_f.weight").Floats(), []int{h}, enc)
	addF32(tb, src, "output_norm.bias", get("transformer.ln_f.bias").Floats(), []int{h}, enc)
	for l := range hc.Layers {
		hp, p := fmt.Sprintf("transformer.h.%d.", l), fmt.Sprintf("blk.%d.", l)
		for _, nm := range [][2]string{{"ln_1", "attn_norm"}, {"ln_2", "ffn_norm"}} {
			addF32(tb, src, p+nm[1]+".weight", get(hp+nm[0]+".weight").Floats(), []int{h}, enc)
			addF32(tb, src, p+nm[1]+".bias", get(hp+nm[0]+".bias").Floats(), []int{h}, enc)
		}
		// Conv1D weights are [in, out]: transpose to [out, in]; c_attn's
		// output is q, k, v stacked.
		qkv := transpose(get(hp+"attn.c_attn.weight").Floats(), h, 3*h)
		qkvb := get(hp + "attn.c_attn.bias").Floats()
		for i, nm := range []string{"attn_q", "attn_k", "attn_v"} {
			addF32(tb, src, p+nm+".weight", qkv[i*h*h:(i+1)*h*h], []int{h, h}, enc)
			addF32(tb, src, p+nm+".bias", qkvb[i*h:(i+1)*h], []int{h}, enc)
		}
		addF32(tb, src, p+"attn_output.weight", transpose(get(hp+"attn.c_proj.weight").Floats(), h, h), []int{h, h}, enc)
		addF32(tb, src, p+"attn_output.bias", get(hp+"attn.c_proj.bias").Floats(), []int{h}, enc)
		addF32(tb, src, p+"ffn_up.weight", transpose(get(hp+"mlp.c_fc.weight").Floats(), h, 4*h), []int{4 * h, h}, enc)
		addF32(tb, src, p+"ffn_up.bias", get(hp+"mlp.c_fc.bias").Floats(), []int{4 * h}, enc)
		addF32(tb, src, p+"ffn_down.weight", transpose(get(hp+"mlp.c_proj.weight").Floats(), 4*h, h), []int{h, 4 * h}, enc)
		addF32(tb, src, p+"ffn_down.bias", get(hp+"mlp.c_proj.bias").Floats(), []int{h}, enc)
	}
	return src
}

func TestHFReferenceLogits(t *testing.T) {
	models := []struct {
		dir   string
		build func(testing.TB, string, quant.Encoding) *MemSource
	}{
		{"llama-stories-tiny", hfLlama},
		{"tinystories-656k", hfLlama},
		{"stories260K/hf", hfLlama},
		{"gpt2-stories-4m", hfGPT2},
	}
	for _, mc := range models {
		t.Run(mc.dir, func(t *testing.T) {
			dir := testshared.Path(t, "models", filepath.FromSlash(mc.dir))
			ref := readSafetensors(t, filepath.Join(dir, "reference.safetensors"))
			src := mc.build(t, dir, quant.F32)
			m := newModelT(t, src, Options{Threads: 2})
			var worst float64
			for i := 0; ; i++ {
				ids, ok := ref[fmt.Sprintf("prompt.%d.ids", i)]
				if !ok {
					break
				}
				want := ref[fmt.Sprintf("prompt.%d.logits", i)].Floats()
				got := prefillT(t, m, ids.Ints())
				v := src.Cfg.VocabSize
				for p := range got {
					for j := range v {
						worst = max(worst, math.Abs(float64(got[p][j]-want[p*v+j])))
					}
				}
				// Greedy continuation: compare up to and including the first EOS.
				g, ok := ref[fmt.Sprintf("greedy.%d.ids", i)]
				if !ok {
					continue
				}
				wantIDs := g.Ints()
				var gen []int
				_, err := m.Generate(context.Background(), ids.Ints(), len(wantIDs), SamplerConfig{TopP: 1},
					func(id int) error { gen = append(gen, id); return nil })
				if err != nil {
					t.Fatal(err)
				}
				for k := range gen {
					if gen[k] != wantIDs[k] {
						t.Errorf("prompt %d: greedy token %d is %d, transformers gave %d", i, k, gen[k], wantIDs[k])
						break
					}
				}
			}
			t.Logf("max |logit - transformers| = %.3g", worst)
			if worst > 1e-3 {
				t.Fatalf("max abs logit difference %g exceeds 1e-3", worst)
			}
		})
	}
}
