package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// llamaCppGreedy is a gguf-quants <stem>.llama-cpp-greedy.json record.
type llamaCppGreedy struct {
	Prompt    string    `json:"prompt"`
	PromptIDs []int     `json:"prompt_ids"`
	Generated []int     `json:"generated_ids"`
	RunnerUp  []int     `json:"runner_up_ids"`
	Gap       []float64 `json:"top1_minus_top2_logit"`
}

// TestGGUFQuantsRunLikeLlamaCpp converts every gguf-quants file (random
// weights, each tensor type llama.cpp writes) and teacher-forces
// llama.cpp's 16 greedy tokens: at every step shrink's argmax must be
// llama.cpp's token, or its runner-up where llama.cpp's top-2 gap is below
// 0.03 (llama.cpp multiplies with 8-bit activations; random weights give
// near ties; see the folder's README). The prompt must tokenize to
// llama.cpp's ids. Q8_0 also runs carried as q8.
func TestGGUFQuantsRunLikeLlamaCpp(t *testing.T) {
	dir := modelPath(t, "gguf-quants")
	const tol = 0.03
	type run struct {
		stem string
		enc  quant.Encoding
	}
	var runs []run
	for _, s := range []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"} {
		runs = append(runs, run{s, quant.F32})
	}
	runs = append(runs, run{"q8_0", quant.Q8})
	for _, r := range runs {
		t.Run(r.stem+"/"+r.enc.String(), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, r.stem+".llama-cpp-greedy.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ref llamaCppGreedy
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			m := demotest.Open(t, convertTo(t, filepath.Join(dir, r.stem+".gguf"), r.enc), runtime.Options{})
			ids, err := m.Tokenizer().Encode(ref.Prompt, true)
			if err != nil || !slices.Equal(ids, ref.PromptIDs) {
				t.Fatalf("prompt tokenizes to %v (%v), llama.cpp %v", ids, err, ref.PromptIDs)
			}
			seq := slices.Clone(ref.PromptIDs)
			ties := 0
			for i, want := range ref.Generated {
				s, err := m.NewSession(len(seq))
				if err != nil {
					t.Fatal(err)
				}
				logits, err := s.Prefill(context.Background(), seq, true)
				if err != nil {
					t.Fatal(err)
				}
				last := logits[len(seq)-1]
				got := 0
				for v := range last {
					if last[v] > last[got] {
						got = v
					}
				}
				switch {
				case got == want:
				case got == ref.RunnerUp[i] && ref.Gap[i] < tol:
					ties++
				default:
					t.Fatalf("step %d: argmax %d, llama.cpp %d (runner-up %d, gap %.3g)", i, got, want, ref.RunnerUp[i], ref.Gap[i])
				}
				seq = append(seq, want)
			}
			t.Logf("16 steps agree with llama.cpp (%d near-ties took its runner-up)", ties)
		})
	}
}
