package convert

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testTensor is one tensor for the tiny safetensors writer below.
type testTensor struct {
	name  string
	dtype DType
	shape []int64
	data  []byte
}

// encodeSafetensors lays the tensors out in the given order after a JSON
// header (keys sorted by encoding/json, so header order differs from data
// order, as in real files).
func encodeSafetensors(tensors []testTensor, meta map[string]string) []byte {
	hdr := map[string]any{}
	if meta != nil {
		hdr["__metadata__"] = meta
	}
	var data []byte
	for _, t := range tensors {
		shape := append([]int64{}, t.shape...) // a scalar is [], never null
		hdr[t.name] = map[string]any{
			"dtype": t.dtype, "shape": shape,
			"data_offsets": []int{len(data), len(data) + len(t.data)},
		}
		data = append(data, t.data...)
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		panic(err)
	}
	for len(js)%8 != 0 { // writers pad the header with spaces
		js = append(js, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return append(append(out, js...), data...)
}

// rawHeaderFile builds a safetensors file from a literal header and data.
func rawHeaderFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)
}

func f32Bytes(v []float32) []byte {
	out := make([]byte, 0, 4*len(v))
	for _, x := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

// randBytes gives n random bytes; as 16-bit floats they include NaN, Inf
// and subnormal patterns.
func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// randF32 gives n finite random float32 values.
func randF32(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// tinyLlamaCkpt is a complete 1-layer Llama checkpoint in F32: config.json
// values and tensors, for error-case tests to mutate.
func tinyLlamaCkpt(rng *rand.Rand) (map[string]any, []testTensor) {
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "vocab_size": 8, "hidden_size": 4,
		"intermediate_size": 6, "num_hidden_layers": 1, "num_attention_heads": 2,
		"num_key_value_heads": 1, "max_position_embeddings": 16, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
		"torch_dtype": "float32",
	}
	shapes := []struct {
		name  string
		shape []int64
	}{
		{"model.embed_tokens.weight", []int64{8, 4}},
		{"model.layers.0.input_layernorm.weight", []int64{4}},
		{"model.layers.0.self_attn.q_proj.weight", []int64{4, 4}},
		{"model.layers.0.self_attn.k_proj.weight", []int64{2, 4}},
		{"model.layers.0.self_attn.v_proj.weight", []int64{2, 4}},
		{"model.layers.0.self_attn.o_proj.weight", []int64{4, 4}},
		{"model.layers.0.post_attention_layernorm.weight", []int64{4}},
		{"model.layers.0.mlp.gate_proj.weight", []int64{6, 4}},
		{"model.layers.0.mlp.up_proj.weight", []int64{6, 4}},
		{"model.layers.0.mlp.down_proj.weight", []int64{4, 6}},
		{"model.norm.weight", []int64{4}},
		{"lm_head.weight", []int64{8, 4}},
	}
	var ts []testTensor
	for _, s := range shapes {
		n := int64(1)
		for _, d := range s.shape {
			n *= d
		}
		ts = append(ts, testTensor{s.name, "F32", s.shape, f32Bytes(randF32(rng, int(n)))})
	}
	return cfg, ts
}

// writeHFDir writes config.json, model.safetensors and a tokenizer.json.
func writeHFDir(t testing.TB, dir string, cfg map[string]any, ts []testTensor) {
	t.Helper()
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	writeFile(t, filepath.Join(dir, "model.safetensors"), encodeSafetensors(ts, map[string]string{"format": "pt"}))
	writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"BPE"}}`))
}

// wantErr fails unless err is non-nil and mentions every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}
