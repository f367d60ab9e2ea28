package gguf

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
)

// smallSeed rebuilds a real GGUF file as a small seed of the same
// structure: every key with its type, arrays cut to their first 16
// elements, and the tensors of at most 4 KiB with their data (the norms).
// Multi-megabyte inputs would make the fuzzer crawl.
func smallSeed(b []byte) []byte {
	f, err := parseBytes(b)
	if err != nil {
		return nil
	}
	w := NewWriter()
	for _, kv := range f.KV {
		v := kv.Value
		if v.Type() == TypeArray && v.Len() > 16 {
			switch e := v.ElemType(); {
			case e == TypeString:
				s, _ := v.AsStrings()
				v = StringsValue(s[:16])
			case e == TypeFloat32:
				x, _ := v.AsFloat32s()
				v = Float32sValue(x[:16])
			case e.isInt() && e != TypeUint64:
				x, _ := v.AsInts()
				v = IntsValue(e, x[:16])
			default:
				continue
			}
		}
		if w.Set(kv.Key, v) != nil {
			return nil
		}
	}
	var keep []*Tensor
	for i := range f.Tensors {
		if t := &f.Tensors[i]; t.Size <= 4096 {
			if _, err := w.AddTensor(t.Name, t.Type, t.Dims); err != nil {
				return nil
			}
			keep = append(keep, t)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf, func(i int, _ *Tensor, dst io.Writer) error {
		_, err := io.Copy(dst, f.Data(keep[i]))
		return err
	}); err != nil {
		return nil
	}
	out := buf.Bytes()
	binary.LittleEndian.PutUint32(out[4:], f.Version)
	return out
}

func addSeeds(f *testing.F) {
	for _, align := range []uint32{32, 64, 8} {
		var buf bytes.Buffer
		if _, err := sampleWriter(f, align).WriteTo(&buf, fillData); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		// A version-2 copy (same layout).
		v2 := slices.Clone(buf.Bytes())
		binary.LittleEndian.PutUint32(v2[4:], 2)
		f.Add(v2)
	}
	f.Add(encode(f, NewWriter()))
	f.Add([]byte("GGUF"))
	// The shared GGUF files (models and vocabularies), shrunk to small seeds of the same structure.
	if root := testshared.Root(); root != "" {
		var paths []string
		for _, pat := range []string{"models/*/*.gguf", "models/*/*/*.gguf", "tokenizers/*/*.gguf"} {
			m, _ := filepath.Glob(filepath.Join(root, pat))
			paths = append(paths, m...)
		}
		sort.Strings(paths)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				if seed := smallSeed(b); seed != nil {
					f.Add(seed)
				}
			}
		}
	}
}

// FuzzGGUF parses arbitrary bytes. A refused input must give a one-line
// error; an accepted one must satisfy the reader's documented guarantees
// and survive a rewrite by the Writer unchanged.
func FuzzGGUF(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := parseBytes(b)
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "gguf: test.gguf: ") {
				t.Fatalf("error is not one line naming the file: %q", msg)
			}
			return
		}
		checkInvariants(t, file, int64(len(b)))
		checkRewrite(t, file)
	})
}

