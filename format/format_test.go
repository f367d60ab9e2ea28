package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

func TestRoundTrip(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.shrink")
	fx.write(t, path)
	if got := dirEntries(t, dir); !slices.Equal(got, []string{"model.shrink"}) {
		t.Fatalf("directory holds %v, want only model.shrink", got)
	}

	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	st, _ := os.Stat(path)
	if f.Size() != st.Size() || f.Path() != path {
		t.Errorf("Size/Path = %d %q, want %d %q", f.Size(), f.Path(), st.Size(), path)
	}
	h := f.Header()
	if h.Version != Version || h.TokenizerKind != TokenizerHF || !reflect.DeepEqual(h.Metadata, fx.header.Metadata) {
		t.Errorf("header fields: %+v", h)
	}
	if !reflect.DeepEqual(f.Config(), fx.header.Config) {
		t.Errorf("config = %+v, want %+v", f.Config(), fx.header.Config)
	}
	if len(f.Tensors()) != len(fx.tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors()), len(fx.tensors))
	}
	for i, want := range fx.tensors {
		got, ok := f.Tensor(want.Name)
		if !ok || got != &f.Tensors()[i] {
			t.Fatalf("Tensor(%q) not found at index %d", want.Name, i)
		}
		if !slices.Equal(got.Shape, want.Shape) || got.Kind != want.Kind || got.SourceDType != want.SourceDType ||
			!reflect.DeepEqual(got.Metrics, want.Metrics) || len(got.Parts) != len(want.Parts) {
			t.Fatalf("tensor %q metadata = %+v, want %+v", want.Name, got, want)
		}
		for j := range want.Parts {
			gp, wp := &got.Parts[j], &want.Parts[j]
			if gp.Role != wp.Role || gp.Encoding != wp.Encoding || !slices.Equal(gp.Shape, wp.Shape) {
				t.Errorf("tensor %q part %d = %+v, want %+v", want.Name, j, gp, wp)
			}
			data := f.PartData(gp)
			if !bytes.Equal(data, fx.data[want.Name][j]) {
				t.Errorf("tensor %q part %s: bytes differ", want.Name, gp.Role)
			}
			if gp.Offset%Alignment != 0 || addrOf(data)%Alignment != 0 {
				t.Errorf("tensor %q part %s: offset %d / address %#x not 64-aligned", want.Name, gp.Role, gp.Offset, addrOf(data))
			}
		}
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("Tensor(nope) found")
	}

	compression := map[string]string{BlobTokenizerJSON: CompressionZstd, BlobTokenizerConfig: "", "random.bin": ""}
	for name, want := range fx.blobs {
		if !f.HasBlob(name) {
			t.Fatalf("HasBlob(%q) = false", name)
		}
		got, err := f.Blob(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("blob %q differs", name)
		}
		for _, b := range h.Blobs {
			if b.Name == name && b.Compression != compression[name] {
				t.Errorf("blob %q stored with compression %q, want %q", name, b.Compression, compression[name])
			}
		}
	}
	if f.HasBlob("tokenizer.bin") {
		t.Error("HasBlob(tokenizer.bin) = true")
	}
	if _, err := f.Blob("tokenizer.bin"); err == nil {
		t.Error("Blob of a missing name succeeded")
	}
	if err := f.Verify(context.Background()); err != nil {
		t.Error(err)
	}

	// The in-memory parser sees the same file.
	img, _ := os.ReadFile(path)
	g, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Header(), f.Header()) {
		t.Error("Parse and Open disagree on the header")
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestEmptyModelAndReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.shrink")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f := commitOpen(t, w, Header{Config: testConfig()}, path)
	if len(f.Tensors()) != 0 || len(f.Header().Blobs) != 0 || f.Size() <= PreambleSize {
		t.Errorf("empty model: %d tensors, %d blobs, size %d", len(f.Tensors()), len(f.Header().Blobs), f.Size())
	}
}

