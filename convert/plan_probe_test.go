package convert

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// probeDocs is the demo's calibration text split into documents.
func probeDocs(t testing.TB) []string {
	t.Helper()
	docs, err := textdata.DocRange{First: 2}.Select(textdata.SplitDocuments(calibText(t), textdata.DefaultDocSep))
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// naiveKL is the mean over positions of KL(softmax(ref) ‖ softmax(got)),
// from two models' full logits, in float64 log-softmax.
func naiveKL(t *testing.T, ref, got *runtime.Model, ids []int, seq int) float64 {
	t.Helper()
	ctx := context.Background()
	logits := func(m *runtime.Model, ids []int) [][]float32 {
		s, err := m.NewSession(seq)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		lg, err := s.Prefill(ctx, ids, true)
		if err != nil {
			t.Fatal(err)
		}
		return lg
	}
	logSoftmax := func(z []float32) []float64 {
		mx := math.Inf(-1)
		for _, v := range z {
			mx = max(mx, float64(v))
		}
		var s float64
		for _, v := range z {
			s += math.Exp(float64(v) - mx)
		}
		out := make([]float64, len(z))
		for i, v := range z {
			out[i] = float64(v) - mx - math.Log(s)
		}
		return out
	}
	var sum float64
	for off := 0; off < len(ids); off += seq {
		chunk := ids[off:min(off+seq, len(ids))]
		a, b := logits(ref, chunk), logits(got, chunk)
		for p := range chunk {
			lp, lq := logSoftmax(a[p]), logSoftmax(b[p])
			for j := range lp {
				sum += math.Exp(lp[j]) * (lp[j] - lq[j])
			}
		}
	}
	return sum / float64(len(ids))
}

// TestKLProbeMatchesFullForward: the probe, which starts at the perturbed
// tensor's block from cached hidden states and keeps the reference
// distributions, gives the KL divergence a plain full forward pass of the
// perturbed model and a float64 log-softmax give; the unperturbed tensor
// costs nothing.
func TestKLProbeMatchesFullForward(t *testing.T) {
	ctx := context.Background()
	m := openDemo(t)
	const tokens, seq = 200, 64
	p, err := newKLProbe(ctx, m, ProbeOptions{Documents: probeDocs(t), Tokens: tokens, Seq: seq, TempDir: t.TempDir()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if p.tokens != tokens || len(p.seqLen) != (tokens+seq-1)/seq {
		t.Fatalf("probe of %d tokens in %d sequences, want %d in %d", p.tokens, len(p.seqLen), tokens, (tokens+seq-1)/seq)
	}
	tok := p.rt.Tokenizer()
	ids, _, err := textdata.FrameLimit(tok, probeDocs(t), tokens)
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:tokens]
	ref, err := runtime.New(runtime.FileSource{F: p.file}, tok, runtime.Options{Threads: 1, ExactQ8: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, name := range []string{"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.1.attn_v.weight", "blk.1.ffn_up.weight"} {
		d := descByName(t, m, name)
		rows, cols := int(d.Shape[0]), int(d.Shape[1])
		w := loadDesc(t, d)
		zero, err := p.cost(ctx, name, w, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		if zero > 1e-9 {
			t.Errorf("%s unchanged: KL %g, want 0", name, zero)
		}
		for _, scale := range []float64{0.02, 0.1} {
			noisy := make([]float32, len(w))
			for i, v := range w {
				noisy[i] = v + float32(scale*rng.NormFloat64())*max(float32(math.Abs(float64(v))), 1e-3)
			}
			got, err := p.cost(ctx, name, noisy, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			alt, err := runtime.New(runtime.FileSource{F: p.file}, tok, runtime.Options{Threads: 1, ExactQ8: true})
			if err != nil {
				t.Fatal(err)
			}
			layer, _, _ := projection(name)
			src := &runtime.MemSource{Cfg: alt.Config()}
			src.Add(runtime.DenseWeight(name, d.Shape, quant.F32, f32Bytes(noisy)))
			if err := alt.ReplaceBlock(layer, src); err != nil {
				t.Fatal(err)
			}
			want := naiveKL(t, ref, alt, ids, seq)
			alt.Close()
			if want <= 0 || math.Abs(got-want) > 1e-6*want+1e-9 {
				t.Errorf("%s, noise %v: probe KL %.9g, full forward %.9g", name, scale, got, want)
			}
		}
		// The probe restored the uncompressed tensor.
		if again, err := p.cost(ctx, name, w, rows, cols); err != nil || again != zero {
			t.Errorf("%s after a probe: KL %g (%v), first %g", name, again, err, zero)
		}
	}
	if _, err := p.cost(ctx, "token_embd.weight", nil, 1, 1); err == nil || !strings.Contains(err.Error(), "not a projection") {
		t.Errorf("probing the embedding: %v", err)
	}
}

func descByName(t *testing.T, m *Model, name string) *TensorDesc {
	t.Helper()
	for _, d := range m.Tensors {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("%s not in the model", name)
	return nil
}

// klProbeDemo opens the demo model, plans it all f32 and sets up a KL probe
// of cands on tokens calibration tokens in sequences of seq, two workers.
func klProbeDemo(t *testing.T, cands []quant.Encoding, tokens, seq int) (*Model, *Plan, MeasureOptions) {
	t.Helper()
	m := openDemo(t)
	plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: quant.F32})
	if err != nil {
		t.Fatal(err)
	}
	return m, plan, MeasureOptions{Candidates: cands, Sensitivity: SensitivityKL, Workers: 2,
		Probe: ProbeOptions{Documents: probeDocs(t), Tokens: tokens, Seq: seq, TempDir: t.TempDir()}}
}

// TestMeasureCostsKL: with the KL probe every projection gets every
// candidate, unweighted, in the order of bytes; coarser encodings cost more
// than finer ones of the same tensor; and the probe needs text.
func TestMeasureCostsKL(t *testing.T) {
	ctx := context.Background()
	cands := []quant.Encoding{quant.QK(2, 32), quant.QK(4, 32), quant.Q8}
	m, plan, o := klProbeDemo(t, cands, 128, 64)
	ts, err := MeasureCosts(ctx, m, plan, o)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, d := range m.Tensors {
		if _, _, ok := projection(d.Name); ok {
			want++
		}
	}
	if len(ts) != want {
		t.Fatalf("%d tensors measured, want %d", len(ts), want)
	}
	for _, bt := range ts {
		if len(bt.Choices) != len(cands) {
			t.Fatalf("%s: %d choices, want %d", bt.Name, len(bt.Choices), len(cands))
		}
		for i, c := range bt.Choices {
			if c.Encoding != cands[i] {
				t.Errorf("%s: choice %d is %v, want %v (by bytes)", bt.Name, i, c.Encoding, cands[i])
			}
		}
		if q2, q8 := bt.Choices[0].Cost, bt.Choices[2].Cost; !(q2 > q8) || q2 <= 0 {
			t.Errorf("%s: KL of q2 %g, of q8 %g: want q2 > q8, q2 > 0", bt.Name, q2, q8)
		}
	}
	if !strings.HasPrefix(o.Measure(), "KL probe") || !strings.Contains(o.Measure(), "128 calibration tokens") {
		t.Errorf("measure %q", o.Measure())
	}
	o.Probe.Documents = nil
	if _, err := MeasureCosts(ctx, m, plan, o); err == nil || !strings.Contains(err.Error(), "calibration text") {
		t.Errorf("KL probe without text: %v", err)
	}
	o.Sensitivity = "bogus"
	if _, err := MeasureCosts(ctx, m, plan, o); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown sensitivity: %v", err)
	}
}

func TestParseSensitivity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Sensitivity
		ok   bool
	}{
		{"kl", SensitivityKL, true},
		{"output-error", SensitivityOutputError, true},
		{"KL", "", false},
		{"", "", false},
	} {
		got, err := ParseSensitivity(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseSensitivity(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestMeasureCostsKLInPlace: a refinement pass with every other tensor in
// an exact encoding (f32) measures what the first pass measured; with them
// all at q2 the costs change (the probe runs with them in place), and
// InPlace without the probe or without a tensor's choice fails.
func TestMeasureCostsKLInPlace(t *testing.T) {
	ctx := context.Background()
	m, plan, o := klProbeDemo(t, []quant.Encoding{quant.QK(3, 32), quant.QK(5, 32)}, 96, 48)
	first, err := MeasureCosts(ctx, m, plan, o)
	if err != nil {
		t.Fatal(err)
	}
	inPlace := func(e quant.Encoding) map[string]quant.Encoding {
		ch := map[string]quant.Encoding{}
		for _, bt := range first {
			ch[bt.Name] = e
		}
		return ch
	}
	o.InPlace = inPlace(quant.F32)
	exact, err := MeasureCosts(ctx, m, plan, o)
	if err != nil {
		t.Fatal(err)
	}
	o.InPlace = inPlace(quant.QK(2, 32))
	coarse, err := MeasureCosts(ctx, m, plan, o)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for i, bt := range first {
		for j, c := range bt.Choices {
			if e := exact[i].Choices[j].Cost; math.Abs(e-c.Cost) > 1e-9+1e-6*c.Cost {
				t.Errorf("%s as %v: %g with the others exact, %g alone", bt.Name, c.Encoding, e, c.Cost)
			}
			if coarse[i].Choices[j].Cost != c.Cost {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Error("the costs with every other tensor at q2 are those of the first pass")
	}
	o.InPlace = inPlace(quant.F32)
	delete(o.InPlace, first[3].Name)
	if _, err := MeasureCosts(ctx, m, plan, o); err == nil || !strings.Contains(err.Error(), "no earlier choice") {
		t.Errorf("a tensor without a choice: %v", err)
	}
	o.Sensitivity = SensitivityOutputError
	if _, err := MeasureCosts(ctx, m, plan, o); err == nil || !strings.Contains(err.Error(), "needs the KL probe") {
		t.Errorf("in place without the probe: %v", err)
	}
}
