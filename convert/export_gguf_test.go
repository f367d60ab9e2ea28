package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// llamaRequiredKeys are the metadata keys llama.cpp reads to load a llama
// model (llama-model.cpp's hparams and llama-vocab.cpp's vocabulary).
var llamaRequiredKeys = []string{
	"general.architecture",
	"general.alignment",
	"llama.context_length",
	"llama.embedding_length",
	"llama.block_count",
	"llama.feed_forward_length",
	"llama.attention.head_count",
	"llama.attention.head_count_kv",
	"llama.rope.dimension_count",
	"llama.attention.layer_norm_rms_epsilon",
	"llama.rope.freq_base",
	"tokenizer.ggml.model",
	"tokenizer.ggml.tokens",
	"tokenizer.ggml.scores",
	"tokenizer.ggml.token_type",
	"tokenizer.ggml.bos_token_id",
	"tokenizer.ggml.eos_token_id",
}

// convertFile converts a checkpoint with the policy and returns the path.
func convertFile(t *testing.T, src string, opts OpenOptions, pol Policy) string {
	t.Helper()
	m := openModel(t, src, opts)
	out, _ := convertModel(t, m, pol, Options{})
	return out
}

func exportFile(t *testing.T, path string, opts ExportOptions) (string, *ExportResult) {
	t.Helper()
	f := openShrink(t, path)
	out := filepath.Join(t.TempDir(), "m.gguf")
	res, err := ExportGGUF(context.Background(), f, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out, res
}

// sameTensors checks that two .shrink files hold the same tensors: names,
// shapes, encodings and bytes.
func sameTensors(t *testing.T, aPath, bPath string) {
	t.Helper()
	a, b := openShrink(t, aPath), openShrink(t, bPath)
	if len(a.Tensors()) != len(b.Tensors()) {
		t.Fatalf("%d tensors, round trip has %d", len(a.Tensors()), len(b.Tensors()))
	}
	for _, ta := range a.Tensors() {
		tb, ok := b.Tensor(ta.Name)
		if !ok {
			t.Fatalf("%s lost in the round trip", ta.Name)
		}
		if !slices.Equal(ta.Shape, tb.Shape) || len(ta.Parts) != 1 || len(tb.Parts) != 1 || ta.Parts[0].Encoding != tb.Parts[0].Encoding {
			t.Fatalf("%s: %v %v became %v %v", ta.Name, ta.Shape, ta.Parts[0].Encoding, tb.Shape, tb.Parts[0].Encoding)
		}
		if !bytes.Equal(a.PartData(&ta.Parts[0]), b.PartData(&tb.Parts[0])) {
			t.Fatalf("%s (%v): bytes differ after the round trip", ta.Name, ta.Parts[0].Encoding)
		}
	}
	ca, cb := a.Config(), b.Config()
	ca.Source, cb.Source = "", ""
	if !sameConfig(ca, cb) {
		t.Fatalf("config %+v became %+v", ca, cb)
	}
}

func sameConfig(a, b format.ModelConfig) bool {
	return a.Arch == b.Arch && a.VocabSize == b.VocabSize && a.HiddenSize == b.HiddenSize && a.IntermediateSize == b.IntermediateSize &&
		a.NumLayers == b.NumLayers && a.NumHeads == b.NumHeads && a.NumKVHeads == b.NumKVHeads && a.HeadDim == b.HeadDim &&
		a.ContextLength == b.ContextLength && a.RopeTheta == b.RopeTheta && a.NormEps == b.NormEps && a.NormKind == b.NormKind &&
		a.Activation == b.Activation && a.TiedEmbeddings == b.TiedEmbeddings && a.AttnBias == b.AttnBias && a.BOS == b.BOS && slices.Equal(a.EOS, b.EOS)
}

// TestExportLlamaStories12mRoundTrip: llama-stories-12m converted at q8 and
// at f16 is exported to GGUF; the GGUF has every key llama.cpp requires for
// a llama model, its tensors read back through the GGUF reader to the
// .shrink's numbers (Q8_0 blocks are the q8 groups), and converting the
// GGUF again gives the same .shrink tensors bit for bit (HF → .shrink →
// GGUF → .shrink). The exported tokenizer gives the same ids as the
// original tokenizer.json on the reference prompts.
func TestExportLlamaStories12mRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("converts the 12M model")
	}
	src := testshared.Path(t, "models", "llama-stories-12m")
	for _, enc := range []quant.Encoding{quant.Q8, quant.F16} {
		t.Run(enc.String(), func(t *testing.T) {
			pol := Policy{Quant: enc}
			first := convertFile(t, src, OpenOptions{}, pol)
			g, res := exportFile(t, first, ExportOptions{Exact: true})
			if len(res.Notes) != 0 {
				t.Fatalf("notes on an exact export: %v", res.Notes)
			}
			gf := openGGUFFile(t, g)
			for _, k := range llamaRequiredKeys {
				if !gf.Has(k) {
					t.Errorf("GGUF lacks %s", k)
				}
			}
			if a, _ := gf.String("general.architecture"); a != "llama" {
				t.Errorf("general.architecture %q", a)
			}
			wantType := map[quant.Encoding]gguf.TensorType{quant.Q8: gguf.TypeQ8_0, quant.F16: gguf.TypeF16}[enc]
			if tn, ok := gf.Tensor("blk.0.ffn_up.weight"); !ok || tn.Type != wantType {
				t.Fatalf("blk.0.ffn_up.weight: %+v, want type %v", tn, wantType)
			}
			checkGGUFValues(t, first, gf)

			back := convertFile(t, g, OpenOptions{}, pol)
			sameTensors(t, first, back)

			// The exported tokenizer against the original one.
			texts := []string{"Once upon a time", "Lily and Tom went to the park.", "The little dog was very happy because", "One day, a big bird",
				"Tom said, \"I want to play with the big red ball!\"", "She was 3 years old.\nThe end."}
			if corpus, err := os.ReadFile(testshared.Path(t, "corpus", "tinystories-valid-1000.txt")); err == nil {
				texts = append(texts, strings.SplitN(string(corpus), "\n", 300)[:299]...)
			}
			sameEncoding(t, loadTok(t, openShrink(t, first)), ggufTokenizer(t, gf), texts, len(texts))
		})
	}
}

