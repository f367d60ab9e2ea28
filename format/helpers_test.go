package format

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

func testConfig() ModelConfig {
	return ModelConfig{
		Arch: "llama", Source: "test", VocabSize: 32, HiddenSize: 8, IntermediateSize: 16,
		NumLayers: 1, NumHeads: 2, NumKVHeads: 1, HeadDim: 4, ContextLength: 64,
		RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu",
		BOS: 1, EOS: []int{2},
	}
}

// randBytes gives deterministic filler of the size an encoding needs; the
// container never interprets part bytes, so any bytes are valid content.
func randBytes(t testing.TB, seed uint64, enc quant.Encoding, shape ...int64) []byte {
	t.Helper()
	rows, cols := rowsCols(shape)
	n, err := enc.Size(rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func dense(name string, enc quant.Encoding, shape ...int64) Tensor {
	return Tensor{Name: name, Shape: shape, Kind: KindDense,
		Parts: []Part{{Role: RoleW, Shape: shape, Encoding: enc}}}
}

// fixture is a small file exercising every encoding, every kind and both
// blob storages, with the bytes that went in.
type fixture struct {
	header  Header
	tensors []Tensor
	data    map[string][][]byte // tensor name -> part bytes
	blobs   map[string][]byte
}

func newFixture(t testing.TB) *fixture {
	fx := &fixture{
		header: Header{Config: testConfig(), TokenizerKind: TokenizerHF,
			Metadata: map[string]string{"converter": "test"}},
		data:  map[string][][]byte{},
		blobs: map[string][]byte{},
	}
	add := func(tn Tensor) {
		parts := make([][]byte, len(tn.Parts))
		for i, p := range tn.Parts {
			parts[i] = randBytes(t, uint64(len(fx.tensors)*10+i), p.Encoding, p.Shape...)
		}
		fx.tensors = append(fx.tensors, tn)
		fx.data[tn.Name] = parts
	}
	add(dense("token_embd.weight", quant.F32, 32, 8))
	add(dense("blk.0.attn_norm.weight", quant.F32, 8))
	add(dense("blk.0.attn_q.weight", quant.F16, 8, 8))
	add(dense("blk.0.attn_k.weight", quant.BF16, 4, 8))
	add(dense("blk.0.attn_v.weight", quant.Q8, 3, 70))
	add(dense("blk.0.ffn_up.weight", quant.Q8Group(64), 5, 130))
	add(dense("blk.0.ffn_gate.weight", quant.Q8Group(128), 16, 8))
	add(dense("blk.0.attn_q.bias", quant.Q8, 7))
	m := &Metrics{RelFrobenius: 0.01, SNRdB: 40, Cosine: 0.9999, MaxAbs: 0.003}
	add(Tensor{Name: "blk.0.ffn_down.weight", Shape: []int64{8, 16}, Kind: KindLowRank, SourceDType: "BF16", Metrics: m,
		Parts: []Part{
			{Role: RoleA, Shape: []int64{8, 3}, Encoding: quant.F16},
			{Role: RoleB, Shape: []int64{3, 16}, Encoding: quant.BF16},
		}})
	add(Tensor{Name: "blk.0.attn_output.weight", Shape: []int64{8, 8}, Kind: KindLoRC,
		Parts: []Part{
			{Role: RoleW, Shape: []int64{8, 8}, Encoding: quant.Q8},
			{Role: RoleA, Shape: []int64{8, 2}, Encoding: quant.F32},
			{Role: RoleB, Shape: []int64{2, 8}, Encoding: quant.F16},
		}})
	fx.blobs[BlobTokenizerJSON] = []byte(`{"model":{"type":"BPE","vocab":{` + strings.Repeat(`"tok":1,`, 400) + `"end":0}}}`)
	fx.blobs[BlobTokenizerConfig] = []byte(`{"bos_token":"<s>"}`)
	fx.blobs["random.bin"] = randBytes(t, 99, quant.F32, 100) // incompressible
	return fx
}

func (fx *fixture) write(t testing.TB, path string) {
	t.Helper()
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, name := range []string{BlobTokenizerJSON, BlobTokenizerConfig, "random.bin"} {
		if err := w.WriteBlob(name, fx.blobs[name], name != BlobTokenizerConfig); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range fx.tensors {
		if err := w.WriteTensor(tn, fx.data[tn.Name]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(fx.header); err != nil {
		t.Fatal(err)
	}
}

// commitOpen commits w with h and opens the file it wrote at path; the file
// is closed when the test ends.
func commitOpen(t testing.TB, w *Writer, h Header, path string) *File {
	t.Helper()
	if err := w.Commit(h); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// image writes the fixture and returns the file bytes.
func (fx *fixture) image(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.shrink")
	fx.write(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// headerJSON extracts the JSON header of a valid image.
func headerJSON(t testing.TB, img []byte) []byte {
	t.Helper()
	off := binary.LittleEndian.Uint64(img[16:])
	n := binary.LittleEndian.Uint64(img[24:])
	return bytes.Clone(img[off : off+n])
}

// withHeaderJSON replaces the header of a valid image by js, keeping the
// data section and fixing the preamble and checksum, so tests reach the
// checks behind the header CRC.
func withHeaderJSON(img, js []byte) []byte {
	off := binary.LittleEndian.Uint64(img[16:])
	out := append(bytes.Clone(img[:off]), js...)
	binary.LittleEndian.PutUint64(out[24:], uint64(len(js)))
	binary.LittleEndian.PutUint32(out[32:], Checksum(js))
	return out
}

// replaceJSON substitutes the first occurrence of old in the header.
func replaceJSON(t testing.TB, img []byte, old, new string) []byte {
	t.Helper()
	js := string(headerJSON(t, img))
	if !strings.Contains(js, old) {
		t.Fatalf("header has no %q", old)
	}
	return withHeaderJSON(img, []byte(strings.Replace(js, old, new, 1)))
}

// mutateHeader decodes, edits and re-encodes the header.
func mutateHeader(t testing.TB, img []byte, edit func(h *Header)) []byte {
	t.Helper()
	var h Header
	if err := json.Unmarshal(headerJSON(t, img), &h); err != nil {
		t.Fatal(err)
	}
	edit(&h)
	js, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	return withHeaderJSON(img, js)
}

func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
