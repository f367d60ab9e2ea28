package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/eval"
)

// sweepText is six documents: the first three are evaluated, the last
// three calibrate.
const sweepText = evalStory + `<|endoftext|>
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
	out := filepath.Join(t.TempDir(), "sweep")
	code, stdout, stderr := shrink(t, "sweep", "--ref", demoModel, "--text", text, "--eval-docs", "1-3",
		"--calib", text, "--calib-docs", "4-6", "--calib-tokens", "64", "--quant", "f16,q8",
		"--lowrank", "svd,whiten,lorc", "--rank-ratio", "0.5", "--rank", "8", "--out", out, "--ctx", "32", "--chunks", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sw, err := readSweep(t, out)
	if err != nil {
		t.Fatal(err)
	}
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
	base := []string{"sweep", "--ref", demoModel, "--out", out, "--quant", "f16,q8"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"calibrate on the evaluated text", []string{"--text", text, "--lowrank", "whiten", "--rank-ratio", "0.5", "--calib", text}, "do not overlap"},
		{"only calibration documents given", []string{"--text", text, "--lowrank", "whiten", "--rank-ratio", "0.5", "--calib", text, "--calib-docs", "4-6"}, "--eval-docs"},
		{"overlapping documents", []string{"--text", text, "--eval-docs", "1-4", "--lowrank", "asvd", "--rank-ratio", "0.5", "--calib", text, "--calib-docs", "4-6"}, "overlap (documents 4-4"},
		{"open ranges overlap", []string{"--text", text, "--eval-docs", "3-", "--lowrank", "asvd", "--rank-ratio", "0.5", "--calib", text, "--calib-docs", "5-"}, "overlap (documents 5-"},
		{"whiten without calibration", []string{"--text", text, "--lowrank", "svd,whiten", "--rank-ratio", "0.5"}, "needs calibration text"},
		{"calibration nobody reads", []string{"--text", text, "--lowrank", "svd", "--rank-ratio", "0.5", "--calib", other}, "--calib is read only by"},
		{"unknown method", []string{"--text", text, "--lowrank", "svd,qr", "--rank-ratio", "0.5"}, `--lowrank "qr"`},
		{"ratio without method", []string{"--text", text, "--rank-ratio", "0.5"}, "--rank-ratio needs --lowrank"},
		{"svd without ratios", []string{"--text", text, "--lowrank", "svd", "--rank", "8"}, "need --rank-ratio"},
		{"rank for svd", []string{"--text", text, "--lowrank", "svd", "--rank-ratio", "0.5", "--rank", "8"}, "--rank applies to lorc"},
		{"lorc without rank", []string{"--text", text, "--lowrank", "lorc"}, "needs --rank"},
		{"ratio out of range", []string{"--text", text, "--lowrank", "svd", "--rank-ratio", "0.5,1.5"}, "(0, 1]"},
		{"negative rank", []string{"--text", text, "--lowrank", "lorc", "--rank", "-4"}, "not a positive number"},
		{"eval docs of a token stream", []string{"--tokens", "x.safetensors:ids", "--eval-docs", "1-3"}, "--eval-docs selects documents of --text"},
		{"bad eval docs", []string{"--text", text, "--eval-docs", "3-1"}, "--eval-docs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := shrink(t, append(slices.Clone(base), tt.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
	// lorc needs an integer encoding to correct.
	code, _, stderr := shrink(t, "sweep", "--ref", demoModel, "--out", out, "--quant", "f16", "--text", text, "--lowrank", "lorc", "--rank", "8")
	if code != exitUsage || !strings.Contains(stderr, "integer --quant") {
		t.Errorf("lorc on f16 only: exit %d, %q", code, stderr)
	}
}

// readSweep checks that a sweep wrote every file into out and reads its
// sweep.json.
func readSweep(t *testing.T, out string) (eval.Sweep, error) {
	t.Helper()
	for _, f := range []string{"sweep.json", "sweep.md", "bpw_vs_kld.png", "bpw_vs_kld.svg", "bpw_vs_ppl_ratio.png", "bpw_vs_ppl_ratio.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	var sw eval.Sweep
	b, err := os.ReadFile(filepath.Join(out, "sweep.json"))
	if err == nil {
		err = json.Unmarshal(b, &sw)
	}
	return sw, err
}
