package gguf

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestWriteReadRoundTrip(t *testing.T) {
	for _, align := range []uint32{32, 64, 1} {
		w := sampleWriter(t, align)
		b := encode(t, w)
		f, err := parseBytes(b)
		if err != nil {
			t.Fatalf("align %d: %v", align, err)
		}
		if f.Version != 3 || f.Alignment != int64(align) || f.DataOffset%int64(align) != 0 {
			t.Fatalf("align %d: version %d alignment %d data offset %d", align, f.Version, f.Alignment, f.DataOffset)
		}
		if len(f.KV) != len(w.KV()) {
			t.Fatalf("%d keys, wrote %d", len(f.KV), len(w.KV()))
		}
		checks := []struct {
			key  string
			get  func(string) (any, error)
			want any
		}{
			{"general.architecture", func(k string) (any, error) { return f.String(k) }, "llama"},
			{"u8", func(k string) (any, error) { return f.Uint(k) }, uint64(200)},
			{"i8", func(k string) (any, error) { return f.Int(k) }, int64(-5)},
			{"u16", func(k string) (any, error) { return f.Uint(k) }, uint64(65000)},
			{"i16", func(k string) (any, error) { return f.Int(k) }, int64(-300)},
			{"u32", func(k string) (any, error) { return f.Uint(k) }, uint64(4000000000)},
			{"i32", func(k string) (any, error) { return f.Int(k) }, int64(-7)},
			{"u64", func(k string) (any, error) { return f.Uint(k) }, uint64(1 << 40)},
			{"i64", func(k string) (any, error) { return f.Int(k) }, int64(-1 << 40)},
			{"f32", func(k string) (any, error) { return f.Float(k) }, float64(float32(1e-5))},
			{"f64", func(k string) (any, error) { return f.Float(k) }, 10000.5},
			{"yes", func(k string) (any, error) { return f.Bool(k) }, true},
		}
		for _, c := range checks {
			got, err := c.get(c.key)
			if err != nil || got != c.want {
				t.Errorf("%s = %v (%v), want %v", c.key, got, err, c.want)
			}
		}
		if s, err := f.Strings("tokens"); err != nil || !slices.Equal(s, []string{"<unk>", "<s>", "", "▁hello"}) {
			t.Errorf("tokens = %q, %v", s, err)
		}
		if s, err := f.Floats("scores"); err != nil || !slices.Equal(s, []float32{0, -1.5, 2, 3}) {
			t.Errorf("scores = %v, %v", s, err)
		}
		if s, err := f.Ints("types"); err != nil || !slices.Equal(s, []int64{2, 3, 1, -1}) {
			t.Errorf("types = %v, %v", s, err)
		}
		if s, err := f.Ints("bytes"); err != nil || !slices.Equal(s, []int64{1, 2, 255}) {
			t.Errorf("bytes = %v, %v", s, err)
		}
		for i, wt := range w.Tensors() {
			ft, ok := f.Tensor(wt.Name)
			if !ok || ft.Type != wt.Type || !slices.Equal(ft.Dims, wt.Dims) || ft.Offset != wt.Offset || ft.Size != wt.Size {
				t.Fatalf("tensor %q: read %+v, wrote %+v", wt.Name, ft, wt)
			}
			got, err := io.ReadAll(f.Data(ft))
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			fillData(i, &wt, &want)
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("tensor %q data differs", wt.Name)
			}
		}
		// Rewriting what was read (lazy arrays copied as bytes) gives the
		// same file.
		w2 := NewWriter()
		for _, kv := range f.KV {
			if err := w2.Set(kv.Key, kv.Value); err != nil {
				t.Fatal(err)
			}
		}
		for _, ft := range f.Tensors {
			if _, err := w2.AddTensor(ft.Name, ft.Type, ft.Dims); err != nil {
				t.Fatal(err)
			}
		}
		var again bytes.Buffer
		if _, err := w2.WriteTo(&again, func(i int, t *Tensor, dst io.Writer) error {
			_, err := io.Copy(dst, f.Data(&f.Tensors[i]))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("align %d: rewritten file differs", align)
		}
	}
}

func TestGetterErrors(t *testing.T) {
	f, err := parseBytes(encode(t, sampleWriter(t, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.String("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"string as uint", func() error { _, err := f.Uint("general.architecture"); return err }()},
		{"negative as uint", func() error { _, err := f.Uint("i8"); return err }()},
		{"uint as float", func() error { _, err := f.Float("u32"); return err }()},
		{"scalar as strings", func() error { _, err := f.Strings("u32"); return err }()},
		{"floats as ints", func() error { _, err := f.Ints("scores"); return err }()},
		{"ints as floats", func() error { _, err := f.Floats("types"); return err }()},
		{"strings as string", func() error { _, err := f.String("tokens"); return err }()},
	} {
		if c.err == nil || errors.Is(c.err, ErrNotFound) {
			t.Errorf("%s: err = %v, want a type error", c.name, c.err)
		}
	}
}

// TestScalarArraysEveryElemType writes an array of each integer and float
// element type with its extremes and reads it back from the encoded file.
func TestScalarArraysEveryElemType(t *testing.T) {
	for _, tc := range []struct {
		elem ValueType
		vals []int64
	}{
		{TypeUint8, []int64{0, 1, 255}},
		{TypeInt8, []int64{-128, -1, 127}},
		{TypeUint16, []int64{0, 258, 65535}},
		{TypeInt16, []int64{-32768, -1, 32767}},
		{TypeUint32, []int64{0, 1 << 20, 1<<32 - 1}},
		{TypeInt32, []int64{-1 << 31, -1, 1<<31 - 1}},
		{TypeUint64, []int64{0, 1 << 40, 1<<63 - 1}},
		{TypeInt64, []int64{-1 << 63, -1, 1<<63 - 1}},
	} {
		w := NewWriter()
		if err := w.Set("a", IntsValue(tc.elem, tc.vals)); err != nil {
			t.Fatal(err)
		}
		f, err := parseBytes(encode(t, w))
		if err != nil {
			t.Fatalf("%v: %v", tc.elem, err)
		}
		if got, err := f.Ints("a"); err != nil || !slices.Equal(got, tc.vals) {
			t.Errorf("%v: read %v (%v), wrote %v", tc.elem, got, err, tc.vals)
		}
	}
	// Float arrays of either width read back as float32 (float64 rounded).
	for _, v := range []Value{
		Float32sValue([]float32{-1.5, 0x1p-149, 3e38}),
		{typ: TypeArray, elem: TypeFloat64, n: 3, mem: []float64{-1.5, 0x1p-149, 1 + 0x1p-30}},
	} {
		w := NewWriter()
		if err := w.Set("f", v); err != nil {
			t.Fatal(err)
		}
		f, err := parseBytes(encode(t, w))
		if err != nil {
			t.Fatal(err)
		}
		want := []float32{-1.5, 0x1p-149, 3e38}
		if v.elem == TypeFloat64 {
			want[2] = 1
		}
		if got, err := f.Floats("f"); err != nil || !slices.Equal(got, want) {
			t.Errorf("array of %v: read %v (%v), want %v", v.elem, got, err, want)
		}
	}
	// A uint64 element above MaxInt64 is refused, naming the element.
	w := NewWriter()
	if err := w.Set("a", IntsValue(TypeUint64, []int64{5, -1})); err != nil {
		t.Fatal(err)
	}
	f, err := parseBytes(encode(t, w))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Ints("a"); err == nil || !strings.Contains(err.Error(), "element 1 is 18446744073709551615, too large") {
		t.Errorf("uint64 2^64-1 read as %v, %v", got, err)
	}
}
