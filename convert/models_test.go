package convert

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
)

// canonicalShape is DESIGN.md's shape table, written out independently of
// the families.
func canonicalShape(cfg format.ModelConfig, name string) ([]int64, bool) {
	h, v, f := int64(cfg.HiddenSize), int64(cfg.VocabSize), int64(cfg.IntermediateSize)
	q, kv := int64(cfg.NumHeads*cfg.HeadDim), int64(cfg.NumKVHeads*cfg.HeadDim)
	if rest, ok := strings.CutPrefix(name, "blk."); ok {
		i := strings.IndexByte(rest, '.')
		if n, err := strconv.Atoi(rest[:i]); err != nil || n < 0 || n >= cfg.NumLayers {
			return nil, false
		}
		name = "blk.N" + rest[i:]
	}
	table := map[string][]int64{
		"token_embd.weight":        {v, h},
		"position_embd.weight":     {int64(cfg.ContextLength), h},
		"blk.N.attn_norm.weight":   {h},
		"blk.N.attn_norm.bias":     {h},
		"blk.N.attn_q.weight":      {q, h},
		"blk.N.attn_q.bias":        {q},
		"blk.N.attn_k.weight":      {kv, h},
		"blk.N.attn_k.bias":        {kv},
		"blk.N.attn_v.weight":      {kv, h},
		"blk.N.attn_v.bias":        {kv},
		"blk.N.attn_output.weight": {h, q},
		"blk.N.attn_output.bias":   {h},
		"blk.N.ffn_norm.weight":    {h},
		"blk.N.ffn_norm.bias":      {h},
		"blk.N.ffn_gate.weight":    {f, h},
		"blk.N.ffn_up.weight":      {f, h},
		"blk.N.ffn_up.bias":        {f},
		"blk.N.ffn_down.weight":    {h, f},
		"blk.N.ffn_down.bias":      {h},
		"output_norm.weight":       {h},
		"output_norm.bias":         {h},
		"output.weight":            {v, h},
	}
	s, ok := table[name]
	return s, ok
}