func TestWriterRejects(t *testing.T) {
	good := dense("ok.weight", quant.F32, 2, 3)
	other := dense("other.weight", quant.F32, 2, 3)
	cases := []struct {
		name  string
		t     Tensor
		data  func(Tensor) [][]byte // nil: right-sized data per part
		class error
		want  string
	}{
		{"duplicate", dense("ok.weight", quant.F32, 2, 3), nil, ErrInvalid, "duplicate tensor name"},
		{"empty name", dense("", quant.F32, 2), nil, ErrInvalid, "empty name"},
		{"unknown kind", Tensor{Name: "x", Shape: []int64{2}, Kind: "sparse", Parts: good.Parts}, nil, ErrUnsupported, `unknown kind "sparse"`},
		{"bad encoding", dense("x", quant.Encoding{Kind: quant.KindQ8, Group: 48}, 2, 64), func(Tensor) [][]byte { return [][]byte{make([]byte, 200)} }, ErrUnsupported, "encoding"},
		{"rank 3", Tensor{Name: "x", Shape: []int64{2, 2, 2}, Kind: KindDense, Parts: []Part{{Role: RoleW, Shape: []int64{2, 2, 2}, Encoding: quant.F32}}}, func(Tensor) [][]byte { return [][]byte{make([]byte, 32)} }, ErrInvalid, "rank 3"},
		{"zero dim", dense("x", quant.F32, 0, 3), func(Tensor) [][]byte { return [][]byte{nil} }, ErrInvalid, "dimension 0"},
		{"part shape", Tensor{Name: "x", Shape: []int64{2, 3}, Kind: KindDense, Parts: []Part{{Role: RoleW, Shape: []int64{3, 2}, Encoding: quant.F32}}}, nil, ErrInvalid, "does not fit"},
		{"role order", Tensor{Name: "x", Shape: []int64{4, 6}, Kind: KindLowRank, Parts: []Part{
			{Role: RoleB, Shape: []int64{2, 6}, Encoding: quant.F16}, {Role: RoleA, Shape: []int64{4, 2}, Encoding: quant.F16}}}, nil, ErrInvalid, `role "b", want "a"`},
		{"lowrank a out", Tensor{Name: "x", Shape: []int64{4, 6}, Kind: KindLowRank, Parts: []Part{
			{Role: RoleA, Shape: []int64{5, 2}, Encoding: quant.F16}, {Role: RoleB, Shape: []int64{2, 6}, Encoding: quant.F16}}}, nil, ErrInvalid, "part a: shape [5 2]"},
		{"lowrank b k", Tensor{Name: "x", Shape: []int64{4, 6}, Kind: KindLowRank, Parts: []Part{
			{Role: RoleA, Shape: []int64{4, 2}, Encoding: quant.F16}, {Role: RoleB, Shape: []int64{3, 6}, Encoding: quant.F16}}}, nil, ErrInvalid, "part b: shape [3 6]"},
		{"lowrank b in", Tensor{Name: "x", Shape: []int64{4, 6}, Kind: KindLowRank, Parts: []Part{
			{Role: RoleA, Shape: []int64{4, 2}, Encoding: quant.F16}, {Role: RoleB, Shape: []int64{2, 7}, Encoding: quant.F16}}}, nil, ErrInvalid, "want [2 6]"},
		{"lowrank 1-D", Tensor{Name: "x", Shape: []int64{4}, Kind: KindLowRank, Parts: []Part{
			{Role: RoleA, Shape: []int64{4, 2}, Encoding: quant.F16}, {Role: RoleB, Shape: []int64{2, 6}, Encoding: quant.F16}}}, nil, ErrInvalid, "needs a 2-D shape"},
		{"lorc missing w", Tensor{Name: "x", Shape: []int64{4, 6}, Kind: KindLoRC, Parts: []Part{
			{Role: RoleA, Shape: []int64{4, 2}, Encoding: quant.F16}, {Role: RoleB, Shape: []int64{2, 6}, Encoding: quant.F16}}}, nil, ErrInvalid, "has 2 parts, want 3"},
		{"short data", other, func(Tensor) [][]byte { return [][]byte{make([]byte, 23)} }, ErrInvalid, "23 bytes"},
		{"q8 unpadded", dense("x", quant.Q8, 3, 5), func(Tensor) [][]byte { return [][]byte{make([]byte, 15+6)} }, ErrInvalid, "takes 70"},
		{"missing data", other, func(Tensor) [][]byte { return nil }, ErrInvalid, "1 parts but 0 data"},
		{"nan metrics", Tensor{Name: "x", Shape: []int64{2}, Kind: KindDense, Parts: []Part{{Role: RoleW, Shape: []int64{2}, Encoding: quant.F32}},
			Metrics: &Metrics{SNRdB: math.Inf(1)}}, nil, ErrInvalid, "not finite"},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.shrink")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.WriteTensor(good, make([]byte, 24)); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var data [][]byte
			if c.data != nil {
				data = c.data(c.t)
			} else {
				for _, p := range c.t.Parts {
					r, cl := 1, 1
					if checkShape(p.Shape) == "" {
						r, cl = rowsCols(p.Shape)
					}
					n, _ := p.Encoding.Size(r, cl)
					data = append(data, make([]byte, n))
				}
			}
			err := w.WriteTensor(c.t, data...)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q (class ok: %v), want class %v containing %q", err, errors.Is(err, c.class), c.class, c.want)
			}
		})
	}
	blobCases := []struct{ name, want string }{{"", "empty name"}, {"a", "duplicate blob"}}
	if err := w.WriteBlob("a", []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	for _, c := range blobCases {
		if err := w.WriteBlob(c.name, []byte("y"), true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WriteBlob(%q) = %v, want %q", c.name, err, c.want)
		}
	}
	// Rejections leave the writer usable and the file clean.
	f := commitOpen(t, w, Header{Config: testConfig()}, path)
	if len(f.Tensors()) != 1 || len(f.Header().Blobs) != 1 {
		t.Errorf("file has %d tensors and %d blobs, want 1 and 1", len(f.Tensors()), len(f.Header().Blobs))
	}
}

