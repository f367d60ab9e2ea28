package convert

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/quant"
)

// wideLlamaCkpt is a 1-layer Llama whose embeddings and output head have a
// million weights each, so that encoding them is split into several
// parallel chunks.
func wideLlamaCkpt(rng *rand.Rand) (map[string]any, []testTensor) {
	const h, v, ffn = 256, 4096, 64
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "vocab_size": v, "hidden_size": h,
		"intermediate_size": ffn, "num_hidden_layers": 1, "num_attention_heads": 4,
		"num_key_value_heads": 4, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
		"tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
	}
	shapes := []namedShape{
		{"model.embed_tokens.weight", []int64{v, h}},
		{"model.layers.0.input_layernorm.weight", []int64{h}},
		{"model.layers.0.self_attn.q_proj.weight", []int64{h, h}},
		{"model.layers.0.self_attn.k_proj.weight", []int64{h, h}},
		{"model.layers.0.self_attn.v_proj.weight", []int64{h, h}},
		{"model.layers.0.self_attn.o_proj.weight", []int64{h, h}},
		{"model.layers.0.post_attention_layernorm.weight", []int64{h}},
		{"model.layers.0.mlp.gate_proj.weight", []int64{ffn, h}},
		{"model.layers.0.mlp.up_proj.weight", []int64{ffn, h}},
		{"model.layers.0.mlp.down_proj.weight", []int64{h, ffn}},
		{"model.norm.weight", []int64{h}},
		{"lm_head.weight", []int64{v, h}},
	}
	return cfg, randTensors(rng, shapes)
}

// TestConvertDeterministicAcrossWorkers converts one checkpoint with 1, 2
// and 4 workers, several times each, at a measured float encoding and at
// q8: every file must be byte-identical (metrics included).
func TestConvertDeterministicAcrossWorkers(t *testing.T) {
	dir := t.TempDir()
	cfg, ts := wideLlamaCkpt(rand.New(rand.NewPCG(7, 8)))
	writeHFDir(t, dir, cfg, ts)
	for _, enc := range []quant.Encoding{quant.F16, quant.Q8} {
		t.Run(enc.String(), func(t *testing.T) {
			var first []byte
			for _, workers := range []int{1, 2, 4, 2, 4, 3} {
				e := enc
				out, _ := convertModel(t, openModel(t, dir, OpenOptions{}), Policy{Quant: enc, Embed: &e, Output: &e}, Options{Workers: workers})
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = b
				} else if !bytes.Equal(b, first) {
					t.Fatalf("%d workers: the file differs from the 1-worker one", workers)
				}
			}
		})
	}
}

// TestNonFiniteRejectedAtEveryEncoding puts a NaN or Inf into a norm (a
// vector, kept f32 and copied byte for byte) or a projection and converts
// at every encoding: each must refuse, naming tensor, row and column, and
// --allow-nonfinite keeps them in the float encodings only.
func TestNonFiniteRejectedAtEveryEncoding(t *testing.T) {
	cases := []struct {
		tensor, canon string
		idx, row, col int
		v             float32
	}{
		{"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight", 3, 0, 3, float32(math.NaN())},
		{"model.layers.0.mlp.up_proj.weight", "blk.0.ffn_up.weight", 2*4 + 1, 2, 1, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		rng := rand.New(rand.NewPCG(1, 2))
		cfg, ts := tinyLlamaCkpt(rng)
		for i := range ts {
			if ts[i].name == c.tensor {
				vals := make([]float32, len(ts[i].data)/4)
				for j := range vals {
					vals[j] = math.Float32frombits(uint32(ts[i].data[4*j]) | uint32(ts[i].data[4*j+1])<<8 | uint32(ts[i].data[4*j+2])<<16 | uint32(ts[i].data[4*j+3])<<24)
				}
				vals[c.idx] = c.v
				ts[i].data = f32Bytes(vals)
			}
		}
		dir := t.TempDir()
		writeHFDir(t, dir, cfg, ts)
		for _, enc := range []quant.Encoding{quant.F32, quant.F16, quant.BF16, quant.Q8} {
			for _, allow := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%v/allow=%v", c.canon, enc, allow), func(t *testing.T) {
					m := openModel(t, dir, OpenOptions{})
					e := enc
					plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: enc, Embed: &e, Output: &e})
					if err != nil {
						t.Fatal(err)
					}
					out := filepath.Join(t.TempDir(), "m.shrink")
					_, err = Convert(context.Background(), m, plan, out, Options{AllowNonFinite: allow})
					// Norms stay f32 whatever --quant says; a q8 projection
					// cannot hold a NaN at all.
					wantOK := allow && (enc.IsFloat() || strings.Contains(c.canon, "norm"))
					if wantOK {
						if err != nil {
							t.Fatalf("with AllowNonFinite: %v", err)
						}
						return
					}
					if err == nil {
						t.Fatal("non-finite weight accepted")
					}
					msg := err.Error()
					for _, want := range []string{c.canon, fmt.Sprintf("row %d", c.row), "col", fmt.Sprint(c.col)} {
						if !strings.Contains(msg, want) {
							t.Errorf("error %q lacks %q", msg, want)
						}
					}
					if strings.Contains(msg, "\n") || len(msg) > 400 {
						t.Errorf("error is not one short line: %q", msg)
					}
				})
			}
		}
	}
}