func TestOpenSharedModels(t *testing.T) {
	tests := []struct {
		dir     []string
		opts    OpenOptions
		want    format.ModelConfig
		tensors int
		dtype   DType
		tokKind string
		tokens  []string
	}{
		{[]string{"llama-stories-12m"}, OpenOptions{}, format.ModelConfig{Arch: "llama", Source: "hf:LlamaForCausalLM",
			VocabSize: 4096, HiddenSize: 384, IntermediateSize: 1024, NumLayers: 6, NumHeads: 6, NumKVHeads: 2, HeadDim: 64,
			ContextLength: 512, RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu", BOS: 1, EOS: []int{2}},
			1 + 6*9 + 2, "BF16", "hf", []string{"tokenizer.json", "tokenizer_config.json"}},
		{[]string{"llama-stories-tiny"}, OpenOptions{}, format.ModelConfig{Arch: "llama", Source: "hf:LlamaForCausalLM",
			VocabSize: 4096, HiddenSize: 128, IntermediateSize: 352, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 32,
			ContextLength: 512, RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu", TiedEmbeddings: true, BOS: 1, EOS: []int{2}},
			1 + 4*9 + 1, "F32", "hf", []string{"tokenizer.json", "tokenizer_config.json"}},
		{[]string{"tinystories-656k"}, OpenOptions{}, format.ModelConfig{Arch: "llama", Source: "hf:LlamaForCausalLM",
			VocabSize: 2048, HiddenSize: 128, IntermediateSize: 384, NumLayers: 2, NumHeads: 8, NumKVHeads: 4, HeadDim: 16,
			ContextLength: 512, RopeTheta: 10000, NormEps: 1e-6, NormKind: "rmsnorm", Activation: "silu", TiedEmbeddings: true, BOS: 1, EOS: []int{2}},
			1 + 2*9 + 1, "F32", "hf", []string{"special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"}},
		{[]string{"gpt2-stories-4m"}, OpenOptions{}, format.ModelConfig{Arch: "gpt2", Source: "hf:GPT2LMHeadModel",
			VocabSize: 4096, HiddenSize: 256, IntermediateSize: 1024, NumLayers: 4, NumHeads: 4, NumKVHeads: 4, HeadDim: 64,
			ContextLength: 512, NormEps: 1e-5, NormKind: "layernorm", Activation: "gelu_tanh", TiedEmbeddings: true, AttnBias: true, BOS: 0, EOS: []int{0}},
			2 + 4*16 + 2, "F16", "hf", []string{"tokenizer.json", "tokenizer_config.json"}},
		{[]string{"stories260K", "stories260K.bin"}, OpenOptions{}, format.ModelConfig{Arch: "llama", Source: "llama2c",
			VocabSize: 512, HiddenSize: 64, IntermediateSize: 172, NumLayers: 5, NumHeads: 8, NumKVHeads: 4, HeadDim: 8,
			ContextLength: 512, RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu", TiedEmbeddings: true, BOS: 1, EOS: []int{2}},
			1 + 5*9 + 1, "F32", "llama2c", []string{"tokenizer.bin"}},
	}
	for _, tc := range tests {
		t.Run(filepath.Join(tc.dir...), func(t *testing.T) {
			path := testshared.Path(t, append([]string{"models"}, tc.dir...)...)
			m := openModel(t, path, tc.opts)
			if !reflect.DeepEqual(m.Config, tc.want) {
				t.Errorf("config\n got %+v\nwant %+v", m.Config, tc.want)
			}
			if len(m.Tensors) != tc.tensors {
				t.Errorf("%d tensors, want %d", len(m.Tensors), tc.tensors)
			}
			if m.TokenizerKind != tc.tokKind {
				t.Errorf("tokenizer kind %q, want %q", m.TokenizerKind, tc.tokKind)
			}
			var names []string
			for n, b := range m.TokenizerFiles {
				if len(b) == 0 {
					t.Errorf("tokenizer file %s is empty", n)
				}
				names = append(names, n)
			}
			sort.Strings(names)
			if !reflect.DeepEqual(names, tc.tokens) {
				t.Errorf("tokenizer files %v, want %v", names, tc.tokens)
			}
			if m.SourceBytes <= 0 {
				t.Errorf("SourceBytes = %d", m.SourceBytes)
			}
			if m.Tensors[0].Name != "token_embd.weight" {
				t.Errorf("first tensor %s", m.Tensors[0].Name)
			}
			for _, d := range m.Tensors {
				want, ok := canonicalShape(m.Config, d.Name)
				if !ok {
					t.Errorf("unexpected canonical name %s", d.Name)
					continue
				}
				if !reflect.DeepEqual(d.Shape, want) {
					t.Errorf("%s: shape %v, want %v", d.Name, d.Shape, want)
				}
				if d.DType != tc.dtype {
					t.Errorf("%s: dtype %s, want %s", d.Name, d.DType, tc.dtype)
				}
				if got, ok := m.Tensor(d.Name); !ok || got != d {
					t.Errorf("Tensor(%q) does not find it", d.Name)
				}
				checkLoadAgainstRaw(t, d)
			}
		})
	}
}

// checkLoadAgainstRaw loads d and, when it has a byte-copy path, checks the
// values against the reference decoding of its raw bytes; it also rejects
// non-finite weights, which no trained model here has.
func checkLoadAgainstRaw(t *testing.T, d *TensorDesc) {
	t.Helper()
	got := loadDesc(t, d)
	for i, x := range got {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("%s[%d] = %v", d.Name, i, x)
		}
	}
	sr, ok := d.Raw()
	if !ok {
		return
	}
	raw, err := io.ReadAll(sr)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, len(got))
	decodeLE(want, raw, d.DType)
	if !bytes.Equal(f32Bytes(got), f32Bytes(want)) {
		t.Errorf("%s: Load differs from decoding Raw bytes", d.Name)
	}
}

// sourceValues decodes a whole source tensor with the reference decoder.
func sourceValues(t *testing.T, s *SourceTensor) []float32 {
	t.Helper()
	raw := make([]byte, s.size)
	if _, err := s.r.ReadAt(raw, s.off); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, s.NumElements())
	decodeLE(v, raw, s.DType)
	return v
}

