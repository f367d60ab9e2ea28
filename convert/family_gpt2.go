package convert

import (
	"fmt"
	"strings"

	"github.com/shrink-llm/shrink/format"
)

// gpt2Family maps Hugging Face GPT2LMHeadModel checkpoints. GPT-2 stores its
// projections as Conv1D ([in, out]), which are transposed to [out, in], and
// fuses q, k and v into c_attn, which is split.
type gpt2Family struct{}

func (gpt2Family) Arch() string { return "gpt2" }

func (gpt2Family) Config(hf *HFConfig) (format.ModelConfig, error) {
	cfg := format.ModelConfig{
		Arch:           "gpt2",
		Source:         "hf:" + hf.Architectures[0],
		NormKind:       "layernorm",
		Activation:     "gelu_tanh",
		TiedEmbeddings: true, // GPT2LMHeadModel always ties lm_head to wte
		AttnBias:       true,
	}
	err := hf.positiveInts(
		intField{"vocab_size", &cfg.VocabSize},
		intField{"n_embd", &cfg.HiddenSize},
		intField{"n_layer", &cfg.NumLayers},
		intField{"n_head", &cfg.NumHeads},
		intField{"n_positions", &cfg.ContextLength},
	)
	if err != nil {
		return cfg, err
	}
	if cfg.HiddenSize%cfg.NumHeads != 0 {
		return cfg, fmt.Errorf("%s: n_embd %d is not a multiple of n_head %d", hf.Path, cfg.HiddenSize, cfg.NumHeads)
	}
	cfg.NumKVHeads = cfg.NumHeads
	cfg.HeadDim = cfg.HiddenSize / cfg.NumHeads
	cfg.IntermediateSize = 4 * cfg.HiddenSize
	if hf.Has("n_inner") {
		if cfg.IntermediateSize, err = hf.PositiveInt("n_inner"); err != nil {
			return cfg, err
		}
	}
	if cfg.NormEps, err = hf.Float("layer_norm_epsilon", 1e-5); err != nil {
		return cfg, err
	}
	act, err := hf.String("activation_function", "gelu_new")
	if err != nil {
		return cfg, err
	}
	switch act {
	case "gelu_new", "gelu_pytorch_tanh":
	default:
		return cfg, fmt.Errorf("%s: activation_function %q is not supported for GPT-2 (supported: gelu_new, gelu_pytorch_tanh)", hf.Path, act)
	}
	// Variants whose attention differs from the canonical graph.
	flags := []struct {
		key       string
		def, want bool
	}{
		{"scale_attn_weights", true, true},
		{"scale_attn_by_inverse_layer_idx", false, false},
		{"add_cross_attention", false, false},
	}
	for _, fl := range flags {
		v, err := hf.Bool(fl.key, fl.def)
		if err != nil {
			return cfg, err
		}
		if v != fl.want {
			return cfg, fmt.Errorf("%s: %s=%v is not supported", hf.Path, fl.key, v)
		}
	}
	if cfg.BOS, cfg.EOS, err = hf.bosEOS(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (f gpt2Family) Tensors(cfg format.ModelConfig, src map[string]*SourceTensor) ([]*TensorDesc, error) {
	p := newPicker(src)
	take := p.need
	// GPT2LMHeadModel saves with the "transformer." prefix; GPT2Model and
	// the original OpenAI export without it.
	pre := ""
	if p.has("transformer.wte.weight") {
		pre = "transformer."
	}
	h, v, ffn := int64(cfg.HiddenSize), int64(cfg.VocabSize), int64(cfg.IntermediateSize)
	var out []*TensorDesc
	if s := take(pre+"wte.weight", v, h); s != nil {
		out = append(out, whole(format.Name(format.TokenEmbd, format.Weight), s))
	}
	if s := take(pre+"wpe.weight", int64(cfg.ContextLength), h); s != nil {
		out = append(out, whole(format.Name(format.PositionEmbd, format.Weight), s))
	}
	for i := 0; i < cfg.NumLayers; i++ {
		lp := fmt.Sprintf("%sh.%d.", pre, i)
		var weights, biases []*TensorDesc
		vec := func(canon, name string, n int64) {
			if s := take(name, n); s != nil {
				biases = append(biases, whole(canon, s))
			}
		}
		if s := take(lp+"ln_1.weight", h); s != nil {
			weights = append(weights, whole(format.BlockName(i, format.AttnNorm, format.Weight), s))
		}
		vec(format.BlockName(i, format.AttnNorm, format.Bias), lp+"ln_1.bias", h)
		if s := take(lp+"attn.c_attn.weight", h, 3*h); s != nil {
			weights = append(weights,
				transposed(format.BlockName(i, format.AttnQ, format.Weight), s, 0, h),
				transposed(format.BlockName(i, format.AttnK, format.Weight), s, h, h),
				transposed(format.BlockName(i, format.AttnV, format.Weight), s, 2*h, h))
		}
		if s := take(lp+"attn.c_attn.bias", 3*h); s != nil {
			biases = append(biases,
				sliceOf(format.BlockName(i, format.AttnQ, format.Bias), s, 0, h),
				sliceOf(format.BlockName(i, format.AttnK, format.Bias), s, h, h),
				sliceOf(format.BlockName(i, format.AttnV, format.Bias), s, 2*h, h))
		}
		if s := take(lp+"attn.c_proj.weight", h, h); s != nil {
			weights = append(weights, transposed(format.BlockName(i, format.AttnOutput, format.Weight), s, 0, h))
		}
		vec(format.BlockName(i, format.AttnOutput, format.Bias), lp+"attn.c_proj.bias", h)
		if s := take(lp+"ln_2.weight", h); s != nil {
			weights = append(weights, whole(format.BlockName(i, format.FFNNorm, format.Weight), s))
		}
		vec(format.BlockName(i, format.FFNNorm, format.Bias), lp+"ln_2.bias", h)
		if s := take(lp+"mlp.c_fc.weight", h, ffn); s != nil {
			weights = append(weights, transposed(format.BlockName(i, format.FFNUp, format.Weight), s, 0, ffn))
		}
		vec(format.BlockName(i, format.FFNUp, format.Bias), lp+"mlp.c_fc.bias", ffn)
		if s := take(lp+"mlp.c_proj.weight", ffn, h); s != nil {
			weights = append(weights, transposed(format.BlockName(i, format.FFNDown, format.Weight), s, 0, h))
		}
		vec(format.BlockName(i, format.FFNDown, format.Bias), lp+"mlp.c_proj.bias", h)
		out = append(append(out, weights...), biases...)
	}
	if s := take(pre+"ln_f.weight", h); s != nil {
		out = append(out, whole(format.Name(format.OutputNorm, format.Weight), s))
	}
	if s := take(pre+"ln_f.bias", h); s != nil {
		out = append(out, whole(format.Name(format.OutputNorm, format.Bias), s))
	}
	// attn.bias / attn.masked_bias are the causal-mask buffers older
	// exports saved; lm_head is tied to wte.
	p.ignoreMatching(func(n string) bool {
		return strings.HasSuffix(n, ".attn.bias") || strings.HasSuffix(n, ".attn.masked_bias")
	})
	p.ignore("lm_head.weight")
	if err := p.err("gpt2"); err != nil {
		return nil, err
	}
	return out, nil
}
