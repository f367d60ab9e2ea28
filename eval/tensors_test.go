package eval

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
)

func TestTensorKind(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		layer      int
	}{
		{"blk.0.attn_q.weight", "attn_q", 0},
		{"blk.12.ffn_down.weight", "ffn_down", 12},
		{"blk.3.attn_q.bias", "attn_q.bias", 3},
		{"token_embd.weight", "token_embd", -1},
		{"output_norm.weight", "output_norm", -1},
		{"output.weight", "output", -1},
	} {
		l, k := tensorKind(tc.name)
		if l != tc.layer || k != tc.kind {
			t.Errorf("%s: layer %d kind %q, want %d %q", tc.name, l, k, tc.layer, tc.kind)
		}
	}
}

func TestFloatJSON(t *testing.T) {
	for _, v := range []float64{0, -1.5, 3e-12, math.Inf(1), math.Inf(-1)} {
		b, err := json.Marshal(Float(v))
		if err != nil {
			t.Fatal(err)
		}
		var back Float
		if err := json.Unmarshal(b, &back); err != nil || float64(back) != v {
			t.Errorf("%v → %s → %v (%v)", v, b, back, err)
		}
	}
	b, _ := json.Marshal(Float(math.NaN()))
	var back Float
	if string(b) != `"NaN"` || json.Unmarshal(b, &back) != nil || !math.IsNaN(float64(back)) {
		t.Errorf("NaN → %s → %v", b, back)
	}
}

func f32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	if err := quant.Encode(quant.F32, b, x, 1, len(x)); err != nil {
		panic(err)
	}
	return b
}

// TestReconstructFactored writes dense, low-rank and LoRC tensors and checks
// that Reconstruct gives w, A·B and w + A·B, computed here by hand.
func TestReconstructFactored(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5, 6}          // [3, 2]
	b := []float32{1, 0, -1, 2, 0.5, 1, 0, 3} // [2, 4]
	w := []float32{0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0, -1, -1, -1, -1}
	var ab [12]float32
	for i := range 3 {
		for j := range 4 {
			ab[i*4+j] = a[i*2]*b[j] + a[i*2+1]*b[4+j]
		}
	}
	path := filepath.Join(t.TempDir(), "f.shrink")
	wr, err := format.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Abort()
	part := func(role format.Role, rows, cols int64) format.Part {
		return format.Part{Role: role, Shape: []int64{rows, cols}, Encoding: quant.F32}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(wr.WriteTensor(format.Tensor{Name: "dense", Shape: []int64{3, 4}, Kind: format.KindDense,
		Parts: []format.Part{part(format.RoleW, 3, 4)}}, f32Bytes(w)))
	must(wr.WriteTensor(format.Tensor{Name: "lowrank", Shape: []int64{3, 4}, Kind: format.KindLowRank,
		Parts: []format.Part{part(format.RoleA, 3, 2), part(format.RoleB, 2, 4)}}, f32Bytes(a), f32Bytes(b)))
	must(wr.WriteTensor(format.Tensor{Name: "lorc", Shape: []int64{3, 4}, Kind: format.KindLoRC,
		Parts: []format.Part{part(format.RoleW, 3, 4), part(format.RoleA, 3, 2), part(format.RoleB, 2, 4)}},
		f32Bytes(w), f32Bytes(a), f32Bytes(b)))
	must(wr.Commit(format.Header{Config: format.ModelConfig{Arch: "llama", VocabSize: 4, HiddenSize: 4, IntermediateSize: 8, NumLayers: 1,
		NumHeads: 1, NumKVHeads: 1, HeadDim: 4, ContextLength: 8, NormKind: "rmsnorm", Activation: "silu", BOS: -1}}))
	f, err := format.Open(path)
	must(err)
	defer f.Close()
	want := map[string][]float32{"dense": w, "lowrank": ab[:], "lorc": make([]float32, 12)}
	for i := range w {
		want["lorc"][i] = w[i] + ab[i]
	}
	for name, wv := range want {
		tt, _ := f.Tensor(name)
		got, err := Reconstruct(f, tt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, wv) {
			t.Errorf("%s: %v, want %v", name, got, wv)
		}
	}
	if got := describeEncoding(mustTensor(t, f, "lorc")); got != "lorc f32 + r=2 (a f32, b f32)" {
		t.Errorf("lorc encoding %q", got)
	}
}

func mustTensor(t *testing.T, f *format.File, name string) *format.Tensor {
	t.Helper()
	tt, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	return tt
}

