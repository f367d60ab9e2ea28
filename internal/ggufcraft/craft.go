package ggufcraft

import (
	"encoding/binary"
	"strings"
)

// Case is one crafted file and a fragment its error message must contain.
type Case struct {
	Name    string
	Data    []byte
	WantErr string
}

// builder appends little-endian GGUF fields.
type builder struct{ b []byte }

func (w *builder) u8(v byte) *builder    { w.b = append(w.b, v); return w }
func (w *builder) u32(v uint32) *builder { w.b = binary.LittleEndian.AppendUint32(w.b, v); return w }
func (w *builder) u64(v uint64) *builder { w.b = binary.LittleEndian.AppendUint64(w.b, v); return w }
func (w *builder) str(s string) *builder { w.u64(uint64(len(s))); w.b = append(w.b, s...); return w }
func (w *builder) header(version uint32, nt, nkv uint64) *builder {
	w.b = append(w.b, "GGUF"...)
	return w.u32(version).u64(nt).u64(nkv)
}

// kvString appends a string-valued key (type 8).
func (w *builder) kvString(k, v string) *builder { return w.str(k).u32(8).str(v) }

// kvU32 appends a uint32-valued key (type 4).
func (w *builder) kvU32(k string, v uint32) *builder { return w.str(k).u32(4).u32(v) }

// tensor appends a tensor descriptor.
func (w *builder) tensor(name string, typ uint32, off uint64, dims ...uint64) *builder {
	w.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		w.u64(d)
	}
	return w.u32(typ).u64(off)
}

// data pads to 32 and appends n bytes of tensor data.
func (w *builder) data(n int) []byte {
	for len(w.b)%32 != 0 {
		w.b = append(w.b, 0)
	}
	return append(w.b, make([]byte, n)...)
}

func newb() *builder { return &builder{} }

const (
	f32  = 0
	q8_0 = 8
)

// Valid is a small well-formed file (one key, two F32 tensors) the crafted
// cases are variations of.
func Valid() []byte {
	return newb().header(3, 2, 1).kvString("general.architecture", "llama").
		tensor("a", f32, 0, 8).tensor("b", f32, 32, 8).data(64)
}

// Cases returns the crafted files. Each must be refused with a one-line
// error containing WantErr.
func Cases() []Case {
	return []Case{
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), "not a GGUF file"},
		{"truncated header", []byte("GGUF\x03\x00\x00\x00\x01"), "tensor count"},
		{"version 1", newb().header(1, 0, 0).b, "version 1"},
		{"unknown version", newb().header(7, 0, 0).b, "unsupported GGUF version 7"},
		{"big-endian", append([]byte("GGUF"), 0, 0, 0, 3), "big-endian"},
		{"huge tensor count", newb().header(3, 1<<60, 0).b, "tensor count"},
		{"huge metadata count", newb().header(3, 0, 1<<62).b, "metadata count"},
		{"key length past the end", newb().header(3, 0, 1).u64(1 << 40).u64(0).u64(0).b, "past the end"},
		{"string value past the end", newb().header(3, 0, 1).str("general.name").u32(8).u64(1 << 50).b, "past the end"},
		{"huge array count", newb().header(3, 0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(1 << 55).b, "array length"},
		{"array string past the end", newb().header(3, 0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(2).str("a").u64(1 << 33).b, "string element 1"},
		{"unknown value type", newb().header(3, 0, 1).str("x").u32(13).u32(0).b, "unknown value type 13"},
		{"nested array", newb().header(3, 0, 1).str("x").u32(9).u32(9).u64(1).b, "nested arrays"},
		{"bool not 0 or 1", newb().header(3, 0, 1).str("x").u32(7).u8(2).b, "neither 0 nor 1"},
		{"duplicate key", newb().header(3, 0, 2).kvString("a", "x").kvString("a", "y").b, "appears twice"},
		{"alignment not a power of two", newb().header(3, 0, 1).kvU32("general.alignment", 48).b, "power of two"},
		{"alignment of the wrong type", newb().header(3, 0, 1).kvString("general.alignment", "32").b, "want uint32"},
		{"unknown tensor type", newb().header(3, 1, 0).tensor("w", 99, 0, 8).data(32), "unknown tensor type 99"},
		{"too many dimensions", newb().header(3, 1, 0).tensor("w", f32, 0, 1, 1, 1, 1, 1).data(32), "5 dimensions"},
		{"dimensions overflow", newb().header(3, 1, 0).tensor("w", f32, 0, 1<<40, 1<<40).data(32), "overflow"},
		{"row not a multiple of the block", newb().header(3, 1, 0).tensor("w", q8_0, 0, 33).data(64), "block size"},
		{"name too long", newb().header(3, 1, 0).tensor(strings.Repeat("n", 64), f32, 0, 8).data(32), "longer than 63"},
		{"duplicate tensor", newb().header(3, 2, 0).tensor("w", f32, 0, 8).tensor("w", f32, 32, 8).data(64), "appears twice"},
		{"misaligned offset", newb().header(3, 2, 0).tensor("a", f32, 0, 2).tensor("b", f32, 8, 2).data(64), "not a multiple of the alignment"},
		{"overlapping tensors", newb().header(3, 2, 0).tensor("a", f32, 0, 16).tensor("b", f32, 32, 16).data(128), "overlaps"},
		{"tensor data past the end", newb().header(3, 1, 0).tensor("w", f32, 0, 1024).data(64), "past the end"},
		{"tensor offset past the end", newb().header(3, 1, 0).tensor("w", f32, 1<<40, 8).data(64), "past the end"},
		{"descriptor truncated", newb().header(3, 1, 0).str("blk.0.attn_q.weight").u32(2).u64(8).b, "dimension 1"},
	}
}
