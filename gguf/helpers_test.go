package gguf

import (
	"bytes"
	"io"
	"testing"
)

// sampleWriter builds a small file exercising every value type and a few
// tensor types, with data bytes derived from the tensor index.
func sampleWriter(t testing.TB, align uint32) *Writer {
	t.Helper()
	w := NewWriter()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if align != DefaultAlignment {
		must(w.Set(KeyAlignment, Uint32Value(align)))
	}
	must(w.Set("general.architecture", StringValue("llama")))
	must(w.Set("u8", Uint8Value(200)))
	must(w.Set("i8", Int8Value(-5)))
	must(w.Set("u16", Uint16Value(65000)))
	must(w.Set("i16", Int16Value(-300)))
	must(w.Set("u32", Uint32Value(4000000000)))
	must(w.Set("i32", Int32Value(-7)))
	must(w.Set("u64", Uint64Value(1<<40)))
	must(w.Set("i64", Int64Value(-1<<40)))
	must(w.Set("f32", Float32Value(1e-5)))
	must(w.Set("f64", Float64Value(10000.5)))
	must(w.Set("yes", BoolValue(true)))
	must(w.Set("tokens", StringsValue([]string{"<unk>", "<s>", "", "▁hello"})))
	must(w.Set("scores", Float32sValue([]float32{0, -1.5, 2, 3})))
	must(w.Set("types", IntsValue(TypeInt32, []int64{2, 3, 1, -1})))
	must(w.Set("bytes", IntsValue(TypeUint8, []int64{1, 2, 255})))
	for _, tt := range []struct {
		name string
		typ  TensorType
		dims []int64
	}{
		{"a.weight", TypeF32, []int64{5, 3}},
		{"b.weight", TypeQ8_0, []int64{64, 2}},
		{"c", TypeF16, []int64{7}},
		{"d", TypeQ4_K, []int64{256, 1, 2}},
	} {
		_, err := w.AddTensor(tt.name, tt.typ, tt.dims)
		must(err)
	}
	return w
}

func fillData(i int, t *Tensor, dst io.Writer) error {
	b := make([]byte, t.Size)
	for k := range b {
		b[k] = byte(i*31 + k)
	}
	_, err := dst.Write(b)
	return err
}

func encode(t testing.TB, w *Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf, fillData)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func parseBytes(b []byte) (*File, error) {
	return Parse(bytes.NewReader(b), int64(len(b)), "test.gguf")
}
