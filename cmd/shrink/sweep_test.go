package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/internal/testshared"
)

// sweepText is six documents: the first three are evaluated, the last
// three calibrate.
const sweepText = demotest.Story + `<|endoftext|>
The cat sat on the warm mat and watched the birds in the tree. A small bird came down to look at the cat.
<|endoftext|>
Mia baked a cake with her mom. They put red berries on top and gave a piece to every friend on the street.
<|endoftext|>
Ben wanted to fly a kite, but there was no wind. He waited and waited, and then a soft breeze came and the kite went up.
`

// TestSweepLowRankGrid runs a small low-rank grid on the demo model and
// checks the points, their series and what the sweep records about its
// calibration and evaluation documents.
func TestSweepLowRankGrid(t *testing.T) {
	text := writeText(t, "stories.txt", sweepText)
	out, stdout, sw := runSweep(t, "--ref", demoModel, "--text", text, "--eval-docs", "1-3",
		"--calib", text, "--calib-docs", "4-6", "--calib-tokens", "64", "--quant", "f16,q8",
		"--lowrank", "svd,whiten,lorc", "--rank-ratio", "0.5", "--rank", "8", "--ctx", "32", "--chunks", "2")
	want := []struct{ name, series string }{
		{"f16", "dense"}, {"q8", "dense"},
		{"svd r0.5 + f16 factors", "svd"}, {"svd r0.5 + q8 factors", "svd"},
		{"whiten r0.5 + f16 factors", "whiten"}, {"whiten r0.5 + q8 factors", "whiten"},
		{"q8 + lorc k8 (f16 factors)", "lorc"}, // lorc only on the integer encoding
	}
	if len(sw.Points) != len(want) {
		t.Fatalf("%d points, want %d: %+v", len(sw.Points), len(want), sw.Points)
	}
	byName := map[string]eval.SweepPoint{}
	for i, w := range want {
		p := sw.Points[i]
		byName[p.Name] = p
		if p.Name != w.name || p.Series != w.series {
			t.Errorf("point %d: %q in series %q, want %q in %q", i, p.Name, p.Series, w.name, w.series)
		}
		if !(p.Summary.KLD.Value > 0) || p.FileBytes <= 0 {
			t.Errorf("%s: KLD %v, %d bytes", p.Name, p.Summary.KLD.Value, p.FileBytes)
		}
	}
	// Factoring at half the parameters shrinks the file and costs accuracy;
	// the correction grows q8.
	for _, q := range []string{"f16", "q8"} {
		dense, svd := byName[q], byName["svd r0.5 + "+q+" factors"]
		if !(svd.BitsPerWeight < dense.BitsPerWeight && svd.Summary.KLD.Value > dense.Summary.KLD.Value) {
			t.Errorf("%s: svd r0.5 at %.2f bits, KLD %v; dense at %.2f, KLD %v", q, svd.BitsPerWeight, svd.Summary.KLD.Value,
				dense.BitsPerWeight, dense.Summary.KLD.Value)
		}
	}
	if l := byName["q8 + lorc k8 (f16 factors)"]; !(l.BitsPerWeight > byName["q8"].BitsPerWeight) || l.Rank != 8 {
		t.Errorf("lorc point %+v", l)
	}
	c := sw.Calibration
	if c == nil || !strings.HasPrefix(c.Docs, "4-") || c.Tokens != 64 || !slices.Equal(c.UsedBy, []string{"whiten"}) {
		t.Errorf("calibration record %+v", c)
	}
	if sw.EvalDocs != "1-3" || sw.Documents != 3 || sw.ScoredDocs == "" {
		t.Errorf("evaluation documents %q (%d), scored %q", sw.EvalDocs, sw.Documents, sw.ScoredDocs)
	}
	md, _ := os.ReadFile(filepath.Join(out, "sweep.md"))
	for _, w := range []string{"Calibrated documents: 64 tokens of documents 4-", "Evaluated documents: the scored chunks cover documents 1-",
		"documents 1-3", "--lowrank svd,whiten,lorc --rank-ratio 0.5 --rank 8", "| whiten r0.5 + q8 factors |"} {
		if !strings.Contains(string(md), w) || !strings.Contains(stdout, w) {
			t.Errorf("sweep.md or stdout lacks %q:\n%s", w, md)
		}
	}
}

