package convert

import (
	"fmt"
	"strings"

	"github.com/shrink-llm/shrink/format"
)

// llamaFamily covers Llama, Mistral and TinyLlama checkpoints and, with
// qkvBias, Qwen2: they share one graph (RMSNorm, rotate-half rotary, GQA,
// SwiGLU) and Hugging Face tensor names.
type llamaFamily struct {
	arch    string // "" means "llama"
	qkvBias bool   // q/k/v projections carry biases (Qwen2)
	mistral bool   // honour sliding_window by capping the context
}

func (f llamaFamily) Arch() string {
	if f.arch == "" {
		return "llama"
	}
	return f.arch
}

func (f llamaFamily) Config(hf *HFConfig) (format.ModelConfig, error) {
	cfg := format.ModelConfig{
		Arch:       f.Arch(),
		Source:     "hf:" + hf.Architectures[0],
		NormKind:   "rmsnorm",
		Activation: "silu",
		AttnBias:   f.qkvBias,
	}
	err := hf.positiveInts(
		intField{"vocab_size", &cfg.VocabSize},
		intField{"hidden_size", &cfg.HiddenSize},
		intField{"intermediate_size", &cfg.IntermediateSize},
		intField{"num_hidden_layers", &cfg.NumLayers},
		intField{"num_attention_heads", &cfg.NumHeads},
		intField{"max_position_embeddings", &cfg.ContextLength},
	)
	if err != nil {
		return cfg, err
	}
	if cfg.NumKVHeads, err = hf.Int("num_key_value_heads", cfg.NumHeads); err != nil {
		return cfg, err
	}
	if cfg.NumKVHeads <= 0 || cfg.NumHeads%cfg.NumKVHeads != 0 {
		return cfg, fmt.Errorf("%s: num_key_value_heads %d must divide num_attention_heads %d", hf.Path, cfg.NumKVHeads, cfg.NumHeads)
	}
	if hf.Has("head_dim") {
		if cfg.HeadDim, err = hf.PositiveInt("head_dim"); err != nil {
			return cfg, err
		}
	} else {
		if cfg.HiddenSize%cfg.NumHeads != 0 {
			return cfg, fmt.Errorf("%s: hidden_size %d is not a multiple of num_attention_heads %d", hf.Path, cfg.HiddenSize, cfg.NumHeads)
		}
		cfg.HeadDim = cfg.HiddenSize / cfg.NumHeads
	}
	if cfg.HeadDim%2 != 0 {
		return cfg, fmt.Errorf("%s: head_dim %d must be even for rotary embeddings", hf.Path, cfg.HeadDim)
	}
	if cfg.NormEps, err = hf.Float("rms_norm_eps", 1e-6); err != nil {
		return cfg, err
	}
	if cfg.TiedEmbeddings, err = hf.Bool("tie_word_embeddings", false); err != nil {
		return cfg, err
	}
	if cfg.RopeTheta, cfg.RopeScaling, err = hf.ropeConfig(); err != nil {
		return cfg, err
	}
	if cfg.BOS, cfg.EOS, err = hf.bosEOS(); err != nil {
		return cfg, err
	}
	act, err := hf.String("hidden_act", "silu")
	if err != nil {
		return cfg, err
	}
	if act != "silu" {
		return cfg, fmt.Errorf("%s: hidden_act %q is not supported for %s (only silu)", hf.Path, act, hf.Architectures[0])
	}
	// Options that change the graph beyond what the canonical model holds.
	for _, key := range []string{"attention_bias", "mlp_bias"} {
		if on, err := hf.Bool(key, false); err != nil {
			return cfg, err
		} else if on && !f.qkvBias {
			return cfg, fmt.Errorf("%s: %s=true is not supported for %s", hf.Path, key, hf.Architectures[0])
		}
	}
	if on, err := hf.Bool("use_sliding_window", false); err != nil {
		return cfg, err
	} else if on {
		return cfg, fmt.Errorf("%s: use_sliding_window=true is not supported", hf.Path)
	}
	if f.mistral && hf.Has("sliding_window") {
		// Within the window, sliding-window attention is full attention.
		w, err := hf.PositiveInt("sliding_window")
		if err != nil {
			return cfg, err
		}
		cfg.ContextLength = min(cfg.ContextLength, w)
	}
	return cfg, nil
}

