package gguf

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
)

// TestDequantizeMatchesGGUFPy compares every tensor of every gguf-quants
// file with gguf-py's dequantized float32 values, bit for bit.
func TestDequantizeMatchesGGUFPy(t *testing.T) {
	dir := testshared.Path(t, "models", "gguf-quants")
	for _, stem := range []string{"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"} {
		t.Run(stem, func(t *testing.T) {
			f, err := Open(filepath.Join(dir, stem+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ref := testshared.ReadSafetensors(t, filepath.Join(dir, stem+".dequant.safetensors"))
			if len(ref) != len(f.Tensors) {
				t.Fatalf("%d tensors, reference has %d", len(f.Tensors), len(ref))
			}
			for i := range f.Tensors {
				tn := &f.Tensors[i]
				want, ok := ref[tn.Name]
				if !ok {
					t.Fatalf("%s: not in the reference", tn.Name)
				}
				if !slices.Equal(want.Shape, testshared.Convert[int](tn.Shape())) {
					t.Fatalf("%s: shape %v, reference %v", tn.Name, tn.Shape(), want.Shape)
				}
				raw, err := f.ReadTensor(tn)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]float32, tn.Elements())
				if err := Dequantize(tn.Type, got, raw); err != nil {
					t.Fatalf("%s: %v", tn.Name, err)
				}
				wf := want.Floats()
				for k := range got {
					if math.Float32bits(got[k]) != math.Float32bits(wf[k]) {
						t.Fatalf("%s (%s): element %d = %g (%#08x), gguf-py %g (%#08x)", tn.Name, tn.Type, k, got[k], math.Float32bits(got[k]), wf[k], math.Float32bits(wf[k]))
					}
				}
			}
		})
	}
}

func TestQuantizeQ8_0RoundTrip(t *testing.T) {
	src := make([]float32, 96)
	for i := range src {
		src[i] = float32(i%17-8) * 0.37
	}
	src[40] = 0 // a block with zeros elsewhere keeps working
	b := make([]byte, 3*34)
	if err := QuantizeQ8_0(b, src); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(src))
	if err := Dequantize(TypeQ8_0, got, b); err != nil {
		t.Fatal(err)
	}
	for i := range src {
		// |error| ≤ d/2 with d = amax/127 (amax ≤ 8·0.37), plus 127·(f16 rounding of d) ≤ d/16.
		if math.Abs(float64(got[i]-src[i])) > 8*0.37/127*(0.5+1.0/16) {
			t.Fatalf("element %d: %g → %g", i, src[i], got[i])
		}
	}
	// Re-quantizing dequantized Q8_0 values gives the same bytes.
	again := make([]byte, len(b))
	if err := QuantizeQ8_0(again, got); err != nil {
		t.Fatal(err)
	}
	if string(again) != string(b) {
		t.Fatal("re-quantizing Q8_0 values changed the bytes")
	}
	if err := QuantizeQ8_0(make([]byte, 34), make([]float32, 31)); err == nil {
		t.Fatal("31 values accepted")
	}
}