func TestAtomicity(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, w *Writer) // must end in a failure or Abort
	}{
		{"abort", func(t *testing.T, w *Writer) {
			if err := w.WriteTensor(dense("x", quant.F32, 4), make([]byte, 16)); err != nil {
				t.Fatal(err)
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
		}},
		{"rejected tensor then abort", func(t *testing.T, w *Writer) {
			if err := w.WriteTensor(dense("x", quant.F32, 4), make([]byte, 15)); err == nil {
				t.Fatal("short data accepted")
			}
			w.Abort()
		}},
		{"io error", func(t *testing.T, w *Writer) {
			w.tmp.Close() // simulate a dying disk under the writer
			big := make([]byte, writeBufferSize+64)
			if err := w.WriteTensor(dense("x", quant.F32, int64(len(big)/4)), big); err == nil {
				t.Fatal("write to a closed file succeeded")
			}
			if _, err := os.Stat(w.tmpName); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temp file still there after an I/O error: %v", err)
			}
			if err := w.Commit(Header{Config: testConfig()}); err == nil {
				t.Error("Commit after an I/O error succeeded")
			}
		}},
		{"invalid config at commit", func(t *testing.T, w *Writer) {
			cfg := testConfig()
			cfg.NumKVHeads = 3
			err := w.Commit(Header{Config: cfg})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "num_kv_heads 3 does not divide") {
				t.Errorf("Commit = %v", err)
			}
		}},
		{"missing tokenizer blob", func(t *testing.T, w *Writer) {
			if err := w.Commit(Header{Config: testConfig(), TokenizerKind: TokenizerLlama2c}); err == nil || !strings.Contains(err.Error(), "tokenizer.bin") {
				t.Errorf("Commit = %v", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Create(filepath.Join(dir, "out.shrink"))
			if err != nil {
				t.Fatal(err)
			}
			if ents := dirEntries(t, dir); len(ents) != 1 || !strings.HasPrefix(ents[0], ".out.shrink.tmp-") {
				t.Fatalf("while writing, directory holds %v", ents)
			}
			c.run(t, w)
			if err := w.Abort(); err != nil {
				t.Errorf("Abort: %v", err)
			}
			if ents := dirEntries(t, dir); len(ents) != 0 {
				t.Errorf("directory holds %v, want nothing", ents)
			}
		})
	}

	t.Run("abort after commit", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.shrink")
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(Header{Config: testConfig()}); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path); err != nil {
			t.Fatalf("file gone after Abort following Commit: %v", err)
		}
		if err := w.WriteBlob("x", nil, false); err == nil {
			t.Error("WriteBlob after Commit succeeded")
		}
	})
	t.Run("old file survives abort", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.shrink")
		os.WriteFile(path, []byte("previous"), 0o644)
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w.WriteBlob("x", []byte("new"), false)
		w.Abort()
		if b, _ := os.ReadFile(path); string(b) != "previous" {
			t.Errorf("destination = %q, want the previous content", b)
		}
	})
}

