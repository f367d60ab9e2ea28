package convert

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

var ggufQuantStems = []string{"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"}

// canonicalRef is gguf-py's dequantized tensor in canonical layout: q and k
// rows taken from llama.cpp's rotary order to Hugging Face's.
func canonicalRef(t *testing.T, ref map[string]testshared.Tensor, name string, headDim int) []float32 {
	t.Helper()
	r, ok := ref[name]
	if !ok {
		t.Fatalf("%s: not in the reference", name)
	}
	v := r.Floats()
	if strings.HasSuffix(name, "attn_q.weight") || strings.HasSuffix(name, "attn_k.weight") {
		out := make([]float32, len(v))
		rotaryToHalf(out, v, r.Shape[0], r.Shape[1], headDim)
		return out
	}
	return v
}

// TestGGUFLoadMatchesGGUFPy opens every gguf-quants file through convert
// and checks that each canonical tensor is gguf-py's dequantization, bit
// for bit, with q/k in Hugging Face row order.
func TestGGUFLoadMatchesGGUFPy(t *testing.T) {
	dir := testshared.Path(t, "models", "gguf-quants")
	for _, stem := range ggufQuantStems {
		t.Run(stem, func(t *testing.T) {
			m, err := Open(filepath.Join(dir, stem+".gguf"), OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			c := m.Config
			if c.Arch != "llama" || c.NumLayers != 1 || c.HiddenSize != 256 || c.NumHeads != 4 || c.NumKVHeads != 2 || c.HeadDim != 64 ||
				c.IntermediateSize != 256 || c.VocabSize != 259 || c.ContextLength != 256 || c.NormEps != 1e-5 || c.RopeTheta != 10000 ||
				c.TiedEmbeddings || c.BOS != 1 || len(c.EOS) != 1 || c.EOS[0] != 2 {
				t.Fatalf("config %+v", c)
			}
			if m.TokenizerKind != format.TokenizerGGUF || len(m.TokenizerFiles[format.BlobGGUFVocab]) == 0 {
				t.Fatalf("tokenizer kind %q, blobs %d", m.TokenizerKind, len(m.TokenizerFiles))
			}
			ref := testshared.ReadSafetensors(t, filepath.Join(dir, stem+".dequant.safetensors"))
			if len(m.Tensors) != len(ref) {
				t.Fatalf("%d tensors, reference %d", len(m.Tensors), len(ref))
			}
			for _, d := range m.Tensors {
				want := canonicalRef(t, ref, d.Name, c.HeadDim)
				got := make([]float32, d.NumElements())
				if err := d.Load(context.Background(), got); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s (%s): element %d = %g, gguf-py %g", d.Name, d.DType, i, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestGGUFQ8_0CarriedIntoQ8 converts q8_0.gguf with every matrix at q8:
// the tensors must decode to gguf-py's values bit for bit (the quants and
// scales are carried, not recomputed), and the conversion must report them
// exact.
func TestGGUFQ8_0CarriedIntoQ8(t *testing.T) {
	dir := testshared.Path(t, "models", "gguf-quants")
	m, err := Open(filepath.Join(dir, "q8_0.gguf"), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	q8 := quant.Q8
	plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: q8, Embed: &q8, Output: &q8})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "q8.shrink")
	res, err := Convert(context.Background(), m, plan, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := format.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref := testshared.ReadSafetensors(t, filepath.Join(dir, "q8_0.dequant.safetensors"))
	matrices := 0
	for _, ft := range res.Tensors {
		if len(ft.Shape) != 2 {
			continue
		}
		matrices++
		if ft.Parts[0].Encoding != quant.Q8 || ft.Metrics == nil || ft.Metrics.SNRdB != snrExact {
			t.Fatalf("%s: encoding %v, metrics %+v; want q8 reported exact", ft.Name, ft.Parts[0].Encoding, ft.Metrics)
		}
		rows, cols := int(ft.Shape[0]), int(ft.Shape[1])
		stored, ok := f.Tensor(ft.Name)
		if !ok {
			t.Fatalf("%s not in the file", ft.Name)
		}
		b := f.PartData(&stored.Parts[0])
		got := make([]float32, rows*cols)
		if err := quant.Decode(quant.Q8, got, b, rows, cols); err != nil {
			t.Fatal(err)
		}
		want := canonicalRef(t, ref, ft.Name, m.Config.HeadDim)
		for k := range got {
			if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
				t.Fatalf("%s: element %d = %g, Q8_0 value %g", ft.Name, k, got[k], want[k])
			}
		}
	}
	if matrices != 9 {
		t.Fatalf("%d matrices, want 9", matrices)
	}
}

// TestGGUFKQuantsCarried converts q4_k.gguf at q4 and q5_k.gguf at q5 (every
// matrix): the K-quant blocks are carried, and the tensors must decode to
// gguf-py's values bit for bit.
func TestGGUFKQuantsCarried(t *testing.T) {
	dir := testshared.Path(t, "models", "gguf-quants")
	for _, c := range []struct {
		stem string
		enc  quant.Encoding
	}{{"q4_k", quant.QK(4, 32)}, {"q5_k", quant.QK(5, 32)}} {
		t.Run(c.stem, func(t *testing.T) {
			m, err := Open(filepath.Join(dir, c.stem+".gguf"), OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			enc := c.enc
			plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: enc, Embed: &enc, Output: &enc})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "k.shrink")
			if _, err := Convert(context.Background(), m, plan, out, Options{}); err != nil {
				t.Fatal(err)
			}
			f, err := format.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ref := testshared.ReadSafetensors(t, filepath.Join(dir, c.stem+".dequant.safetensors"))
			n := 0
			for _, st := range f.Tensors() {
				if len(st.Shape) != 2 {
					continue
				}
				n++
				rows, cols := int(st.Shape[0]), int(st.Shape[1])
				got := make([]float32, rows*cols)
				if err := quant.Decode(enc, got, f.PartData(&st.Parts[0]), rows, cols); err != nil {
					t.Fatal(err)
				}
				want := canonicalRef(t, ref, st.Name, m.Config.HeadDim)
				for k := range got {
					if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
						t.Fatalf("%s: element %d = %g, gguf-py %g", st.Name, k, got[k], want[k])
					}
				}
			}
			if n != 9 {
				t.Fatalf("%d matrices", n)
			}
		})
	}
}
