package main

import (
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/eval"
)

// TestPackedEncodingsThroughCLI: every packed 4-bit encoding (and a 3-bit
// one) converts, benches, evaluates and sweeps by name, and its damage
// against the float32 model is real but bounded.
func TestPackedEncodingsThroughCLI(t *testing.T) {
	text := storyFile(t)
	encs := []string{"q4", "q4s", "q4nl", "q4nlg64", "q3"}
	for _, enc := range encs {
		m := convertDemo(t, demoModel, enc)
		code, stdout, stderr := shrink(t, "bench", m, "--pp", "8", "--tg", "4", "--reps", "1", "-t", "1", "--bw-mib", "16")
		if code != 0 || !strings.Contains(stdout, enc) {
			t.Errorf("bench %s: exit %d, %s\n%s", enc, code, stderr, stdout)
		}
		var rep eval.Report
		shrinkJSON(t, &rep, "eval", "--ref", demoModel, "--model", m, "--text", text, "--ctx", "64", "--chunks", "2", "--json")
		if s := rep.Summary; !(s.KLD.Value > 0 && s.KLD.Value < 0.5) || s.SameTop.Value < 0.5 || !(rep.Model.BitsPerWeight < 16) {
			t.Errorf("eval %s: KLD %v, same top %v, %v bits/weight", enc, s.KLD.Value, s.SameTop.Value, rep.Model.BitsPerWeight)
		}
	}
	_, _, sw := runSweep(t, "--ref", demoModel, "--text", text, "--quant", strings.Join(encs, ","), "--ctx", "32", "--chunks", "1")
	if len(sw.Points) != len(encs) {
		t.Fatalf("sweep.json: %d points", len(sw.Points))
	}
	got := map[string]bool{}
	for _, p := range sw.Points {
		got[p.Name] = p.Summary.KLD.Value > 0
	}
	for _, enc := range encs {
		if !got[enc] {
			t.Errorf("sweep: no point %s with a KLD above 0 (points %v)", enc, got)
		}
	}
}
