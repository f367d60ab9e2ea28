package e2e

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

// loadSource reads every safetensors file of an HF folder (sharded or not).
func loadSource(t *testing.T, dir string) map[string]stTensor {
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]stTensor{}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "reference") {
			continue
		}
		for k, v := range readSafetensors(t, f) {
			all[k] = v
		}
	}
	return all
}

var blkRe = regexp.MustCompile(`^blk\.(\d+)\.(\w+)\.(weight|bias)$`)

// expectedLlama gives the source values of a canonical tensor of a
// Llama-family HF checkpoint, by an independent mapping table.
func expectedLlama(src map[string]stTensor, canon string) ([]float32, bool) {
	top := map[string]string{
		"token_embd.weight":  "model.embed_tokens.weight",
		"output_norm.weight": "model.norm.weight",
		"output.weight":      "lm_head.weight",
	}
	if n, ok := top[canon]; ok {
		if v, ok := sourceFloats(src, n); ok || canon != "token_embd.weight" {
			return v, ok
		}
		// Tied checkpoints may store the shared matrix only as lm_head
		// (tinystories-656k does).
		return sourceFloats(src, "lm_head.weight")
	}
	m := blkRe.FindStringSubmatch(canon)
	if m == nil {
		return nil, false
	}
	sub := map[string]string{
		"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
		"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
		"attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
	}[m[2]]
	return sourceFloats(src, fmt.Sprintf("model.layers.%s.%s.%s", m[1], sub, m[3]))
}

// sourceFloats is the values of the source tensor name, if there is one.
func sourceFloats(src map[string]stTensor, name string) ([]float32, bool) {
	s, ok := src[name]
	if !ok {
		return nil, false
	}
	return s.Floats(), true
}

// expectedGPT2 maps canonical names onto GPT-2's Conv1D ([in, out]) tensors,
// transposing and splitting the fused c_attn, independently of convert/.
func expectedGPT2(src map[string]stTensor, canon string) ([]float32, bool) {
	top := map[string]string{
		"token_embd.weight": "transformer.wte.weight", "position_embd.weight": "transformer.wpe.weight",
		"output_norm.weight": "transformer.ln_f.weight", "output_norm.bias": "transformer.ln_f.bias",
	}
	if n, ok := top[canon]; ok {
		return sourceFloats(src, n)
	}
	m := blkRe.FindStringSubmatch(canon)
	if m == nil {
		return nil, false
	}
	p := "transformer.h." + m[1] + "."
	transposed := func(name string, c0, c1 int64) ([]float32, bool) {
		s, ok := src[name]
		if !ok {
			return nil, false
		}
		v := s.Floats()
		if m[3] == "bias" {
			return v[c0:c1], true
		}
		in, out := int64(s.Shape[0]), int64(s.Shape[1])
		res := make([]float32, 0, (c1-c0)*in)
		for c := c0; c < c1; c++ {
			for r := int64(0); r < in; r++ {
				res = append(res, v[r*out+c])
			}
		}
		return res, true
	}
	full := func(name string) ([]float32, bool) {
		s, ok := src[name]
		if !ok {
			return nil, false
		}
		return transposed(name, 0, int64(s.Shape[len(s.Shape)-1]))
	}
	switch m[2] {
	case "attn_norm", "ffn_norm":
		return sourceFloats(src, p+map[string]string{"attn_norm": "ln_1.", "ffn_norm": "ln_2."}[m[2]]+m[3])
	case "attn_q", "attn_k", "attn_v":
		s, ok := src[p+"attn.c_attn.weight"]
		if !ok {
			return nil, false
		}
		h := int64(s.Shape[1] / 3)
		i := int64(strings.Index("qkv", m[2][len(m[2])-1:]))
		return transposed(p+"attn.c_attn."+m[3], i*h, (i+1)*h)
	case "attn_output":
		return full(p + "attn.c_proj." + m[3])
	case "ffn_up":
		return full(p + "mlp.c_fc." + m[3])
	case "ffn_down":
		return full(p + "mlp.c_proj." + m[3])
	}
	return nil, false
}

// TestConvertF32BitIdentical converts every shared checkpoint to f32 and
// checks that each stored tensor equals its source values bit for bit
// (F16/BF16 widened exactly), through an independent reading of the source.
func TestConvertF32BitIdentical(t *testing.T) {
	cases := []struct {
		name, path, srcDir string
		expect             func(map[string]stTensor, string) ([]float32, bool)
	}{
		{"llama-stories-12m", "llama-stories-12m", "llama-stories-12m", expectedLlama},
		{"llama-stories-tiny", "llama-stories-tiny", "llama-stories-tiny", expectedLlama},
		{"tinystories-656k", "tinystories-656k", "tinystories-656k", expectedLlama},
		{"gpt2-stories-4m", "gpt2-stories-4m", "gpt2-stories-4m", expectedGPT2},
		{"stories260K-hf", "stories260K/hf", "stories260K/hf", expectedLlama},
		// The llama2.c checkpoint must give the HF export's tensors exactly:
		// the rotary permutation of q/k rows included.
		{"stories260K-bin", "stories260K/stories260K.bin", "stories260K/hf", expectedLlama},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := loadSource(t, modelPath(t, tc.srcDir))
			f := testshared.Open(t, format.Open, convertTo(t, modelPath(t, tc.path), quant.F32))
			if len(f.Header().Tensors) == 0 {
				t.Fatal("no tensors")
			}
			for _, tn := range f.Header().Tensors {
				want, ok := tc.expect(src, tn.Name)
				if !ok {
					t.Errorf("%s: no source tensor for canonical %q", tc.name, tn.Name)
					continue
				}
				p := &tn.Parts[0]
				if p.Encoding != quant.F32 {
					t.Fatalf("%s: encoding %v, want f32", tn.Name, p.Encoding)
				}
				got := quant.F32View(f.PartData(p))
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, want %d", tn.Name, len(got), len(want))
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s[%d] = %v, source %v", tn.Name, i, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestConvertStoredDTypeByteCopy checks that converting at the checkpoint's
// own dtype stores the source bytes unchanged.
func TestConvertStoredDTypeByteCopy(t *testing.T) {
	for _, tc := range []struct {
		dir    string
		enc    quant.Encoding
		expect func(map[string]stTensor, string) ([]float32, bool)
	}{
		{"llama-stories-12m", quant.BF16, expectedLlama},
		{"gpt2-stories-4m", quant.F16, expectedGPT2},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			src := loadSource(t, modelPath(t, tc.dir))
			f := testshared.Open(t, format.Open, convertTo(t, modelPath(t, tc.dir), tc.enc))
			for _, tn := range f.Header().Tensors {
				p := &tn.Parts[0]
				rows, cols := 1, int(tn.Shape[0])
				if len(tn.Shape) == 2 {
					rows, cols = int(tn.Shape[0]), int(tn.Shape[1])
				}
				got := make([]float32, rows*cols)
				if err := quant.Decode(p.Encoding, got, f.PartData(p), rows, cols); err != nil {
					t.Fatal(err)
				}
				want, _ := tc.expect(src, tn.Name)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s[%d] = %v, source %v", tn.Name, i, got[i], want[i])
					}
				}
				if tn.Metrics == nil || tn.Metrics.RelFrobenius != 0 {
					t.Errorf("%s: metrics %+v, want exact", tn.Name, tn.Metrics)
				}
			}
		})
	}
}