// TestDeclaredLayersBoundedByTensors: a config declaring far more layers
// than the checkpoint holds fails at once with one short line, whatever
// the count (it used to run out of memory, or list every missing tensor).
func TestDeclaredLayersBoundedByTensors(t *testing.T) {
	for _, layers := range []float64{1e5, 1e9, 60000} {
		t.Run(fmt.Sprint(layers), func(t *testing.T) {
			cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(1, 2)))
			cfg["num_hidden_layers"] = layers
			dir := t.TempDir()
			writeHFDir(t, dir, cfg, ts)
			start := time.Now()
			m, err := Open(dir, OpenOptions{})
			if err == nil {
				m.Close()
				t.Fatal("accepted")
			}
			if len(err.Error()) > 400 || time.Since(start) > time.Minute {
				t.Fatalf("error of %d bytes: %.300s", len(err.Error()), err)
			}
		})
	}
	// Fewer tensors missing than layers declared: at most a few are named.
	cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(1, 2)))
	cfg["num_hidden_layers"] = 2
	ts = append(ts, ts[1:9]...) // padding so the layer ceiling passes
	for i := range ts[len(ts)-8:] {
		ts[len(ts)-8+i].name = fmt.Sprintf("pad.%d", i)
	}
	dir := t.TempDir()
	writeHFDir(t, dir, cfg, ts)
	_, err := Open(dir, OpenOptions{})
	wantErr(t, err, "missing tensor model.layers.1.", "and 6 more")
}

// TestBrokenTokenizerRefused: convert loads the tokenizer it would embed
// with the runtime's loader; a broken one is refused in one line (it used
// to be copied into the output, where only `run` found out), and
// NoTokenizer makes a weights-only file on purpose.
func TestBrokenTokenizerRefused(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	cases := []struct {
		name, tokJSON, tokConfig string
	}{
		{"not JSON", `{"model":`, ""},
		{"null", `null`, ""},
		{"empty vocab", `{"model":{"type":"WordLevel","vocab":{}}}`, ""},
		{"merges of unknown tokens", `{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["x y"]}}`, ""},
		{"id 10^12", `{"model":{"type":"BPE","vocab":{"a":1000000000000}}}`, ""},
		{"id -1", `{"model":{"type":"BPE","vocab":{"a":-1}}}`, ""},
		{"unknown model type", `{"model":{"type":"Frobnicate"}}`, ""},
		{"unknown normalizer", `{"normalizer":{"type":"Frobnicate"},"model":{"type":"BPE"}}`, ""},
		{"unknown decoder", `{"decoder":{"type":"Frobnicate"},"model":{"type":"BPE"}}`, ""},
		{"deep nesting", `{"model":{"type":"BPE","vocab":` + deep + `}}`, ""},
		{"id beyond the model vocabulary", `{"model":{"type":"BPE","vocab":{"a":0,"b":1,"c":500}}}`, ""},
		{"tokenizer_config not JSON", `{"model":{"type":"BPE"}}`, `{"bos_token":`},
		{"tokenizer_config null", `{"model":{"type":"BPE"}}`, `null`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(1, 2)))
			dir := t.TempDir()
			writeHFDir(t, dir, cfg, ts)
			writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(c.tokJSON))
			if c.tokConfig != "" {
				writeFile(t, filepath.Join(dir, "tokenizer_config.json"), []byte(c.tokConfig))
			}
			m, err := Open(dir, OpenOptions{})
			if err == nil {
				m.Close()
				t.Fatal("broken tokenizer accepted")
			}
			if strings.Contains(err.Error(), "\n") || len(err.Error()) > 600 {
				t.Errorf("error is not one short line: %.300q", err)
			}
			m, err = Open(dir, OpenOptions{NoTokenizer: true})
			if err != nil {
				t.Fatalf("NoTokenizer: %v", err)
			}
			if m.TokenizerKind != "" || len(m.TokenizerFiles) != 0 {
				t.Errorf("NoTokenizer carried %q %d files", m.TokenizerKind, len(m.TokenizerFiles))
			}
			m.Close()
		})
	}
}

// TestSideFilesBounded: config.json or tokenizer.json as a symlink to
// /dev/zero, or as a named pipe, is refused at once instead of being read
// forever (or blocking on the pipe).
func TestSideFilesBounded(t *testing.T) {
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json"} {
		for _, kind := range []string{"/dev/zero", "fifo", "huge"} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(1, 2)))
				dir := t.TempDir()
				writeHFDir(t, dir, cfg, ts)
				p := filepath.Join(dir, name)
				os.Remove(p)
				switch kind {
				case "/dev/zero":
					if err := os.Symlink("/dev/zero", p); err != nil {
						t.Fatal(err)
					}
				case "fifo":
					if err := syscall.Mkfifo(p, 0o600); err != nil {
						t.Skip(err)
					}
				case "huge":
					f, err := os.Create(p)
					if err != nil {
						t.Fatal(err)
					}
					// Sparse: 100 MiB of nothing, over every side-file cap.
					if err := f.Truncate(100 << 20); err != nil {
						t.Fatal(err)
					}
					f.Close()
				}
				done := make(chan error, 1)
				go func() {
					m, err := Open(dir, OpenOptions{})
					if err == nil {
						m.Close()
					}
					done <- err
				}()
				select {
				case err := <-done:
					if err == nil {
						t.Fatal("accepted")
					}
				case <-time.After(30 * time.Second):
					t.Fatal("Open blocked")
				}
			})
		}
	}
}

// TestRopeScalingMissingKeysOneLine: every missing key in one line.
func TestRopeScalingMissingKeysOneLine(t *testing.T) {
	cfg, ts := tinyLlamaCkpt(rand.New(rand.NewPCG(1, 2)))
	cfg["rope_scaling"] = map[string]any{"rope_type": "llama3"}
	dir := t.TempDir()
	writeHFDir(t, dir, cfg, ts)
	_, err := Open(dir, OpenOptions{})
	wantErr(t, err, "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}
