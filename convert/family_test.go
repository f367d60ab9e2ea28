package convert

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

func TestOpenHFErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(cfg map[string]any, ts []testTensor) []testTensor
		want   []string
	}{
		{"unsupported dtype of a used tensor", func(cfg map[string]any, ts []testTensor) []testTensor {
			ts[2].dtype = "I64"
			ts[2].data = append(ts[2].data, ts[2].data...)
			return ts
		}, []string{"model.safetensors", "model.layers.0.self_attn.q_proj.weight", "dtype I64"}},
		{"unknown dtype string", func(cfg map[string]any, ts []testTensor) []testTensor {
			ts[3].dtype = "Q4_K"
			return ts
		}, []string{"model.safetensors", "model.layers.0.self_attn.k_proj.weight", `"Q4_K"`}},
		{"leftover tensor", func(cfg map[string]any, ts []testTensor) []testTensor {
			return append(ts, testTensor{"model.layers.0.self_attn.q_norm.weight", "F32", []int64{1}, make([]byte, 4)})
		}, []string{"not used", "model.layers.0.self_attn.q_norm.weight"}},
		{"missing tensor", func(cfg map[string]any, ts []testTensor) []testTensor {
			return ts[:len(ts)-1]
		}, []string{"missing tensor lm_head.weight"}},
		{"wrong shape", func(cfg map[string]any, ts []testTensor) []testTensor {
			ts[4].shape = []int64{4, 2}
			return ts
		}, []string{"model.layers.0.self_attn.v_proj.weight", "shape [4 2], want [2 4]"}},
		{"missing architectures", func(cfg map[string]any, ts []testTensor) []testTensor {
			delete(cfg, "architectures")
			return ts
		}, []string{"config.json", "config.json: no architectures"}},
		{"unsupported architecture", func(cfg map[string]any, ts []testTensor) []testTensor {
			cfg["architectures"] = []string{"MambaForCausalLM"}
			return ts
		}, []string{"config.json", "MambaForCausalLM", "LlamaForCausalLM"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(11, 12)))
			ts = tc.mutate(cfg, ts)
			dir := t.TempDir()
			writeHFDir(t, dir, cfg, ts)
			m, err := Open(dir, OpenOptions{})
			if err == nil {
				m.Close()
			}
			wantErr(t, err, append([]string{dir}, tc.want...)...)
		})
	}
}

func TestLlamaVariants(t *testing.T) {
	t.Run("tied with only lm_head stored, inv_freq ignored", func(t *testing.T) {
		cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(13, 14)))
		cfg["tie_word_embeddings"] = true
		head := ts[len(ts)-1]
		ts = append(ts[1:], testTensor{"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", []int64{1}, make([]byte, 4)})
		m := openHFModel(t, cfg, ts)
		d, _ := m.Tensor("token_embd.weight")
		if d.SourceName != "lm_head.weight" {
			t.Errorf("token_embd from %s", d.SourceName)
		}
		if _, ok := m.Tensor("output.weight"); ok {
			t.Error("tied model has output.weight")
		}
		if got := loadTensor(t, m, "token_embd.weight"); !bytes.Equal(f32Bytes(got), head.data) {
			t.Error("token_embd values differ from lm_head")
		}
	})
	t.Run("qwen2 biases", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		cfg, ts := tinyLlamaCkpt(rng)
		cfg["architectures"] = []string{"Qwen2ForCausalLM"}
		for _, b := range []struct {
			n string
			k int
		}{{"q", 4}, {"k", 2}, {"v", 2}} {
			ts = append(ts, testTensor{"model.layers.0.self_attn." + b.n + "_proj.bias", "F32", []int64{int64(b.k)}, f32Bytes(randF32(rng, b.k))})
		}
		m := openHFModel(t, cfg, ts)
		var names []string
		for _, d := range m.Tensors {
			names = append(names, d.Name)
		}
		want := []string{"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
			"blk.0.attn_output.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight",
			"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias", "output_norm.weight", "output.weight"}
		if !slices.Equal(names, want) {
			t.Errorf("order\n got %v\nwant %v", names, want)
		}
		if m.Config.Arch != "qwen2" || !m.Config.AttnBias {
			t.Errorf("config %+v", m.Config)
		}
	})
}