// fakeSource serves fixed tensors as the original model.
type fakeSource struct {
	cfg format.ModelConfig
	t   map[string][]float32
}

func (s fakeSource) Config() format.ModelConfig { return s.cfg }
func (s fakeSource) Close() error               { return nil }
func (s fakeSource) Load(_ context.Context, name string) ([]float32, []int64, error) {
	v := s.t[name]
	if name == "blk.0.attn_norm.weight" {
		return v, []int64{int64(len(v))}, nil
	}
	return v, []int64{int64(len(v) / 4), 4}, nil
}

// TestCompareTensorsTotals checks per-tensor metrics, the energy-weighted
// totals per kind, and the activation-weighted error against values worked
// out by hand.
func TestCompareTensorsTotals(t *testing.T) {
	cfg := format.ModelConfig{Arch: "llama", VocabSize: 2, HiddenSize: 4, IntermediateSize: 8, NumLayers: 1, NumHeads: 1, NumKVHeads: 1,
		HeadDim: 4, ContextLength: 8, NormKind: "rmsnorm", Activation: "silu", BOS: -1, TiedEmbeddings: true}
	orig := map[string][]float32{
		"blk.0.attn_q.weight":    {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, // I, ‖W‖² = 4
		"blk.0.attn_k.weight":    {2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2}, // 2I, ‖W‖² = 16
		"blk.0.attn_norm.weight": {1, 1, 1, 1},
	}
	stored := map[string][]float32{
		"blk.0.attn_q.weight":    {1.5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, // error 0.5 at (0,0)
		"blk.0.attn_k.weight":    {2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2},
		"blk.0.attn_norm.weight": {1, 1, 1, 1},
	}
	path := filepath.Join(t.TempDir(), "c.shrink")
	wr, err := format.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Abort()
	for _, name := range []string{"blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight"} {
		shape := []int64{4, 4}
		if name == "blk.0.attn_norm.weight" {
			shape = []int64{4}
		}
		if err := wr.WriteTensor(format.Tensor{Name: name, Shape: shape, Kind: format.KindDense,
			Parts: []format.Part{{Role: format.RoleW, Shape: shape, Encoding: quant.F32}}}, f32Bytes(stored[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.Commit(format.Header{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	f, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// Activations: two tokens, x = e0 and x = 2·e1. G = diag(1, 4, 0, 0).
	g := NewGram(4)
	g.addRef([]float32{1, 0, 0, 0, 0, 2, 0, 0}, 2)
	g.Symmetrize()
	cal := &Calibration{Source: "test", Tokens: 2, grams: map[gramKey]*Gram{{0, "attn_in"}: g}}

	rep, err := CompareTensors(context.Background(), fakeSource{cfg, orig}, "orig", f, cal)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Worst[0].Name != "blk.0.attn_q.weight" {
		t.Errorf("worst tensor %s, want attn_q", rep.Worst[0].Name)
	}
	byName := map[string]TensorError{}
	for _, te := range rep.Worst {
		byName[te.Name] = te
	}
	q := byName["blk.0.attn_q.weight"]
	near(t, "attn_q rel", float64(q.RelFrobenius), 0.5/2, 1e-12) // ‖E‖ = 0.5, ‖W‖ = 2
	// ‖E X‖² = 0.5²·1 (only x = e0 sees column 0); ‖W X‖² = 1 + 4 = 5.
	if q.ActRelErr == nil {
		t.Fatal("no activation error for attn_q")
	}
	near(t, "attn_q act", float64(*q.ActRelErr), math.Sqrt(0.25/5), 1e-12)
	if n := byName["blk.0.attn_norm.weight"]; n.RelFrobenius != 0 || !math.IsInf(float64(n.SNRdB), 1) || n.ActRelErr != nil {
		t.Errorf("norm: %+v", n)
	}
	// Layer total: sqrt(0.25 / (4 + 16 + 4)).
	near(t, "layer total", float64(rep.Layers[0].RelFrobenius), math.Sqrt(0.25/24), 1e-12)
	near(t, "total", float64(rep.Total.RelFrobenius), math.Sqrt(0.25/24), 1e-12)
	// Activation total over q and k: 0.25 / (5 + 4·5).
	near(t, "act total", float64(*rep.Total.ActRelErr), math.Sqrt(0.25/25), 1e-12)
	for _, k := range rep.Kinds {
		if k.Name == "attn_k" && k.RelFrobenius != 0 {
			t.Errorf("attn_k kind error %v", k.RelFrobenius)
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report JSON: %v", err)
	}
}