// checkGGUFValues reads every GGUF tensor through the reader, dequantizes
// it, undoes the q/k row order and compares with the .shrink's values.
func checkGGUFValues(t *testing.T, shrinkPath string, gf *gguf.File) {
	t.Helper()
	f := openShrink(t, shrinkPath)
	cfg := f.Config()
	for _, st := range f.Tensors() {
		gt, ok := gf.Tensor(st.Name)
		if !ok {
			t.Fatalf("%s not in the GGUF", st.Name)
		}
		if !slices.Equal(gt.Shape(), st.Shape) {
			t.Fatalf("%s: GGUF shape %v, .shrink %v", st.Name, gt.Shape(), st.Shape)
		}
		rows, cols, _ := matrixShape(st.Shape)
		want := decodePart(t, f, &st)
		raw, err := gf.ReadTensor(gt)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, rows*cols)
		if err := gguf.Dequantize(gt.Type, got, raw); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(st.Name, "attn_q.weight") || strings.HasSuffix(st.Name, "attn_k.weight") {
			g := make([]float32, len(got))
			rotaryToHalf(g, got, rows, cols, cfg.HeadDim)
			got = g
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: GGUF values differ from the .shrink's", st.Name)
		}
	}
}

func loadTok(t *testing.T, f *format.File) *tokenizer.Tokenizer {
	t.Helper()
	b, err := f.Blob(format.BlobTokenizerJSON)
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, _ := f.Blob(format.BlobTokenizerConfig)
	tok, err := tokenizer.FromHF(b, cfgJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestExportMatchesLlamaCppConverter exports stories260K converted from
// its llama2.c .bin and compares with stories260K.gguf, which llama.cpp's
// own converter wrote from the same weights: every tensor's bytes (q and k
// in llama.cpp's rotary order) and the vocabulary (tokens, scores, token
// types) must be the same.
func TestExportMatchesLlamaCppConverter(t *testing.T) {
	dir := testshared.Path(t, "models", "stories260K")
	first := convertFile(t, filepath.Join(dir, "stories260K.bin"), OpenOptions{}, Policy{Quant: quant.F32})
	g, _ := exportFile(t, first, ExportOptions{Exact: true})
	ours := openGGUFFile(t, g)
	ref := openGGUFFile(t, filepath.Join(dir, "stories260K.gguf"))
	for _, rt := range ref.Tensors {
		if rt.Name == "output.weight" {
			continue // llama.cpp writes the tied head as a copy; shrink ties it
		}
		ot, ok := ours.Tensor(rt.Name)
		if !ok {
			t.Fatalf("%s missing", rt.Name)
		}
		a, _ := ref.ReadTensor(&rt)
		b, err := ours.ReadTensor(ot)
		if err != nil || ot.Type != rt.Type || !slices.Equal(ot.Dims, rt.Dims) || !bytes.Equal(a, b) {
			t.Fatalf("%s: ours %v %v, llama.cpp's %v %v, same bytes %v", rt.Name, ot.Type, ot.Dims, rt.Type, rt.Dims, bytes.Equal(a, b))
		}
	}
	strs := func(f *gguf.File, k string) []string { s, _ := f.Strings(k); return s }
	if a, b := strs(ref, "tokenizer.ggml.tokens"), strs(ours, "tokenizer.ggml.tokens"); len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("tokens differ: %q vs %q", a[:min(len(a), 8)], b[:min(len(b), 8)])
	}
	sa, _ := ref.Floats("tokenizer.ggml.scores")
	sb, _ := ours.Floats("tokenizer.ggml.scores")
	if !slices.Equal(sa, sb) {
		t.Fatal("scores differ")
	}
	ta, _ := ref.Ints("tokenizer.ggml.token_type")
	tb, _ := ours.Ints("tokenizer.ggml.token_type")
	if !slices.Equal(ta, tb) {
		t.Fatalf("token types differ: %v vs %v", ta[:8], tb[:8])
	}
	for _, k := range []string{"llama.embedding_length", "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
		"llama.attention.head_count_kv", "llama.rope.dimension_count", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"} {
		a, err1 := ref.Uint(k)
		b, err2 := ours.Uint(k)
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("%s: llama.cpp %d (%v), ours %d (%v)", k, a, err1, b, err2)
		}
	}
}

