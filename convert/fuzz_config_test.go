package convert

import (
	"os"
	"testing"

	"github.com/shrink-llm/shrink/format"
)

// FuzzHFConfig: config.json parsing and every family's reading of it must
// never panic, and whatever a family accepts must pass the format's limits
// (checkDeclared), so no size taken from the file is unbounded.
func FuzzHFConfig(f *testing.F) {
	if b, err := os.ReadFile("../internal/demo/llama-stories-tiny/config.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"architectures":["GPT2LMHeadModel"],"n_layer":2,"n_embd":8,"n_head":2,"vocab_size":16,"n_positions":8}`))
	f.Add([]byte(`{"architectures":["Qwen2ForCausalLM"],"vocab_size":8,"hidden_size":4,"intermediate_size":6,"num_hidden_layers":1,"num_attention_heads":2,"max_position_embeddings":16,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8}}`))
	f.Add([]byte(`{"architectures":["MistralForCausalLM"],"vocab_size":8,"hidden_size":4,"intermediate_size":6,"num_hidden_layers":1e9,"num_attention_heads":2,"max_position_embeddings":16,"sliding_window":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hf, err := parseHFConfig("config.json", data)
		if err != nil {
			return
		}
		for _, fam := range families() {
			cfg, err := fam.Config(hf)
			if err != nil {
				continue
			}
			if err := checkDeclared("config.json", &cfg, 1<<20); err != nil {
				continue
			}
			if cfg.NumLayers > format.MaxLayers || cfg.HiddenSize > format.MaxDim || cfg.ContextLength > format.MaxContext {
				t.Fatalf("accepted out-of-limit config %+v", cfg)
			}
		}
	})
}

// FuzzTokenizerFiles: the check convert runs on the tokenizer files it
// would embed must never panic, whatever tokenizer.json and
// tokenizer_config.json hold.
func FuzzTokenizerFiles(f *testing.F) {
	if b, err := os.ReadFile("../internal/demo/llama-stories-tiny/tokenizer.json"); err == nil {
		c, _ := os.ReadFile("../internal/demo/llama-stories-tiny/tokenizer_config.json")
		f.Add(b, c)
	}
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`), []byte(`{"bos_token":"a"}`))
	f.Add([]byte(`{"model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}`), []byte(`null`))
	cfg := format.ModelConfig{VocabSize: 4096}
	f.Fuzz(func(t *testing.T, tj, tc []byte) {
		files := map[string][]byte{"tokenizer.json": tj}
		if len(tc) > 0 {
			files["tokenizer_config.json"] = tc
		}
		_ = checkTokenizer("fuzz", "hf", files, cfg)
	})
}