func (f llamaFamily) Tensors(cfg format.ModelConfig, src map[string]*SourceTensor) ([]*TensorDesc, error) {
	p := newPicker(src)
	var out []*TensorDesc
	add := func(canon, name string, shape ...int64) {
		if s := p.need(name, shape...); s != nil {
			out = append(out, whole(canon, s))
		}
	}
	h, v, ffn := int64(cfg.HiddenSize), int64(cfg.VocabSize), int64(cfg.IntermediateSize)
	qd, kvd := int64(cfg.NumHeads*cfg.HeadDim), int64(cfg.NumKVHeads*cfg.HeadDim)

	// Tied checkpoints saved with safetensors' shared-tensor dedup may keep
	// only lm_head.weight (e.g. TinyStories-656K); it is the embedding then.
	switch {
	case p.has("model.embed_tokens.weight"):
		add(format.Name(format.TokenEmbd, format.Weight), "model.embed_tokens.weight", v, h)
		if cfg.TiedEmbeddings {
			p.ignore("lm_head.weight")
		}
	case cfg.TiedEmbeddings && p.has("lm_head.weight"):
		add(format.Name(format.TokenEmbd, format.Weight), "lm_head.weight", v, h)
	default:
		add(format.Name(format.TokenEmbd, format.Weight), "model.embed_tokens.weight", v, h)
	}
	for i := 0; i < cfg.NumLayers; i++ {
		pre := fmt.Sprintf("model.layers.%d.", i)
		add(format.BlockName(i, format.AttnNorm, format.Weight), pre+"input_layernorm.weight", h)
		add(format.BlockName(i, format.AttnQ, format.Weight), pre+"self_attn.q_proj.weight", qd, h)
		add(format.BlockName(i, format.AttnK, format.Weight), pre+"self_attn.k_proj.weight", kvd, h)
		add(format.BlockName(i, format.AttnV, format.Weight), pre+"self_attn.v_proj.weight", kvd, h)
		add(format.BlockName(i, format.AttnOutput, format.Weight), pre+"self_attn.o_proj.weight", h, qd)
		add(format.BlockName(i, format.FFNNorm, format.Weight), pre+"post_attention_layernorm.weight", h)
		add(format.BlockName(i, format.FFNGate, format.Weight), pre+"mlp.gate_proj.weight", ffn, h)
		add(format.BlockName(i, format.FFNUp, format.Weight), pre+"mlp.up_proj.weight", ffn, h)
		add(format.BlockName(i, format.FFNDown, format.Weight), pre+"mlp.down_proj.weight", h, ffn)
		if cfg.AttnBias {
			add(format.BlockName(i, format.AttnQ, format.Bias), pre+"self_attn.q_proj.bias", qd)
			add(format.BlockName(i, format.AttnK, format.Bias), pre+"self_attn.k_proj.bias", kvd)
			add(format.BlockName(i, format.AttnV, format.Bias), pre+"self_attn.v_proj.bias", kvd)
		}
	}
	add(format.Name(format.OutputNorm, format.Weight), "model.norm.weight", h)
	if !cfg.TiedEmbeddings {
		add(format.Name(format.Output, format.Weight), "lm_head.weight", v, h)
	}
	// Older exports keep the rotary inverse-frequency buffer; it is derived
	// from rope_theta, so it carries no information.
	p.ignoreMatching(func(n string) bool { return strings.HasSuffix(n, "rotary_emb.inv_freq") })
	if err := p.err(f.Arch()); err != nil {
		return nil, err
	}
	return out, nil
}
