package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/internal/testshared"
)

func writeText(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// storyFile writes demotest.Story (three short documents, enough for at
// least two chunks of 64 tokens) to a temporary file and returns its path.
func storyFile(t *testing.T) string {
	t.Helper()
	return writeText(t, "story.txt", demotest.Story)
}

func convertDemo(t *testing.T, src, enc string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(src)+"-"+enc+".shrink")
	if code, _, stderr := shrink(t, "convert", src, "-o", out, "--quant", enc); code != 0 {
		t.Fatalf("convert %s %s: %s", src, enc, stderr)
	}
	return out
}

// TestEvalSelfIsExact: a model against itself (the same path, and a
// separately converted f32 file) reads KLD 0, same top 100% and PPL ratio 1
// exactly.
func TestEvalSelfIsExact(t *testing.T) {
	text := storyFile(t)
	f32 := convertDemo(t, demoModel, "f32")
	for _, cand := range []string{demoModel, f32} {
		var rep eval.Report
		shrinkJSON(t, &rep, "eval", "--ref", demoModel, "--model", cand, "--text", text, "--ctx", "64", "--chunks", "2", "--json")
		s := rep.Summary
		if s.KLD.Value != 0 || s.KLDDist.Max != 0 || s.SameTop.Value != 1 || s.PPLRatio.Value != 1 || s.Tokens != 2*63 {
			t.Errorf("%s against itself: KLD %v (max %v), same top %v, PPL ratio %v, %d tokens",
				cand, s.KLD.Value, s.KLDDist.Max, s.SameTop.Value, s.PPLRatio.Value, s.Tokens)
		}
		if rep.Input == nil || rep.Input.Documents != 3 || rep.Model == nil || rep.Model.Path != cand {
			t.Errorf("report header: input %+v, model %+v", rep.Input, rep.Model)
		}
	}
	// The text report, llama.cpp's layout.
	code, stdout, stderr := shrink(t, "eval", "--ref", demoModel, "--model", f32, "--text", text, "--ctx", "64", "--chunks", "2", "--convention", "half")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"====== KL divergence statistics ======", "Mean    KLD:   0.000000 ±   0.000000",
		"Same top p: 100.000000", "Mean PPL(Q)/PPL(base)         :   1.000000", "convention \"half\"", "2 × 64 tokens", "tokens/s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}

// TestEvalQuantizedDiffers makes sure the comparison is not trivially
// zero: q8 must show some divergence.
func TestEvalQuantizedDiffers(t *testing.T) {
	text := storyFile(t)
	q8 := convertDemo(t, demoModel, "q8")
	var rep eval.Report
	shrinkJSON(t, &rep, "eval", "--ref", demoModel, "--model", q8, "--text", text, "--ctx", "64", "--chunks", "2", "--json")
	if s := rep.Summary; !(s.KLD.Value > 0 && s.KLD.Value < 0.05) || s.PPLRatio.Value == 1 || s.SameTop.Value < 0.8 {
		t.Errorf("q8: KLD %v, PPL ratio %v, same top %v", s.KLD.Value, s.PPLRatio.Value, s.SameTop.Value)
	}
	if rep.Model.BitsPerWeight >= 16 || rep.Ref.BitsPerWeight != 32 {
		t.Errorf("bits/weight: candidate %v, reference %v", rep.Model.BitsPerWeight, rep.Ref.BitsPerWeight)
	}
}

func TestEvalBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := writeText(t, "empty.txt", "\n<|endoftext|>\n\n")
	short := writeText(t, "short.txt", "Once upon a time.")
	story := storyFile(t)
	q8 := convertDemo(t, demoModel, "q8")
	type tc = cliCase
	tests := []tc{
		{"empty text", []string{"eval", "--ref", demoModel, "--model", q8, "--text", empty}, exitFail, "no text to evaluate"},
		{"too short", []string{"eval", "--ref", demoModel, "--model", q8, "--text", short, "--ctx", "64"}, exitFail, "fewer than one chunk of 64"},
		{"missing text", []string{"eval", "--ref", demoModel, "--model", q8, "--text", filepath.Join(dir, "nope.txt")}, exitFail, "nope.txt"},
		{"missing model", []string{"eval", "--ref", demoModel, "--model", filepath.Join(dir, "nope.shrink"), "--text", story}, exitFail, "nope.shrink"},
		{"bad tokens spec", []string{"eval", "--ref", demoModel, "--model", q8, "--tokens", story}, exitFail, "FILE.safetensors:NAME"},
		{"ctx beyond model", []string{"eval", "--ref", demoModel, "--model", q8, "--text", story, "--ctx", "100000"}, exitFail, "exceeds the model"},
		{"no ref", []string{"eval", "--model", q8, "--text", story}, exitUsage, "--ref"},
		{"no model", []string{"eval", "--ref", demoModel, "--text", story}, exitUsage, "--model"},
		{"no input", []string{"eval", "--ref", demoModel, "--model", q8}, exitUsage, "--text"},
		{"both inputs", []string{"eval", "--ref", demoModel, "--model", q8, "--text", story, "--tokens", "a.safetensors:x"}, exitUsage, "exactly one"},
		{"bad convention", []string{"eval", "--ref", demoModel, "--model", q8, "--text", story, "--convention", "most"}, exitUsage, "--convention"},
		{"calib without tensors", []string{"eval", "--ref", demoModel, "--model", q8, "--text", story, "--calib", story}, exitUsage, "--calib goes with --tensors"},
		{"sweep bad quant", []string{"sweep", "--ref", demoModel, "--text", story, "--out", dir, "--quant", "f16,q7"}, exitUsage, "unknown encoding"},
		{"sweep from shrink", []string{"sweep", "--ref", q8, "--text", story, "--out", dir}, exitFail, "not a .shrink file"},
	}
	if testshared.OptionalRoot(t) != "" {
		other := convertDemo(t, testshared.Path(t, "models", "tinystories-656k"), "f32")
		gpt2 := convertDemo(t, testshared.Path(t, "models", "gpt2-stories-4m"), "f16")
		tests = append(tests,
			tc{"different vocabulary", []string{"eval", "--ref", demoModel, "--model", other, "--text", story}, exitFail, "vocabularies differ"},
			tc{"different architecture", []string{"eval", "--ref", demoModel, "--model", gpt2, "--text", story}, exitFail, "architectures differ: reference llama, candidate gpt2"},
			tc{"tensors of another model", []string{"eval", "--ref", demoModel, "--tensors", gpt2}, exitFail, "architectures differ"},
		)
	}
	checkCLIErrors(t, tests)
}

