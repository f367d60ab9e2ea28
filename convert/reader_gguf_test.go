package convert

import (
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
			m := openModel(t, filepath.Join(dir, stem+".gguf"), OpenOptions{})
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
				sameBits(t, d.Name+" ("+string(d.DType)+")", loadDesc(t, d), canonicalRef(t, ref, d.Name, c.HeadDim))
			}
		})
	}
}

// TestGGUFQuantsCarried converts q8_0.gguf at q8, q4_k.gguf at q4 and
// q5_k.gguf at q5 (every matrix): the blocks are carried, not recomputed,
// so the tensors must decode to gguf-py's values bit for bit and the
// conversion must report them exact.
func TestGGUFQuantsCarried(t *testing.T) {
	dir := testshared.Path(t, "models", "gguf-quants")
	for _, c := range []struct {
		stem string
		enc  quant.Encoding
	}{{"q8_0", quant.Q8}, {"q4_k", quant.QK(4, 32)}, {"q5_k", quant.QK(5, 32)}} {
		t.Run(c.stem, func(t *testing.T) {
			m := openModel(t, filepath.Join(dir, c.stem+".gguf"), OpenOptions{})
			enc := c.enc
			out, res := convertModel(t, m, Policy{Quant: enc, Embed: &enc, Output: &enc}, Options{})
			f := openShrink(t, out)
			ref := testshared.ReadSafetensors(t, filepath.Join(dir, c.stem+".dequant.safetensors"))
			matrices := 0
			for _, ft := range res.Tensors {
				if len(ft.Shape) != 2 {
					continue
				}
				matrices++
				if ft.Parts[0].Encoding != enc || ft.Metrics == nil || ft.Metrics.SNRdB != snrExact {
					t.Fatalf("%s: encoding %v, metrics %+v; want %v reported exact", ft.Name, ft.Parts[0].Encoding, ft.Metrics, enc)
				}
				stored, ok := f.Tensor(ft.Name)
				if !ok {
					t.Fatalf("%s not in the file", ft.Name)
				}
				sameBits(t, ft.Name+" ("+c.stem+")", decodePart(t, f, stored), canonicalRef(t, ref, ft.Name, m.Config.HeadDim))
			}
			if matrices != 9 {
				t.Fatalf("%d matrices, want 9", matrices)
			}
		})
	}
}
