package convert

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"

	"github.com/shrink-llm/shrink/format"
)

func llamaCfgJSON(extra map[string]any) map[string]any {
	c := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "vocab_size": 32000, "hidden_size": 2048,
		"intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
		"num_key_value_heads": 4, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
		"bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
	}
	maps.Copy(c, extra)
	for k, v := range extra {
		if v == "DELETE" {
			delete(c, k)
		}
	}
	return c
}

func TestFamilyConfig(t *testing.T) {
	base := format.ModelConfig{Arch: "llama", Source: "hf:LlamaForCausalLM", VocabSize: 32000, HiddenSize: 2048,
		IntermediateSize: 5632, NumLayers: 22, NumHeads: 32, NumKVHeads: 4, HeadDim: 64, ContextLength: 2048,
		RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu", BOS: 1, EOS: []int{2}}
	with := func(f func(*format.ModelConfig)) format.ModelConfig {
		c := base
		f(&c)
		return c
	}
	llama3 := &format.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
	llama3JSON := map[string]any{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
	tests := []struct {
		name    string
		cfg     map[string]any
		want    format.ModelConfig
		wantErr []string
	}{
		{"tinyllama t4", llamaCfgJSON(map[string]any{"torch_dtype": "bfloat16"}), base, nil},
		{"t4 rope_theta", llamaCfgJSON(map[string]any{"rope_theta": 500000.0}), with(func(c *format.ModelConfig) { c.RopeTheta = 500000 }), nil},
		{"t5 rope_parameters", llamaCfgJSON(map[string]any{"dtype": "bfloat16", "head_dim": 128, "rope_parameters": map[string]any{"rope_theta": 1e6, "rope_type": "default"}}),
			with(func(c *format.ModelConfig) { c.RopeTheta = 1e6; c.HeadDim = 128 }), nil},
		{"t5 llama3 scaling", llamaCfgJSON(map[string]any{"rope_parameters": map[string]any{"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
			"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}),
			with(func(c *format.ModelConfig) { c.RopeTheta = 500000; c.RopeScaling = llama3 }), nil},
		{"t4 llama3 scaling", llamaCfgJSON(map[string]any{"rope_theta": 500000.0, "rope_scaling": llama3JSON}),
			with(func(c *format.ModelConfig) { c.RopeTheta = 500000; c.RopeScaling = llama3 }), nil},
		{"rope_scaling null", llamaCfgJSON(map[string]any{"rope_scaling": nil}), base, nil},
		{"eos list, tied, no bos", llamaCfgJSON(map[string]any{"eos_token_id": []int{128001, 128009}, "tie_word_embeddings": true, "bos_token_id": "DELETE"}),
			with(func(c *format.ModelConfig) { c.EOS = []int{128001, 128009}; c.TiedEmbeddings = true; c.BOS = -1 }), nil},
		{"kv heads default", llamaCfgJSON(map[string]any{"num_key_value_heads": "DELETE"}), with(func(c *format.ModelConfig) { c.NumKVHeads = 32 }), nil},
		{"head_dim null", llamaCfgJSON(map[string]any{"head_dim": nil}), base, nil},
		{"mistral sliding window", llamaCfgJSON(map[string]any{"architectures": []string{"MistralForCausalLM"}, "max_position_embeddings": 32768, "sliding_window": 4096}),
			with(func(c *format.ModelConfig) { c.Source = "hf:MistralForCausalLM"; c.ContextLength = 4096 }), nil},
		{"qwen2", llamaCfgJSON(map[string]any{"architectures": []string{"Qwen2ForCausalLM"}, "tie_word_embeddings": true, "use_sliding_window": false, "sliding_window": 32768}),
			with(func(c *format.ModelConfig) {
				c.Arch = "qwen2"
				c.Source = "hf:Qwen2ForCausalLM"
				c.AttnBias = true
				c.TiedEmbeddings = true
			}), nil},
		{"gpt2", map[string]any{"architectures": []string{"GPT2LMHeadModel"}, "vocab_size": 50257, "n_embd": 768, "n_head": 12, "n_layer": 12,
			"n_positions": 1024, "n_inner": nil, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256},
			format.ModelConfig{Arch: "gpt2", Source: "hf:GPT2LMHeadModel", VocabSize: 50257, HiddenSize: 768, IntermediateSize: 3072,
				NumLayers: 12, NumHeads: 12, NumKVHeads: 12, HeadDim: 64, ContextLength: 1024, NormEps: 1e-5, NormKind: "layernorm",
				Activation: "gelu_tanh", TiedEmbeddings: true, AttnBias: true, BOS: 50256, EOS: []int{50256}}, nil},
		{"gpt2 n_inner, no bos/eos", map[string]any{"architectures": []string{"GPT2LMHeadModel"}, "vocab_size": 10, "n_embd": 8, "n_head": 2, "n_layer": 1,
			"n_positions": 16, "n_inner": 20},
			format.ModelConfig{Arch: "gpt2", Source: "hf:GPT2LMHeadModel", VocabSize: 10, HiddenSize: 8, IntermediateSize: 20,
				NumLayers: 1, NumHeads: 2, NumKVHeads: 2, HeadDim: 4, ContextLength: 16, NormEps: 1e-5, NormKind: "layernorm",
				Activation: "gelu_tanh", TiedEmbeddings: true, AttnBias: true, BOS: -1}, nil},

		{"no architectures", llamaCfgJSON(map[string]any{"architectures": "DELETE"}), base, []string{"config.json: no architectures"}},
		{"empty architectures", llamaCfgJSON(map[string]any{"architectures": []string{}}), base, []string{"config.json: no architectures"}},
		{"unsupported architecture", llamaCfgJSON(map[string]any{"architectures": []string{"BertModel"}}), base,
			[]string{"BertModel", "not supported", "GPT2LMHeadModel, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"}},
		{"rope yarn", llamaCfgJSON(map[string]any{"rope_scaling": map[string]any{"type": "yarn", "factor": 4.0}}), base, []string{`"yarn" is not supported`}},
		{"llama3 incomplete", llamaCfgJSON(map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0}}), base, []string{"low_freq_factor"}},
		{"gqa mismatch", llamaCfgJSON(map[string]any{"num_key_value_heads": 5}), base, []string{"num_key_value_heads 5"}},
		{"missing hidden", llamaCfgJSON(map[string]any{"hidden_size": "DELETE"}), base, []string{`missing "hidden_size"`}},
		{"zero layers", llamaCfgJSON(map[string]any{"num_hidden_layers": 0}), base, []string{"num_hidden_layers", "positive"}},
		{"fractional size", llamaCfgJSON(map[string]any{"vocab_size": 10.5}), base, []string{"not an integer"}},
		{"wrong type", llamaCfgJSON(map[string]any{"rms_norm_eps": "small"}), base, []string{"rms_norm_eps"}},
		{"gelu llama", llamaCfgJSON(map[string]any{"hidden_act": "gelu"}), base, []string{`hidden_act "gelu"`}},
		{"llama attention_bias", llamaCfgJSON(map[string]any{"attention_bias": true}), base, []string{"attention_bias=true"}},
		{"bad eos", llamaCfgJSON(map[string]any{"eos_token_id": "x"}), base, []string{"eos_token_id"}},
		{"gpt2 exact gelu", map[string]any{"architectures": []string{"GPT2LMHeadModel"}, "vocab_size": 10, "n_embd": 8, "n_head": 2, "n_layer": 1,
			"n_positions": 16, "activation_function": "gelu"}, base, []string{`activation_function "gelu"`}},
		{"gpt2 layer-scaled attention", map[string]any{"architectures": []string{"GPT2LMHeadModel"}, "vocab_size": 10, "n_embd": 8, "n_head": 2, "n_layer": 1,
			"n_positions": 16, "scale_attn_by_inverse_layer_idx": true}, base, []string{"scale_attn_by_inverse_layer_idx=true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := configFromJSON("dir/config.json", data)
			if tc.wantErr != nil {
				wantErr(t, err, append([]string{"dir/config.json"}, tc.wantErr...)...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// configFromJSON runs config.json bytes through the architecture lookup and
// the family, as openHF does.
func configFromJSON(path string, data []byte) (format.ModelConfig, error) {
	hf, err := parseHFConfig(path, data)
	if err != nil {
		return format.ModelConfig{}, err
	}
	fam, err := lookupFamily(hf)
	if err != nil {
		return format.ModelConfig{}, err
	}
	return fam.Config(hf)
}