// TestSweepGridUsage: incoherent grids are usage errors, found before any
// model is read.
func TestSweepGridUsage(t *testing.T) {
	text := writeText(t, "stories.txt", sweepText)
	other := writeText(t, "other.txt", sweepText)
	out := t.TempDir()
	with := argsWith("sweep", "--ref", demoModel, "--out", out, "--quant", "f16,q8")
	checkCLIErrors(t, []cliCase{
		{"calibrate on the evaluated text", with("--text", text, "--lowrank", "whiten", "--rank-ratio", "0.5", "--calib", text), exitUsage, "do not overlap"},
		{"only calibration documents given", with("--text", text, "--lowrank", "whiten", "--rank-ratio", "0.5", "--calib", text, "--calib-docs", "4-6"), exitUsage, "--eval-docs"},
		{"overlapping documents", with("--text", text, "--eval-docs", "1-4", "--lowrank", "asvd", "--rank-ratio", "0.5", "--calib", text, "--calib-docs", "4-6"), exitUsage, "overlap (documents 4-4"},
		{"open ranges overlap", with("--text", text, "--eval-docs", "3-", "--lowrank", "asvd", "--rank-ratio", "0.5", "--calib", text, "--calib-docs", "5-"), exitUsage, "overlap (documents 5-"},
		{"whiten without calibration", with("--text", text, "--lowrank", "svd,whiten", "--rank-ratio", "0.5"), exitUsage, "needs calibration text"},
		{"calibration nobody reads", with("--text", text, "--lowrank", "svd", "--rank-ratio", "0.5", "--calib", other), exitUsage, "--calib is read only by"},
		{"unknown method", with("--text", text, "--lowrank", "svd,qr", "--rank-ratio", "0.5"), exitUsage, `--lowrank "qr"`},
		{"ratio without method", with("--text", text, "--rank-ratio", "0.5"), exitUsage, "--rank-ratio needs --lowrank"},
		{"svd without ratios", with("--text", text, "--lowrank", "svd", "--rank", "8"), exitUsage, "need --rank-ratio"},
		{"rank for svd", with("--text", text, "--lowrank", "svd", "--rank-ratio", "0.5", "--rank", "8"), exitUsage, "--rank applies to lorc"},
		{"lorc without rank", with("--text", text, "--lowrank", "lorc"), exitUsage, "needs --rank"},
		{"ratio out of range", with("--text", text, "--lowrank", "svd", "--rank-ratio", "0.5,1.5"), exitUsage, "(0, 1]"},
		{"negative rank", with("--text", text, "--lowrank", "lorc", "--rank", "-4"), exitUsage, "not a positive number"},
		{"eval docs of a token stream", with("--tokens", "x.safetensors:ids", "--eval-docs", "1-3"), exitUsage, "--eval-docs selects documents of --text"},
		{"bad eval docs", with("--text", text, "--eval-docs", "3-1"), exitUsage, "--eval-docs"},
		// lorc needs an integer encoding to correct.
		{"lorc on f16 only", []string{"sweep", "--ref", demoModel, "--out", out, "--quant", "f16", "--text", text, "--lowrank", "lorc", "--rank", "8"}, exitUsage, "integer --quant"},
	})
}

// runSweep runs `shrink sweep` with args, writing into a new folder, which
// must succeed and write every file; it returns the folder, stdout and the
// sweep.json it wrote.
func runSweep(t *testing.T, args ...string) (out, stdout string, sw eval.Sweep) {
	t.Helper()
	out = filepath.Join(t.TempDir(), "sweep")
	code, stdout, stderr := shrink(t, append([]string{"sweep", "--out", out}, args...)...)
	if code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"sweep.json", "sweep.md", "bpw_vs_kld.png", "bpw_vs_kld.svg", "bpw_vs_ppl_ratio.png", "bpw_vs_ppl_ratio.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := json.Unmarshal(testshared.ReadFile(t, filepath.Join(out, "sweep.json")), &sw); err != nil {
		t.Fatalf("sweep.json: %v", err)
	}
	return out, stdout, sw
}
