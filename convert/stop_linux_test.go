package convert

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
)

// deepLlamaDir writes an F32 Llama checkpoint of layers small layers and
// returns its folder.
func deepLlamaDir(t *testing.T, layers int) string {
	const v, h, ffn = 256, 256, 512
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "vocab_size": v, "hidden_size": h,
		"intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": 4,
		"num_key_value_heads": 4, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
		"torch_dtype": "float32",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var ts []testTensor
	add := func(name string, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		ts = append(ts, testTensor{name, DTypeF32, shape, f32Bytes(randF32(rng, int(n)))})
	}
	add("model.embed_tokens.weight", v, h)
	for i := range layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", h)
		for _, s := range []string{"q", "k", "v", "o"} {
			add(p+"self_attn."+s+"_proj.weight", h, h)
		}
		add(p+"post_attention_layernorm.weight", h)
		add(p+"mlp.gate_proj.weight", ffn, h)
		add(p+"mlp.up_proj.weight", ffn, h)
		add(p+"mlp.down_proj.weight", h, ffn)
	}
	add("model.norm.weight", h)
	add("lm_head.weight", v, h)
	dir := t.TempDir()
	writeHFDir(t, dir, cfg, ts)
	return dir
}

// TestConvertStopsAtFirstWriteError makes the output file hit the process's
// file size limit (RLIMIT_FSIZE: writes past it fail with EFBIG) a few
// tensors in, and checks that the conversion stops there, for dense and
// for factored tensors, instead of encoding every remaining tensor before
// reporting the error; and that it leaves no file.
func TestConvertStopsAtFirstWriteError(t *testing.T) {
	m := openModel(t, deepLlamaDir(t, 24), OpenOptions{})
	for _, tc := range []struct {
		name string
		pol  Policy
	}{
		{"dense", Policy{Quant: quant.Q8}},
		{"lowrank", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Ratio: 0.5}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := MakePlan(m.Config, m.Tensors, tc.pol)
			if err != nil {
				t.Fatal(err)
			}
			// The writer buffers writeBufferSize bytes, so the failing
			// write comes between limit and limit+writeBufferSize bytes
			// into the file: by tensor fail at the latest.
			const writeBufferSize = 4 << 20 // format.Writer's buffer
			const limit = writeBufferSize + 1<<20
			fail, sum := 0, int64(0)
			for sum <= limit+writeBufferSize {
				sum += plan.Entries[fail].Bytes + 64
				fail++
			}
			if fail+8 >= len(plan.Entries) {
				t.Fatalf("the model is too small to show an early stop: fails at tensor %d of %d", fail, len(plan.Entries))
			}
			dir := t.TempDir()
			var handed int
			var old syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(limit), Max: old.Max}); err != nil {
				t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
			}
			_, err = Convert(context.Background(), m, plan, filepath.Join(dir, "m.shrink"), Options{
				Workers:  2,
				Progress: func(Progress) { handed++ },
			})
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			if err == nil || !strings.Contains(err.Error(), "file too large") {
				t.Fatalf("got %v, want a write error (file too large)", err)
			}
			// The encoder may be a few tensors ahead of the failed write
			// (one queued, one being encoded), not at the end of the model.
			if handed > fail+3 {
				t.Errorf("%d of %d tensors were encoded and handed to the writer, though writing failed by tensor %d", handed, len(plan.Entries), fail)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
				t.Errorf("failed conversion left %v", left)
			}
		})
	}
}
