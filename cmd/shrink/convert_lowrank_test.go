package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// writeCalib writes a small story corpus in TinyStories' layout.
func writeCalib(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := range 40 {
		b.WriteString("Once upon a time, there was a little girl named Lily. She liked to play with her red ball in the park. ")
		b.WriteString("One day, her friend Tom came to play. They laughed and ran under the big tree. ")
		b.WriteString(strings.Repeat("The sun was warm and the sky was blue. ", i%4+1))
		b.WriteString("\n<|endoftext|>\n")
	}
	return writeText(t, "calib.txt", b.String())
}

func TestConvertLowRankCLI(t *testing.T) {
	calib := writeCalib(t)
	tests := []struct {
		name string
		args []string
		want []string // in stdout
	}{
		{"whiten ratio", []string{"--lowrank", "whiten", "--rank-ratio", "0.6", "--calib", calib, "--calib-tokens", "512", "--calib-docs", "3-"},
			[]string{"low-rank whiten rank-ratio=0.6: 28 of 28 projections factored", "mean relative activation error"}},
		{"svd q8 factors", []string{"--quant", "q8", "--lowrank", "svd", "--rank", "16"}, []string{"low-rank svd rank=16: 28 of 28"}},
		{"lorc", []string{"--quant", "q8", "--lowrank", "lorc", "--rank", "8"}, []string{"low-rank lorc rank=8: 28 of 28"}},
		{"asvd target", []string{"--lowrank", "asvd", "--target-ratio", "0.5", "--calib", calib, "--calib-tokens", "256", "--lowrank-include", "ffn_"},
			[]string{"low-rank asvd target-ratio=0.5", "of 12 projections factored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.shrink")
			code, stdout, stderr := shrink(t, append([]string{"convert", demoModel, "-o", out}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
			code, stdout, stderr = shrink(t, "run", out, "-p", "Once upon a time", "-n", "8", "--threads", "1")
			if code != 0 || len(strings.TrimSpace(stdout)) == 0 {
				t.Fatalf("run on the low-rank file: exit %d, %q, %s", code, stdout, stderr)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".shrink-calib-*")); len(left) != 0 {
				t.Errorf("calibration left %v", left)
			}
		})
	}
}

func TestConvertLowRankDryRun(t *testing.T) {
	code, stdout, stderr := shrink(t, "convert", demoModel, "--dry-run", "--quant", "q8", "--lowrank", "lorc", "--rank", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"kind", "rank", "lorc", "w:q8 a,b:f16", "low-rank lorc rank=8: 28 of 28 projections factored"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("plan table lacks %q:\n%s", w, stdout)
		}
	}
	var plan planJSON
	shrinkJSON(t, &plan, "convert", demoModel, "--dry-run", "--json", "--lowrank", "svd", "--rank-ratio", "0.5")
	found := false
	for _, e := range plan.Tensors {
		if e.Name == "blk.0.attn_q.weight" {
			found = true
			// 128×128 at ratio 0.5: k = floor(0.5·128·128/256) = 32.
			if e.Kind != "lowrank" || e.Rank != 32 || len(e.Parts) != 2 || e.Parts[0].Role != "a" || e.Parts[1].Shape[0] != 32 || e.Parts[0].Bytes != 128*32*2 {
				t.Errorf("attn_q plan: %+v", e)
			}
		}
	}
	if !found || plan.LowRank.Factored != 28 {
		t.Errorf("JSON plan: found attn_q %v, factored %d", found, plan.LowRank.Factored)
	}
}

func TestConvertLowRankUsage(t *testing.T) {
	dir := t.TempDir()
	calib := writeCalib(t)
	with := argsWith("convert", demoModel, "-o", filepath.Join(dir, "x.shrink"))
	checkCLIErrors(t, []cliCase{
		{"whiten without calib", with("--lowrank", "whiten", "--rank", "8"), exitUsage, "needs calibration text"},
		{"asvd without calib", with("--lowrank", "asvd", "--rank", "8"), exitUsage, "--calib FILE"},
		{"lorc-whiten without calib", with("--quant", "q8", "--lowrank", "lorc", "--rank", "8", "--lorc-whiten"), exitUsage, "--lorc-whiten needs calibration"},
		{"ratio above 1", with("--lowrank", "svd", "--rank-ratio", "1.5"), exitUsage, "(0, 1]"},
		{"ratio zero", with("--lowrank", "svd", "--rank-ratio", "0"), exitUsage, "positive"},
		{"two rank specs", with("--lowrank", "svd", "--rank", "8", "--rank-ratio", "0.5"), exitUsage, "exactly one"},
		{"no rank spec", with("--lowrank", "svd"), exitUsage, "exactly one"},
		{"unknown method", with("--lowrank", "pca", "--rank", "8"), exitUsage, "want svd, whiten, asvd or lorc"},
		{"lorc on float", with("--quant", "f16", "--lowrank", "lorc", "--rank", "8"), exitUsage, "integer --quant"},
		{"lorc with ratio", with("--quant", "q8", "--lowrank", "lorc", "--rank-ratio", "0.5"), exitUsage, "fixed --rank"},
		{"rank without method", with("--rank", "8"), exitUsage, "--rank needs --lowrank"},
		{"calib without a method using it", with("--lowrank", "svd", "--rank", "8", "--calib", calib), exitUsage, "--calib is read only by"},
		{"calib-docs without calib", with("--lowrank", "svd", "--rank", "8", "--calib-docs", "1-5"), exitUsage, "goes with --calib"},
		{"bad calib-docs", with("--lowrank", "whiten", "--rank", "8", "--calib", calib, "--calib-docs", "9-3"), exitUsage, "--calib-docs"},
		{"bad include", with("--lowrank", "svd", "--rank", "8", "--lowrank-include", "("), exitUsage, "--lowrank-include"},
		{"include matching nothing", with("--lowrank", "svd", "--rank", "8", "--lowrank-include", "nothing"), exitFail, "match no projection"},
		{"bad factor encoding", with("--lowrank", "svd", "--rank", "8", "--factor-encoding", "q7"), exitUsage, "--factor-encoding"},
		{"missing calib file", with("--lowrank", "whiten", "--rank", "8", "--calib", filepath.Join(dir, "nope.txt")), exitFail, "nope.txt"},
		{"calib docs past the text", with("--lowrank", "whiten", "--rank", "8", "--calib", calib, "--calib-docs", "500-"), exitFail, "starts past"},
	})
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("failed conversions left %v", left)
	}
}