func TestCorruption(t *testing.T) {
	fx := newFixture(t)
	img := fx.image(t)
	var h Header
	if err := decodeHeader(headerJSON(t, img), &h); err != nil {
		t.Fatal(err)
	}
	part := func(tensor string, j int) Part {
		for _, tn := range h.Tensors {
			if tn.Name == tensor {
				return tn.Parts[j]
			}
		}
		t.Fatalf("no tensor %q", tensor)
		return Part{}
	}
	flip := func(off uint64) func([]byte) []byte {
		return func(b []byte) []byte { b[off] ^= 0x10; return b }
	}
	hdrOff := binary.LittleEndian.Uint64(img[16:])
	hdrLen := binary.LittleEndian.Uint64(img[24:])
	le64 := func(at int, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint64(b[at:], v); return b }
	}
	le32 := func(at int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[at:], v); return b }
	}
	q := part("blk.0.attn_v.weight", 0)
	lr := part("blk.0.ffn_down.weight", 1)
	var tokBlob Blob
	for _, b := range h.Blobs {
		if b.Name == BlobTokenizerJSON {
			tokBlob = b
		}
	}

	cases := []struct {
		name   string
		mutate func([]byte) []byte
		class  error
		want   []string
	}{
		{"data byte in q8 part", flip(q.Offset + q.Length - 1), ErrChecksum, []string{`tensor "blk.0.attn_v.weight" part w: checksum mismatch`}},
		{"data byte in lowrank b", flip(lr.Offset), ErrChecksum, []string{`tensor "blk.0.ffn_down.weight" part b: checksum`}},
		{"data byte in blob", flip(tokBlob.Offset + 3), ErrChecksum, []string{`blob "tokenizer.json": checksum`}},
		{"header byte", flip(hdrOff + hdrLen/2), ErrChecksum, []string{"header checksum mismatch"}},
		{"truncated end", func(b []byte) []byte { return b[:len(b)-10] }, ErrCorrupt, []string{"truncated", "extends past the end"}},
		{"truncated preamble", func(b []byte) []byte { return b[:30] }, ErrCorrupt, []string{"truncated: 30 bytes"}},
		{"empty", func(b []byte) []byte { return nil }, ErrCorrupt, []string{"truncated: 0 bytes"}},
		{"header longer than file", le64(24, hdrLen+100), ErrCorrupt, []string{"truncated", "extends past the end"}},
		{"header length huge", le64(24, math.MaxUint64), ErrCorrupt, []string{"header length"}},
		{"header offset huge", le64(16, math.MaxUint64-63), ErrCorrupt, []string{"extends past the end"}},
		{"header offset in preamble", le64(16, 0), ErrCorrupt, []string{"header offset 0"}},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0, 0) }, ErrCorrupt, []string{"2 trailing bytes"}},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrNotShrink, []string{"bad magic"}},
		{"unknown version", le32(8, 2), ErrUnsupported, []string{"unsupported version 2"}},
		{"flags", le32(12, 1), ErrUnsupported, []string{"unknown flags 0x1"}},
		{"reserved byte", func(b []byte) []byte { b[40] = 1; return b }, ErrCorrupt, []string{"reserved preamble byte 40"}},
		{"unknown encoding", func(b []byte) []byte { return replaceJSON(t, b, `"encoding":"q8"`, `"encoding":"q7"`) }, ErrUnsupported, []string{`tensor "blk.0.attn_v.weight" part w: unknown encoding "q7"`}},
		{"unknown kind", func(b []byte) []byte { return replaceJSON(t, b, `"kind":"lowrank"`, `"kind":"sparse"`) }, ErrUnsupported, []string{`tensor "blk.0.ffn_down.weight": unknown kind "sparse"`}},
		{"unknown role", func(b []byte) []byte { return replaceJSON(t, b, `"role":"b"`, `"role":"c"`) }, ErrCorrupt, []string{`role "c", want "b"`}},
		{"unknown compression", func(b []byte) []byte { return replaceJSON(t, b, `"compression":"zstd"`, `"compression":"lz4"`) }, ErrUnsupported, []string{`blob "tokenizer.json": unknown compression "lz4"`}},
		{"unknown tokenizer kind", func(b []byte) []byte { return replaceJSON(t, b, `"tokenizer_kind":"hf"`, `"tokenizer_kind":"sp"`) }, ErrUnsupported, []string{`unknown tokenizer_kind "sp"`}},
		{"header version", func(b []byte) []byte { return replaceJSON(t, b, `"version":1`, `"version":2`) }, ErrUnsupported, []string{"header version 2"}},
		{"wrong type", func(b []byte) []byte { return replaceJSON(t, b, `"vocab_size":32`, `"vocab_size":"32"`) }, ErrCorrupt, []string{"header JSON"}},
		{"negative offset", func(b []byte) []byte { return replaceJSON(t, b, `"offset":`, `"offset":-`) }, ErrCorrupt, []string{"header JSON"}},
		{"not an object", func(b []byte) []byte { return withHeaderJSON(b, []byte("null")) }, ErrCorrupt, []string{"not a JSON object"}},
		{"trailing JSON", func(b []byte) []byte { return withHeaderJSON(b, append(headerJSON(t, b), "{}"...)) }, ErrCorrupt, []string{"data after the top-level object"}},
		{"invalid UTF-8", func(b []byte) []byte { return withHeaderJSON(b, append(headerJSON(t, b), 0xff)) }, ErrCorrupt, []string{"UTF-8"}},
		{"overlap", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[3].Parts[0].Offset = h.Tensors[2].Parts[0].Offset })
		}, ErrCorrupt, []string{`tensor "blk.0.attn_k.weight" part w: data [`, `overlaps tensor "blk.0.attn_q.weight" part w`}},
		{"overlap inside", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[1].Parts[0].Offset = h.Tensors[0].Parts[0].Offset + 64 })
		}, ErrCorrupt, []string{`overlaps tensor "token_embd.weight"`}},
		{"blob overlaps part", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Blobs[2].Offset = h.Tensors[0].Parts[0].Offset })
		}, ErrCorrupt, []string{"overlaps", "random.bin"}},
		{"misaligned", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[0].Parts[0].Offset += 8 })
		}, ErrCorrupt, []string{"not a multiple of 64"}},
		{"part in preamble", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Tensors[0].Parts[0].Offset = 0 }) }, ErrCorrupt, []string{"inside the preamble"}},
		{"part past data", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[0].Parts[0].Offset = math.MaxUint64 &^ 63 })
		}, ErrCorrupt, []string{"extends past the data section"}},
		{"part into header", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[0].Parts[0].Offset = hdrOff - 64 })
		}, ErrCorrupt, []string{"extends past the data section"}},
		{"length mismatch", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[0].Parts[0].Length += 64 })
		}, ErrCorrupt, []string{"takes 1024 bytes"}},
		{"shape mismatch", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[0].Shape = []int64{16, 16} })
		}, ErrCorrupt, []string{`tensor "token_embd.weight" part w: shape [32 8] does not fit`}},
		{"huge dim", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[0].Shape[0] = 1 << 40; h.Tensors[0].Parts[0].Shape[0] = 1 << 40 })
		}, ErrCorrupt, []string{"dimension 1099511627776"}},
		{"duplicate tensor", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Tensors[1].Name = h.Tensors[0].Name })
		}, ErrCorrupt, []string{"duplicate tensor name"}},
		{"empty tensor name", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Tensors[4].Name = "" }) }, ErrCorrupt, []string{"tensor 4: empty name"}},
		{"duplicate blob", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.Blobs[1].Name = h.Blobs[0].Name })
		}, ErrCorrupt, []string{"duplicate blob name"}},
		{"raw length of plain blob", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Blobs[1].RawLength++ }) }, ErrCorrupt, []string{"raw_length"}},
		{"missing tokenizer", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Blobs[0].Name = "other" }) }, ErrCorrupt, []string{`needs blob "tokenizer.json"`}},
		{"missing llama2c tokenizer", func(b []byte) []byte {
			return mutateHeader(t, b, func(h *Header) { h.TokenizerKind = TokenizerLlama2c })
		}, ErrCorrupt, []string{`tokenizer_kind "llama2c" needs blob "tokenizer.bin"`}},
		{"missing spm tokenizer", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.TokenizerKind = TokenizerSPM }) }, ErrCorrupt, []string{`tokenizer_kind "spm" needs blob "tokenizer.model"`}},
		{"missing gguf vocab", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.TokenizerKind = TokenizerGGUF }) }, ErrCorrupt, []string{`tokenizer_kind "gguf" needs blob "gguf-vocab.bin"`}},
		{"config heads", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Config.NumKVHeads = 3 }) }, ErrCorrupt, []string{"config: num_kv_heads 3"}},
		{"config arch", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Config.Arch = "" }) }, ErrCorrupt, []string{"config: arch is empty"}},
		{"config vocab", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Config.VocabSize = 0 }) }, ErrCorrupt, []string{"config: vocab_size is 0"}},
		{"config eos", func(b []byte) []byte { return mutateHeader(t, b, func(h *Header) { h.Config.EOS = []int{32} }) }, ErrCorrupt, []string{"config: eos 32"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := c.mutate(bytes.Clone(img))
			f, err := ParseWithOptions("model.shrink", bad, OpenOptions{})
			if err == nil {
				f.Close()
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !errors.Is(err, c.class) || !strings.HasPrefix(msg, "model.shrink: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want class %v, one line starting with the file name", msg, c.class)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}

	t.Run("unknown fields are ignored", func(t *testing.T) {
		b := replaceJSON(t, img, `"version":1,`, `"version":1,"future_note":{"x":[1,2]},`)
		if _, err := Parse(b); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("open names the file and tensor", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "model.shrink")
		if err := os.WriteFile(path, flip(q.Offset)(bytes.Clone(img)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+`: tensor "blk.0.attn_v.weight" part w: checksum mismatch`) {
			t.Fatalf("Open = %v", err)
		}
		// SkipVerify opens it; Verify then finds the damage.
		f, err := OpenWithOptions(path, OpenOptions{SkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Verify(context.Background()); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "blk.0.attn_v.weight") {
			t.Errorf("Verify = %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := f.Verify(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Verify with a cancelled context = %v", err)
		}
	})

	t.Run("blob checks at read", func(t *testing.T) {
		// Damage a blob after a SkipVerify open: Blob must still refuse it.
		bad := flip(tokBlob.Offset)(bytes.Clone(img))
		f, err := ParseWithOptions("m", bad, OpenOptions{SkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Blob(BlobTokenizerJSON); !errors.Is(err, ErrChecksum) {
			t.Errorf("Blob = %v", err)
		}
		// A raw_length that disagrees with the frame is caught on decompression.
		bad = mutateHeader(t, img, func(h *Header) { h.Blobs[0].RawLength-- })
		f, err = Parse(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Blob(BlobTokenizerJSON); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Blob with short raw_length = %v", err)
		}
		bad = mutateHeader(t, img, func(h *Header) { h.Blobs[0].RawLength++ })
		f, _ = Parse(bad)
		if _, err := f.Blob(BlobTokenizerJSON); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Blob with long raw_length = %v", err)
		}
	})
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "absent.shrink"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "absent.shrink") {
		t.Errorf("Open = %v", err)
	}
}

func BenchmarkWriteTensor(b *testing.B) {
	data := make([]byte, 64<<20)
	tn := dense("x", quant.F32, 4096, int64(len(data)/4/4096))
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, err := Create(filepath.Join(dir, "b.shrink"))
		if err != nil {
			b.Fatal(err)
		}
		if err := w.WriteTensor(tn, data); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(Header{Config: testConfig()}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenVerify(b *testing.B) {
	data := make([]byte, 64<<20)
	tn := dense("x", quant.F32, 4096, int64(len(data)/4/4096))
	path := filepath.Join(b.TempDir(), "b.shrink")
	w, _ := Create(path)
	w.WriteTensor(tn, data)
	if err := w.Commit(Header{Config: testConfig()}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func TestPreallocateKeepsExactLength(t *testing.T) {
	for _, hint := range []int64{1, 100, 1 << 20} {
		path := filepath.Join(t.TempDir(), "p.shrink")
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Preallocate(hint); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 4*3*5)
		if err := w.WriteTensor(Tensor{Name: "x", Shape: []int64{3, 5}, Kind: KindDense,
			Parts: []Part{{Role: RoleW, Shape: []int64{3, 5}, Encoding: quant.F32}}}, data); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(Header{Config: ModelConfig{Arch: "llama", VocabSize: 3, HiddenSize: 5, IntermediateSize: 5, NumLayers: 1, NumHeads: 1, NumKVHeads: 1, HeadDim: 5, ContextLength: 8, NormEps: 1e-5, BOS: -1}}); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatalf("hint %d: %v", hint, err)
		}
		f.Close()
	}
}