// TestExportRoundTripOtherFamilies: GPT-2 (q/k/v fused into attn_qkv and
// split again, biases, learned positions) and a tied Llama go HF → .shrink
// → GGUF → .shrink with the same tensors; the GGUF tokenizer gives the
// original ids.
func TestExportRoundTripOtherFamilies(t *testing.T) {
	for _, c := range []struct {
		model string
		enc   quant.Encoding
	}{{"gpt2-stories-4m", quant.F16}, {"tinystories-656k", quant.F32}, {"llama-stories-tiny", quant.BF16}} {
		t.Run(c.model, func(t *testing.T) {
			src := testshared.Path(t, "models", c.model)
			first := convertFile(t, src, OpenOptions{}, Policy{Quant: c.enc})
			g, res := exportFile(t, first, ExportOptions{Exact: true})
			if len(res.Notes) != 0 {
				t.Fatalf("notes: %v", res.Notes)
			}
			back := convertFile(t, g, OpenOptions{}, Policy{Quant: c.enc})
			sameTensors(t, first, back)
			corpus, err := os.ReadFile(testshared.Path(t, "corpus", "tinystories-valid-1000.txt"))
			if err != nil {
				t.Fatal(err)
			}
			texts := strings.SplitN(string(corpus), "\n", 200)[:199]
			sameEncoding(t, loadTok(t, openShrink(t, first)), ggufTokenizer(t, openGGUFFile(t, g)), texts, 3)
		})
	}
}

// TestExportQ8GroupsWithoutLlamaCppType: q8g64 has no ggml type. Without
// --exact it is requantized as Q8_0 (noted); with --exact it is written as
// F32 holding exactly the q8g64 values (noted too).
func TestExportQ8GroupsWithoutLlamaCppType(t *testing.T) {
	src := convertFile(t, "../internal/demo/llama-stories-tiny", OpenOptions{}, Policy{Quant: quant.Q8Group(64)})
	for _, exact := range []bool{false, true} {
		g, res := exportFile(t, src, ExportOptions{Exact: exact})
		want := map[bool]string{false: "q8g64 requantized as Q8_0", true: "written as F32 (the same numbers)"}[exact]
		if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], want) || res.Reencoded != 28 {
			t.Fatalf("exact=%v: notes %q (%d re-encoded), want one containing %q for the 28 projections", exact, res.Notes, res.Reencoded, want)
		}
		gf := openGGUFFile(t, g)
		wantType := map[bool]gguf.TensorType{false: gguf.TypeQ8_0, true: gguf.TypeF32}[exact]
		if tn, _ := gf.Tensor("blk.1.ffn_down.weight"); tn == nil || tn.Type != wantType {
			t.Fatalf("exact=%v: blk.1.ffn_down.weight %+v, want %v", exact, tn, wantType)
		}
		if exact {
			checkGGUFValues(t, src, gf)
		}
	}
}

