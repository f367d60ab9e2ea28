package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Writer builds a GGUF v3 file: metadata and tensor descriptors are declared
// first (so the header, which holds every tensor's offset, can be written
// before any data), then WriteTo streams the header and each tensor's bytes.
type Writer struct {
	kv      []KV
	kvIdx   map[string]int
	tensors []Tensor
	tIdx    map[string]int
	next    int64 // offset of the next tensor in the data section
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{kvIdx: map[string]int{}, tIdx: map[string]int{}}
}

// Set adds key, or replaces its value keeping its position. Setting
// general.alignment changes the alignment of tensors added afterwards, so
// set it first.
func (w *Writer) Set(key string, v Value) error {
	if key == KeyAlignment {
		if len(w.tensors) > 0 {
			return errors.New("gguf: general.alignment must be set before the first tensor")
		}
		a, err := v.AsUint()
		if err != nil || v.typ != TypeUint32 || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return fmt.Errorf("gguf: general.alignment must be a uint32 power of two, got %v", v)
		}
	}
	if v.typ == TypeArray && v.elem == TypeArray {
		return fmt.Errorf("gguf: %s: nested arrays are not supported", key)
	}
	if i, ok := w.kvIdx[key]; ok {
		w.kv[i].Value = v
		return nil
	}
	w.kvIdx[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: v})
	return nil
}

// KV returns the metadata declared so far, in order.
func (w *Writer) KV() []KV { return w.kv }

// Alignment is the tensor data alignment in effect.
func (w *Writer) Alignment() int64 {
	if i, ok := w.kvIdx[KeyAlignment]; ok {
		a, _ := w.kv[i].Value.AsUint()
		return int64(a)
	}
	return DefaultAlignment
}

// AddTensor declares the next tensor; dims are ggml's ne (contiguous
// dimension first). It returns the descriptor with its offset and size.
func (w *Writer) AddTensor(name string, typ TensorType, dims []int64) (Tensor, error) {
	if len(name) > MaxNameLen {
		return Tensor{}, fmt.Errorf("gguf: tensor name %q longer than %d bytes", name, MaxNameLen)
	}
	if _, dup := w.tIdx[name]; dup {
		return Tensor{}, fmt.Errorf("gguf: tensor %q declared twice", name)
	}
	if len(dims) < 1 || len(dims) > MaxDims {
		return Tensor{}, fmt.Errorf("gguf: tensor %q: %d dimensions, want 1 to %d", name, len(dims), MaxDims)
	}
	size, err := typ.RowBytes(dims[0])
	if err != nil {
		return Tensor{}, fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	for _, d := range dims[1:] {
		if d < 0 || (d != 0 && size > math.MaxInt64/d) {
			return Tensor{}, fmt.Errorf("gguf: tensor %q: bad dimensions %v", name, dims)
		}
		size *= d
	}
	t := Tensor{Name: name, Type: typ, Dims: append([]int64(nil), dims...), Offset: w.next, Size: size}
	w.next = alignUp(w.next+size, w.Alignment())
	w.tIdx[name] = len(w.tensors)
	w.tensors = append(w.tensors, t)
	return t, nil
}

// Tensors returns the descriptors declared so far.
func (w *Writer) Tensors() []Tensor { return w.tensors }

// TensorData writes the bytes of tensor i (exactly Tensors()[i].Size bytes)
// to dst.
type TensorData func(i int, t *Tensor, dst io.Writer) error

// WriteTo writes the file to out: header, metadata, descriptors, then each
// tensor's bytes from data, each padded to the alignment with zeros. It
// returns the number of bytes written.
func (w *Writer) WriteTo(out io.Writer, data TensorData) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(out, 1<<20)}
	var b [8]byte
	u32 := func(v uint32) { binary.LittleEndian.PutUint32(b[:4], v); cw.Write(b[:4]) }
	u64 := func(v uint64) { binary.LittleEndian.PutUint64(b[:8], v); cw.Write(b[:8]) }
	str := func(s string) { u64(uint64(len(s))); io.WriteString(cw, s) }

	u32(Magic)
	u32(3)
	u64(uint64(len(w.tensors)))
	u64(uint64(len(w.kv)))
	for _, kv := range w.kv {
		str(kv.Key)
		u32(uint32(kv.Value.typ))
		if err := writeValue(cw, kv.Value, u32, u64, str); err != nil {
			return cw.n, fmt.Errorf("gguf: metadata key %q: %w", kv.Key, err)
		}
	}
	for _, t := range w.tensors {
		str(t.Name)
		u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			u64(uint64(d))
		}
		u32(uint32(t.Type))
		u64(uint64(t.Offset))
	}
	align := w.Alignment()
	cw.pad(align)
	if cw.err != nil {
		return cw.n, cw.err
	}
	base := cw.n
	for i := range w.tensors {
		t := &w.tensors[i]
		if cw.n-base != t.Offset {
			return cw.n, fmt.Errorf("gguf: tensor %q at data offset %d, declared %d", t.Name, cw.n-base, t.Offset)
		}
		start := cw.n
		if err := data(i, t, cw); err != nil {
			return cw.n, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		if cw.err != nil {
			return cw.n, cw.err
		}
		if got := cw.n - start; got != t.Size {
			return cw.n, fmt.Errorf("gguf: tensor %q: wrote %d bytes, declared %d", t.Name, got, t.Size)
		}
		// Pad after the last tensor too: llama.cpp's gguf reader reads the
		// data section as the sum of padded sizes.
		cw.pad(align)
	}
	if cw.err != nil {
		return cw.n, cw.err
	}
	return cw.n, cw.w.(*bufio.Writer).Flush()
}

func writeValue(cw *countWriter, v Value, u32 func(uint32), u64 func(uint64), str func(string)) error {
	var b [8]byte
	switch v.typ {
	case TypeString:
		str(v.str)
		return nil
	case TypeArray:
	default:
		n := v.typ.size()
		if n == 0 {
			return fmt.Errorf("unknown value type %d", v.typ)
		}
		binary.LittleEndian.PutUint64(b[:], v.bits)
		cw.Write(b[:n])
		return nil
	}
	u32(uint32(v.elem))
	u64(uint64(v.n))
	if v.src != nil && v.mem == nil {
		// An array read from another file: copy its encoded bytes.
		_, err := io.Copy(cw, io.NewSectionReader(v.src.r, v.off, v.nbytes))
		return err
	}
	switch m := v.mem.(type) {
	case []string:
		for _, s := range m {
			str(s)
		}
	case []float32:
		for _, x := range m {
			u32(math.Float32bits(x))
		}
	case []float64:
		for _, x := range m {
			u64(math.Float64bits(x))
		}
	case []int64:
		n := v.elem.size()
		for _, x := range m {
			binary.LittleEndian.PutUint64(b[:], uint64(x))
			cw.Write(b[:n])
		}
	default:
		if v.n != 0 {
			return fmt.Errorf("array of %s has no elements to write", v.elem)
		}
	}
	return nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

var zeros [4096]byte

func (c *countWriter) pad(align int64) {
	for p := alignUp(c.n, align) - c.n; p > 0; {
		k := min(p, int64(len(zeros)))
		c.Write(zeros[:k])
		p -= k
	}
}