func TestGPT2TransposeAndSplit(t *testing.T) {
	m := openModel(t, testshared.Path(t, "models", "gpt2-stories-4m"), OpenOptions{})
	h := m.Config.HiddenSize
	load := func(name string) []float32 { return loadTensor(t, m, name) }
	for layer := 0; layer < m.Config.NumLayers; layer++ {
		blk := fmt.Sprintf("blk.%d.", layer)
		cw, _ := m.Tensor(blk + "attn_q.weight")
		src := sourceValues(t, cw.src) // c_attn.weight [h, 3h]
		cb, _ := m.Tensor(blk + "attn_q.bias")
		srcBias := sourceValues(t, cb.src)
		for part, name := range []string{"attn_q", "attn_k", "attn_v"} {
			w := load(blk + name + ".weight")
			for out := 0; out < h; out++ {
				for in := 0; in < h; in++ {
					if w[out*h+in] != src[in*3*h+part*h+out] {
						t.Fatalf("%s%s.weight[%d,%d] = %v, want c_attn[%d,%d] = %v", blk, name, out, in, w[out*h+in], in, part*h+out, src[in*3*h+part*h+out])
					}
				}
			}
			b := load(blk + name + ".bias")
			if !reflect.DeepEqual(b, srcBias[part*h:(part+1)*h]) {
				t.Errorf("%s%s.bias is not c_attn.bias[%d:%d]", blk, name, part*h, (part+1)*h)
			}
		}
		// c_fc is [h, ffn] in the file; ffn_up must be [ffn, h].
		up, _ := m.Tensor(blk + "ffn_up.weight")
		fc := sourceValues(t, up.src)
		w := load(blk + "ffn_up.weight")
		ffn := m.Config.IntermediateSize
		for out := 0; out < ffn; out += 7 {
			for in := 0; in < h; in += 3 {
				if w[out*h+in] != fc[in*ffn+out] {
					t.Fatalf("%sffn_up.weight[%d,%d] is not c_fc[%d,%d]", blk, out, in, in, out)
				}
			}
		}
	}
}

// TestStories260KBinMatchesHF checks the llama2.c reader, including the
// rotary row permutation of wq and wk, against the same model exported to
// Hugging Face layout: every canonical tensor must be bit-identical.
func TestStories260KBinMatchesHF(t *testing.T) {
	dir := testshared.Path(t, "models", "stories260K")
	bin := openModel(t, filepath.Join(dir, "stories260K.bin"), OpenOptions{})
	// hf/ has no tokenizer.json; supplying the llama2.c tokenizer opens it.
	hf := openModel(t, filepath.Join(dir, "hf"), OpenOptions{Tokenizer: filepath.Join(dir, "tok512.bin")})
	if hf.TokenizerKind != "llama2c" || !bytes.Equal(hf.TokenizerFiles["tokenizer.bin"], bin.TokenizerFiles["tokenizer.bin"]) {
		t.Errorf("hf tokenizer override: kind %q", hf.TokenizerKind)
	}
	if len(bin.Tensors) != len(hf.Tensors) {
		t.Fatalf("%d tensors from .bin, %d from hf", len(bin.Tensors), len(hf.Tensors))
	}
	for i, d := range bin.Tensors {
		e := hf.Tensors[i]
		if d.Name != e.Name || !reflect.DeepEqual(d.Shape, e.Shape) {
			t.Fatalf("tensor %d: .bin %s %v, hf %s %v", i, d.Name, d.Shape, e.Name, e.Shape)
		}
		if !bytes.Equal(f32Bytes(loadDesc(t, d)), f32Bytes(loadDesc(t, e))) {
			t.Errorf("%s differs between stories260K.bin and hf/", d.Name)
		}
	}
	// Without the override the folder lacks a tokenizer: a clear error.
	_, err := Open(filepath.Join(dir, "hf"), OpenOptions{})
	wantErr(t, err, filepath.Join(dir, "hf"), "no tokenizer.json")
}