func checkInvariants(t *testing.T, f *File, size int64) {
	t.Helper()
	if f.Version != 2 && f.Version != 3 {
		t.Fatalf("accepted version %d", f.Version)
	}
	if f.Alignment <= 0 || f.Alignment&(f.Alignment-1) != 0 || f.DataOffset%f.Alignment != 0 {
		t.Fatalf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	var strBytes int64
	for _, kv := range f.KV {
		v := kv.Value
		if v.Type() != TypeArray {
			continue
		}
		if v.Len() < 0 || v.Len() > size {
			t.Fatalf("%s: array length %d in a %d-byte file", kv.Key, v.Len(), size)
		}
		var n int
		var err error
		switch e := v.ElemType(); {
		case e == TypeString:
			var s []string
			s, err = v.AsStrings()
			n = len(s)
			for _, x := range s {
				strBytes += int64(len(x))
			}
		case e == TypeFloat32 || e == TypeFloat64:
			var x []float32
			x, err = v.AsFloat32s()
			n = len(x)
		case e.isInt():
			var x []int64
			x, err = v.AsInts()
			n = len(x)
			if err != nil && e == TypeUint64 {
				continue // a value above MaxInt64 is a legitimate refusal
			}
		default:
			continue
		}
		if err != nil || int64(n) != v.Len() {
			t.Fatalf("%s: decoded %d of %d elements: %v", kv.Key, n, v.Len(), err)
		}
	}
	if strBytes > size {
		t.Fatalf("%d bytes of strings from a %d-byte file", strBytes, size)
	}
	type span struct{ off, end int64 }
	var spans []span
	names := map[string]bool{}
	for i := range f.Tensors {
		tn := &f.Tensors[i]
		if names[tn.Name] || len(tn.Name) > MaxNameLen {
			t.Fatalf("tensor name %q duplicate or too long", tn.Name)
		}
		names[tn.Name] = true
		if len(tn.Dims) < 1 || len(tn.Dims) > MaxDims || !tn.Type.Known() {
			t.Fatalf("tensor %q: dims %v type %v", tn.Name, tn.Dims, tn.Type)
		}
		want, err := tn.Type.RowBytes(tn.Dims[0])
		if err != nil {
			t.Fatalf("tensor %q: %v", tn.Name, err)
		}
		for _, d := range tn.Dims[1:] {
			want *= d
		}
		if tn.Size != want || tn.Offset%f.Alignment != 0 || tn.Offset < 0 || f.DataOffset+tn.Offset+tn.Size > size {
			t.Fatalf("tensor %q: offset %d size %d (want %d), data at %d, file %d", tn.Name, tn.Offset, tn.Size, want, f.DataOffset, size)
		}
		n, err := io.Copy(io.Discard, f.Data(tn))
		if err != nil || n != tn.Size {
			t.Fatalf("tensor %q: read %d of %d bytes: %v", tn.Name, n, tn.Size, err)
		}
		if tn.Size > 0 {
			spans = append(spans, span{tn.Offset, tn.Offset + tn.Size})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	for i := 1; i < len(spans); i++ {
		if spans[i].off < spans[i-1].end {
			t.Fatalf("accepted overlapping tensors %v", spans)
		}
	}
}

// checkRewrite writes what was read with the Writer and reads it back: the
// metadata and tensor descriptors (all but offsets, which the writer lays
// out densely) and the tensor bytes must come back equal.
func checkRewrite(t *testing.T, f *File) {
	t.Helper()
	w := NewWriter()
	for _, kv := range f.KV {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
	}
	for _, tn := range f.Tensors {
		if _, err := w.AddTensor(tn.Name, tn.Type, tn.Dims); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf, func(i int, _ *Tensor, dst io.Writer) error {
		_, err := io.Copy(dst, f.Data(&f.Tensors[i]))
		return err
	}); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	g, err := parseBytes(buf.Bytes())
	if err != nil {
		t.Fatalf("rewritten file refused: %v", err)
	}
	if len(g.KV) != len(f.KV) || len(g.Tensors) != len(f.Tensors) {
		t.Fatalf("rewrite: %d keys %d tensors, was %d and %d", len(g.KV), len(g.Tensors), len(f.KV), len(f.Tensors))
	}
	for i := range f.KV {
		a, b := f.KV[i], g.KV[i]
		if a.Key != b.Key || a.Value.Type() != b.Value.Type() || a.Value.ElemType() != b.Value.ElemType() || a.Value.Len() != b.Value.Len() || a.Value.String() != b.Value.String() {
			t.Fatalf("rewrite: key %d %q=%v became %q=%v", i, a.Key, a.Value, b.Key, b.Value)
		}
		if a.Value.Type() == TypeArray && a.Value.ElemType() == TypeString {
			x, _ := a.Value.AsStrings()
			y, _ := b.Value.AsStrings()
			if !slices.Equal(x, y) {
				t.Fatalf("rewrite: key %q strings differ", a.Key)
			}
		}
	}
	for i := range f.Tensors {
		a, b := &f.Tensors[i], &g.Tensors[i]
		if a.Name != b.Name || a.Type != b.Type || !slices.Equal(a.Dims, b.Dims) || a.Size != b.Size {
			t.Fatalf("rewrite: tensor %+v became %+v", a, b)
		}
		x, _ := io.ReadAll(f.Data(a))
		y, _ := io.ReadAll(g.Data(b))
		if !bytes.Equal(x, y) {
			t.Fatalf("rewrite: tensor %q bytes differ", a.Name)
		}
	}
}