// TestQ4SAndQ4_0 checks both directions of q4s (group 32) ⇄ Q4_0, which
// hold the same numbers: q4_0.gguf converted at q4s decodes to gguf-py's
// values bit for bit, and a q4s model exported (Q4_0 blocks repacked from
// the planes) and converted back is the same .shrink.
func TestQ4SAndQ4_0(t *testing.T) {
	dir := testshared.Path(t, "models", "gguf-quants")
	q4s := quant.Q4S(32)
	pol := Policy{Quant: q4s, Embed: &q4s, Output: &q4s}
	first := convertFile(t, filepath.Join(dir, "q4_0.gguf"), OpenOptions{}, pol)
	f := openShrink(t, first)
	ref := testshared.ReadSafetensors(t, filepath.Join(dir, "q4_0.dequant.safetensors"))
	for _, st := range f.Tensors() {
		if len(st.Shape) != 2 {
			continue
		}
		if st.Parts[0].Encoding != q4s || st.Metrics == nil || st.Metrics.SNRdB != snrExact {
			t.Fatalf("%s: %v, metrics %+v; want q4s reported exact", st.Name, st.Parts[0].Encoding, st.Metrics)
		}
		if got, want := decodePart(t, f, &st), canonicalRef(t, ref, st.Name, f.Config().HeadDim); !slices.Equal(got, want) {
			t.Fatalf("%s: q4s values differ from Q4_0's", st.Name)
		}
	}
	g, res := exportFile(t, first, ExportOptions{Exact: true})
	if len(res.Notes) != 0 {
		t.Fatalf("notes: %v", res.Notes)
	}
	gf := openGGUFFile(t, g)
	if tn, _ := gf.Tensor("blk.0.ffn_up.weight"); tn == nil || tn.Type != gguf.TypeQ4_0 {
		t.Fatalf("blk.0.ffn_up.weight exported as %+v, want Q4_0", tn)
	}
	checkGGUFValues(t, first, gf)
	sameTensors(t, first, convertFile(t, g, OpenOptions{}, pol))
}

// TestQ4AndQ4_K: q4 and q5 (group 32) hold the numbers of Q4_K and Q5_K.
// q4_k.gguf converted at q4 (q5_k.gguf at q5) and exported again gives llama-quantize's numbers in
// every Q4_K tensor (mostly its very bytes; q and k rows back in its
// order), and converting that GGUF gives the same .shrink.
func TestQ4AndQ4_K(t *testing.T) {
	for _, c := range []struct {
		stem string
		enc  quant.Encoding
	}{{"q4_k", quant.QK(4, 32)}, {"q5_k", quant.QK(5, 32)}} {
		t.Run(c.stem, func(t *testing.T) { testKQuantRoundTrip(t, c.stem, c.enc) })
	}
}

func testKQuantRoundTrip(t *testing.T, stem string, enc quant.Encoding) {
	dir := testshared.Path(t, "models", "gguf-quants")
	pol := Policy{Quant: enc, Embed: &enc, Output: &enc}
	first := convertFile(t, filepath.Join(dir, stem+".gguf"), OpenOptions{}, pol)
	g, res := exportFile(t, first, ExportOptions{Exact: true})
	if len(res.Notes) != 0 {
		t.Fatalf("notes: %v", res.Notes)
	}
	ours := openGGUFFile(t, g)
	orig := openGGUFFile(t, filepath.Join(dir, stem+".gguf"))
	identical := 0
	for _, ot := range orig.Tensors {
		nt, ok := ours.Tensor(ot.Name)
		if !ok {
			t.Fatalf("%s missing", ot.Name)
		}
		a, _ := orig.ReadTensor(&ot)
		b, _ := ours.ReadTensor(nt)
		if nt.Type != ot.Type {
			t.Fatalf("%s: exported %v, llama-quantize %v", ot.Name, nt.Type, ot.Type)
		}
		if bytes.Equal(a, b) {
			identical++
			continue
		}
		// A group can have several (scale, min) codes for the same numbers.
		x, y := make([]float32, ot.Elements()), make([]float32, ot.Elements())
		if gguf.Dequantize(ot.Type, x, a) != nil || gguf.Dequantize(nt.Type, y, b) != nil || !slices.Equal(x, y) {
			t.Fatalf("%s: exported values differ from llama-quantize's", ot.Name)
		}
	}
	t.Logf("%d of %d tensors byte-identical to llama-quantize's, the rest the same values", identical, len(orig.Tensors))
	checkGGUFValues(t, first, ours)
	sameTensors(t, first, convertFile(t, g, OpenOptions{}, pol))
}