// TestGPT2Synthetic covers the prefix-less naming, the ignored mask buffers
// and a stored lm_head, with odd sizes for the transposes.
func TestGPT2Synthetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	const h, ffn, vocab, ctx = 6, 10, 7, 5
	cfg := map[string]any{"architectures": []string{"GPT2LMHeadModel"}, "vocab_size": vocab, "n_embd": h, "n_head": 2,
		"n_layer": 1, "n_positions": ctx, "n_inner": ffn}
	mk := func(name string, shape ...int64) testTensor { return randTensors(rng, []namedShape{{name, shape}})[0] }
	ts := []testTensor{
		mk("wte.weight", vocab, h), mk("wpe.weight", ctx, h), mk("lm_head.weight", vocab, h),
		mk("h.0.ln_1.weight", h), mk("h.0.ln_1.bias", h), mk("h.0.ln_2.weight", h), mk("h.0.ln_2.bias", h),
		mk("h.0.attn.c_attn.weight", h, 3*h), mk("h.0.attn.c_attn.bias", 3*h),
		mk("h.0.attn.c_proj.weight", h, h), mk("h.0.attn.c_proj.bias", h),
		mk("h.0.mlp.c_fc.weight", h, ffn), mk("h.0.mlp.c_fc.bias", ffn),
		mk("h.0.mlp.c_proj.weight", ffn, h), mk("h.0.mlp.c_proj.bias", h),
		mk("h.0.attn.bias", 1, 1, ctx, ctx), mk("h.0.attn.masked_bias"),
		mk("ln_f.weight", h), mk("ln_f.bias", h),
	}
	m := openHFModel(t, cfg, ts)
	if len(m.Tensors) != 2+16+2 {
		t.Errorf("%d tensors", len(m.Tensors))
	}
	src := map[string][]float32{}
	for _, x := range ts {
		v := make([]float32, len(x.data)/4)
		decodeLE(v, x.data, "F32")
		src[x.name] = v
	}
	check := func(name string, want func(out, in int) float32, rows, cols int) {
		got := loadTensor(t, m, name)
		for o := 0; o < rows; o++ {
			for i := 0; i < cols; i++ {
				if got[o*cols+i] != want(o, i) {
					t.Fatalf("%s[%d,%d] wrong", name, o, i)
				}
			}
		}
	}
	for part, n := range []string{"attn_q", "attn_k", "attn_v"} {
		check("blk.0."+n+".weight", func(o, i int) float32 { return src["h.0.attn.c_attn.weight"][i*3*h+part*h+o] }, h, h)
		check("blk.0."+n+".bias", func(_, i int) float32 { return src["h.0.attn.c_attn.bias"][part*h+i] }, 1, h)
		if d, ok := m.Tensor("blk.0." + n + ".weight"); ok {
			if _, raw := d.Raw(); raw {
				t.Errorf("transposed %s offers a raw byte path", d.Name)
			}
		}
	}
	check("blk.0.attn_output.weight", func(o, i int) float32 { return src["h.0.attn.c_proj.weight"][i*h+o] }, h, h)
	check("blk.0.ffn_up.weight", func(o, i int) float32 { return src["h.0.mlp.c_fc.weight"][i*ffn+o] }, ffn, h)
	check("blk.0.ffn_down.weight", func(o, i int) float32 { return src["h.0.mlp.c_proj.weight"][i*h+o] }, h, ffn)
	check("position_embd.weight", func(o, i int) float32 { return src["wpe.weight"][o*h+i] }, ctx, h)
	// The k bias is a contiguous range: it keeps a byte-copy path.
	kb, _ := m.Tensor("blk.0.attn_k.bias")
	if sr, ok := kb.Raw(); !ok || sr.Size() != h*4 {
		t.Errorf("attn_k.bias raw path: %v", ok)
	}
}

func TestTransposeAndRotaryMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, sz := range []struct{ rows, cols, c0, m int }{{1, 1, 0, 1}, {3, 7, 2, 4}, {33, 97, 31, 33}, {70, 210, 140, 70}, {65, 64, 0, 64}} {
		src := randF32(rng, sz.rows*sz.cols)
		got := make([]float32, sz.m*sz.rows)
		want := make([]float32, sz.m*sz.rows)
		transposeCols(got, src, sz.rows, sz.cols, sz.c0, sz.m)
		transposeColsRef(want, src, sz.rows, sz.cols, sz.c0, sz.m)
		if !slices.Equal(got, want) {
			t.Errorf("transposeCols %+v differs from reference", sz)
		}
	}
	// rotaryToHalf against the definition: canonical row h·hd + t·hd/2 + j
	// is source row h·hd + 2j + t.
	for _, sz := range []struct{ heads, hd, cols int }{{1, 2, 1}, {3, 8, 5}, {4, 64, 3}} {
		rows := sz.heads * sz.hd
		src := randF32(rng, rows*sz.cols)
		got := make([]float32, len(src))
		rotaryToHalf(got, src, rows, sz.cols, sz.hd)
		for r := 0; r < rows; r++ {
			h, k := r/sz.hd, r%sz.hd
			s := h*sz.hd + 2*(k%(sz.hd/2)) + k/(sz.hd/2)
			if !slices.Equal(got[r*sz.cols:(r+1)*sz.cols], src[s*sz.cols:(s+1)*sz.cols]) {
				t.Fatalf("%+v: row %d is not source row %d", sz, r, s)
			}
		}
	}
}

// TestModelTensorLookup guards Model.Tensor and Close on a tiny model.
func TestModelTensorLookup(t *testing.T) {
	cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(21, 22)))
	dir := t.TempDir()
	writeHFDir(t, dir, cfg, ts)
	m, err := Open(dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Tensor("blk.0.ffn_down.weight"); !ok {
		t.Error("blk.0.ffn_down.weight not found")
	}
	if _, ok := m.Tensor("blk.1.ffn_down.weight"); ok {
		t.Error("found a tensor of a layer that does not exist")
	}
	if m.TokenizerKind != "hf" || len(m.TokenizerFiles) != 1 {
		t.Errorf("tokenizer %q %v", m.TokenizerKind, m.TokenizerFiles)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	d, _ := m.Tensor("output_norm.weight")
	wantErr(t, d.Load(context.Background(), make([]float32, 4)), filepath.Join(dir, "model.safetensors"), "output_norm.weight")
}
