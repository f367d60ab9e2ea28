package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
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
	shapes := []namedShape{
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
	return cfg, randTensors(rng, shapes)
}

// namedShape is a tensor's name and shape, for randTensors.
type namedShape struct {
	name  string
	shape []int64
}

// randTensors gives F32 tensors of the given names and shapes filled with
// finite random values.
func randTensors(rng *rand.Rand, shapes []namedShape) []testTensor {
	var ts []testTensor
	for _, s := range shapes {
		n := int64(1)
		for _, d := range s.shape {
			n *= d
		}
		ts = append(ts, testTensor{s.name, "F32", s.shape, f32Bytes(randF32(rng, int(n)))})
	}
	return ts
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

// openModel opens a checkpoint, closed when the test ends.
func openModel(t testing.TB, path string, opts OpenOptions) *Model {
	t.Helper()
	return testshared.Open(t, func(p string) (*Model, error) { return Open(p, opts) }, path)
}

// openHFModel writes a Hugging Face folder (writeHFDir) and opens it.
func openHFModel(t testing.TB, cfg map[string]any, ts []testTensor) *Model {
	t.Helper()
	dir := t.TempDir()
	writeHFDir(t, dir, cfg, ts)
	return openModel(t, dir, OpenOptions{})
}

// openShrink opens a .shrink file, closed when the test ends.
func openShrink(t testing.TB, path string) *format.File {
	t.Helper()
	return testshared.Open(t, format.Open, path)
}

// openGGUFFile opens a GGUF file, closed when the test ends.
func openGGUFFile(t testing.TB, path string) *gguf.File {
	t.Helper()
	return testshared.Open(t, gguf.Open, path)
}

// loadTensor loads the named canonical tensor of m as float32.
func loadTensor(t testing.TB, m *Model, name string) []float32 {
	t.Helper()
	d, ok := m.Tensor(name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	return loadDesc(t, d)
}

// loadDesc loads a tensor descriptor's values as float32.
func loadDesc(t testing.TB, d *TensorDesc) []float32 {
	t.Helper()
	v := make([]float32, d.NumElements())
	if err := d.Load(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	return v
}

// convertModel plans m with pol and converts it with opts into a new file
// in a temporary folder.
func convertModel(t testing.TB, m *Model, pol Policy, opts Options) (string, *Result) {
	t.Helper()
	plan, err := MakePlan(m.Config, m.Tensors, pol)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.shrink")
	res, err := Convert(context.Background(), m, plan, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out, res
}

// decodePart decodes the first part of a stored tensor as [rows, cols],
// the shape of the tensor itself.
func decodePart(t testing.TB, f *format.File, st *format.Tensor) []float32 {
	t.Helper()
	rows, cols, err := matrixShape(st.Shape)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, rows*cols)
	if err := quant.Decode(st.Parts[0].Encoding, v, f.PartData(&st.Parts[0]), rows, cols); err != nil {
		t.Fatal(err)
	}
	return v
}

// ggufTokenizer builds the tokenizer of a GGUF's vocabulary metadata.
func ggufTokenizer(t testing.TB, gf *gguf.File) *tokenizer.Tokenizer {
	t.Helper()
	v, err := tokenizer.VocabFromGGUF(gf)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUFVocab(v)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sameEncoding checks that two tokenizers give the same ids for every text,
// reporting at most maxReports of the texts they differ on.
func sameEncoding(t testing.TB, want, got *tokenizer.Tokenizer, texts []string, maxReports int) {
	t.Helper()
	bad := 0
	for _, s := range texts {
		a, err1 := want.Encode(s, true)
		b, err2 := got.Encode(s, true)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			if bad++; bad <= maxReports {
				t.Errorf("%q: want %v (%v), got %v (%v)", s, a, err1, b, err2)
			}
		}
	}
	if bad > maxReports {
		t.Errorf("and %d more texts encode differently", bad-maxReports)
	}
}

// sameBits fails unless got holds want's values bit for bit; name is for
// the message, which compares with gguf-py's reference values.
func sameBits(t testing.TB, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, gguf-py %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %g, gguf-py %g", name, i, got[i], want[i])
		}
	}
}
