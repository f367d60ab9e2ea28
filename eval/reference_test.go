package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadReferences(t *testing.T) {
	r, err := ReadReferences(filepath.Join("..", "docs", "reference", "llamacpp-llama-stories-12m.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Label != "llama.cpp" || len(r.Points) != 7 || r.Points[0].Name != "Q8_0" || r.Points[0].ProjectionBits != 8.5 {
		t.Errorf("read %+v", r)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no source":     `{"label":"x","points":[{"name":"a","projection_bits_per_weight":4,"mean_kld":0.1}]}`,
		"no points":     `{"label":"x","source":"y","points":[]}`,
		"bad bits":      `{"label":"x","source":"y","points":[{"name":"a","projection_bits_per_weight":0,"mean_kld":0.1}]}`,
		"negative kld":  `{"label":"x","source":"y","points":[{"name":"a","projection_bits_per_weight":4,"mean_kld":-1}]}`,
		"unknown field": `{"label":"x","source":"y","points":[{"name":"a","bits":4,"mean_kld":0.1}]}`,
		"not json":      `label: x`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadReferences(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSweepWithReferences: the reference points are listed under the table
// and drawn (the plots exist) with projection bits on the x axis.
func TestSweepWithReferences(t *testing.T) {
	r, err := ReadReferences(filepath.Join("..", "docs", "reference", "llamacpp-llama-stories-12m.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := &Sweep{Model: "m", Text: "t.txt", Ctx: 256, Chunks: 2, Tokens: 510, References: r,
		Points: []SweepPoint{{Name: "q4", Series: "dense", BitsPerWeight: 11.4, ProjectionBits: 4.53,
			Summary: Summary{KLD: ValueErr{Value: 0.002}, PPLRatio: ValueErr{Value: 1.001}}}}}
	s.MarkPareto()
	dir := t.TempDir()
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "sweep.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| llama.cpp Q4_K_M | 5.45 | 0.00182 | 96.57 % |") {
		t.Errorf("sweep.md lacks the reference rows:\n%s", md)
	}
	for _, f := range []string{"bpw_vs_kld.png", "bpw_vs_kld.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "bpw_vs_kld.svg"))
	if !strings.Contains(string(svg), "projection") {
		t.Error("the KLD plot's x axis does not say projection bits")
	}
}
