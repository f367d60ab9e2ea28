package format

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

var update = flag.Bool("update", false, "rewrite testdata/golden and the FuzzParse seed corpus")

const goldenPath = "testdata/golden/tiny.shrink"

// tinyImage writes a small file from fixed inputs. Only uncompressed blobs
// are used so the bytes do not depend on the zstd encoder's version.
func tinyImage(t testing.TB) []byte {
	t.Helper()
	cfg := ModelConfig{
		Arch: "llama", Source: "llama2c", VocabSize: 4, HiddenSize: 8, IntermediateSize: 16,
		NumLayers: 1, NumHeads: 2, NumKVHeads: 2, HeadDim: 4, ContextLength: 16,
		RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu",
		TiedEmbeddings: true, BOS: 1, EOS: []int{2},
	}
	f32 := func(n int, scale float32) []byte {
		b := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(scale*float32(i-n/2)))
		}
		return b
	}
	pattern := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	path := filepath.Join(t.TempDir(), "tiny.shrink")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteBlob(BlobTokenizerBin, []byte("llama2c tokenizer stand-in"), false))
	must(w.WriteTensor(dense("token_embd.weight", quant.F32, 4, 8), f32(32, 0.25)))
	must(w.WriteTensor(dense("blk.0.attn_norm.weight", quant.F32, 8), f32(8, 1)))
	// q8 [2, 40]: 80 quants padded to 128, then 2 rows x 2 groups of f16 scales.
	q8 := append(append(pattern(80, 3), make([]byte, 48)...), pattern(8, 60)...)
	must(w.WriteTensor(dense("blk.0.attn_q.weight", quant.Q8, 2, 40), q8))
	must(w.WriteTensor(Tensor{Name: "blk.0.ffn_down.weight", Shape: []int64{8, 16}, Kind: KindLowRank, SourceDType: "F32",
		Metrics: &Metrics{RelFrobenius: 0.5, SNRdB: 6.02, Cosine: 0.87, MaxAbs: 1.5},
		Parts: []Part{
			{Role: RoleA, Shape: []int64{8, 1}, Encoding: quant.F16},
			{Role: RoleB, Shape: []int64{1, 16}, Encoding: quant.BF16},
		}}, pattern(16, 5), pattern(32, 9)))
	must(w.Commit(Header{Config: cfg, TokenizerKind: TokenizerLlama2c, Metadata: map[string]string{"converter": "golden"}}))
	b, err := os.ReadFile(path)
	must(err)
	return b
}

func TestGolden(t *testing.T) {
	img := tinyImage(t)
	if *update {
		if err := os.WriteFile(goldenPath, img, 0o644); err != nil {
			t.Fatal(err)
		}
		writeSeedCorpus(t, img)
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./format -run TestGolden -update)", err)
	}
	if !bytes.Equal(img, want) {
		i := 0
		for i < min(len(img), len(want)) && img[i] == want[i] {
			i++
		}
		t.Fatalf("writer output differs from %s at byte %d (len %d vs %d); if the format change is intended, bump the spec and run with -update", goldenPath, i, len(img), len(want))
	}

	// The committed file must stay readable, whatever the writer does.
	f, err := Open(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if tb, err := f.Blob(BlobTokenizerBin); err != nil || string(tb) != "llama2c tokenizer stand-in" {
		t.Errorf("tokenizer.bin = %q, %v", tb, err)
	}
	tn, ok := f.Tensor("blk.0.attn_q.weight")
	if !ok || tn.Parts[0].Encoding != quant.Q8 || tn.Parts[0].Length != 136 {
		t.Fatalf("attn_q = %+v", tn)
	}
	if d := f.PartData(&tn.Parts[0]); d[1] != 3+7 || d[80] != 0 {
		t.Errorf("attn_q bytes: %v", d[:4])
	}
	if !f.Config().TiedEmbeddings || f.Config().VocabSize != 4 {
		t.Errorf("config = %+v", f.Config())
	}
}

// seedMutations are damaged variants of a valid image for the fuzz corpus:
// each reaches a different validation stage.
func seedMutations(t testing.TB, img []byte) map[string][]byte {
	h := headerJSON(t, img)
	hdrOff := binary.LittleEndian.Uint64(img[16:])
	flipped := bytes.Clone(img)
	flipped[PreambleSize+100] ^= 1
	return map[string][]byte{
		"valid":            img,
		"data-flip":        flipped,
		"truncated":        img[:len(img)-1],
		"header-flip":      func() []byte { b := bytes.Clone(img); b[hdrOff+5] ^= 0x20; return b }(),
		"unknown-encoding": replaceJSON(t, img, `"encoding":"q8"`, `"encoding":"q4g32"`),
		"unknown-kind":     replaceJSON(t, img, `"kind":"lowrank"`, `"kind":"sparse"`),
		"overlap":          mutateHeader(t, img, func(h *Header) { h.Tensors[1].Parts[0].Offset = h.Tensors[0].Parts[0].Offset }),
		"bad-length":       mutateHeader(t, img, func(h *Header) { h.Tensors[2].Parts[0].Length = 80 }),
		"not-object":       withHeaderJSON(img, []byte("[]")),
		"empty-header":     withHeaderJSON(img, h[:1]),
	}
}

func writeSeedCorpus(t *testing.T, img []byte) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedMutations(t, img) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