// TestEvalTokensInput evaluates a pre-tokenized stream from ../shared.
func TestEvalTokensInput(t *testing.T) {
	ref := testshared.Path(t, "models", "llama-stories-tiny", "reference.safetensors")
	var rep eval.Report
	shrinkJSON(t, &rep, "eval", "--ref", demoModel, "--model", demoModel, "--tokens", ref+":eval.ids", "--ctx", "64", "--chunks", "2", "--json")
	if rep.Summary.Tokens != 126 || rep.Input.NumTokens < 1000 {
		t.Fatalf("%d tokens scored: %+v", rep.Summary.Tokens, rep.Input)
	}
}

func TestEvalTensors(t *testing.T) {
	q8 := convertDemo(t, demoModel, "q8")
	story := storyFile(t)
	var rep eval.TensorReport
	shrinkJSON(t, &rep, "eval", "--tensors", q8, "--ref", demoModel, "--calib", story, "--calib-tokens", "128", "--ctx", "64", "--json")
	if rep.Calib == nil || rep.Calib.Tokens != 128 {
		t.Errorf("calibration %+v", rep.Calib)
	}
	seen := map[string]bool{}
	for i, te := range rep.Worst {
		if i > 0 && float64(te.RelFrobenius) > float64(rep.Worst[i-1].RelFrobenius) {
			t.Errorf("not sorted worst first at %s", te.Name)
		}
		switch te.Kind {
		case "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down":
			seen[te.Kind] = true
			if !(te.RelFrobenius > 0 && te.RelFrobenius < 0.05) || te.Encoding != "q8" {
				t.Errorf("%s: rel err %v, encoding %s", te.Name, te.RelFrobenius, te.Encoding)
			}
			if te.ActRelErr == nil || !(*te.ActRelErr > 0 && *te.ActRelErr < 0.1) {
				t.Errorf("%s: activation error %v", te.Name, te.ActRelErr)
			}
		case "attn_norm", "ffn_norm", "output_norm":
			if te.RelFrobenius != 0 || te.Encoding != "f32" || te.ActRelErr != nil {
				t.Errorf("%s: rel err %v, encoding %s", te.Name, te.RelFrobenius, te.Encoding)
			}
		case "token_embd":
			if te.Encoding != "f16" || te.ActRelErr != nil {
				t.Errorf("%s: encoding %s, act %v", te.Name, te.Encoding, te.ActRelErr)
			}
		}
	}
	if len(seen) != 7 || len(rep.Layers) != 5 || rep.Total.Tensors != len(rep.Worst) {
		t.Errorf("kinds %v, %d layer groups, total over %d of %d tensors", seen, len(rep.Layers), rep.Total.Tensors, len(rep.Worst))
	}
	// Text form.
	code, stdout, stderr := shrink(t, "eval", "--tensors", q8, "--ref", demoModel)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"per kind", "per layer", "blk.0.attn_norm.weight", "exact", "ffn_down"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, stdout)
		}
	}
}

func TestSweepWritesEverything(t *testing.T) {
	story := storyFile(t)
	out, stdout, sw := runSweep(t, "--ref", demoModel, "--text", story, "--quant", "f32,q8", "--ctx", "32", "--chunks", "1")
	if len(sw.Points) != 2 {
		t.Fatalf("sweep.json: %d points", len(sw.Points))
	}
	if p := sw.Points[0]; p.Name != "f32" || p.Summary.KLD.Value != 0 || p.Summary.PPLRatio.Value != 1 || p.BitsPerWeight != 32 || !p.Pareto {
		t.Errorf("f32 point %+v", p)
	}
	if p := sw.Points[1]; p.Name != "q8" || !(p.Summary.KLD.Value > 0) || !(p.BitsPerWeight < 16) || !p.Pareto {
		t.Errorf("q8 point %+v", p)
	}
	if !strings.Contains(stdout, "| q8 |") {
		t.Errorf("table:\n%s", stdout)
	}
	// --replot redraws from sweep.json alone.
	os.Remove(filepath.Join(out, "bpw_vs_kld.png"))
	if code, _, stderr := shrink(t, "sweep", "--replot", "--out", out, "--note", "Redrawn."); code != 0 {
		t.Fatalf("replot: exit %d: %s", code, stderr)
	}
	if md, _ := os.ReadFile(filepath.Join(out, "sweep.md")); !strings.Contains(string(md), "`\n\nRedrawn.\n\n") {
		t.Errorf("replot --note not in sweep.md:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(out, "bpw_vs_kld.png")); err != nil {
		t.Errorf("replot: %v", err)
	}
}
