package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/shrink-llm/shrink/internal/safeio"
)

// maxAlignment bounds general.alignment: llama.cpp writes 32, nothing
// plausible needs more than a page, and a huge value would make a rewrite
// of a tiny file pad it to gigabytes.
const maxAlignment = 1 << 16

// File is an opened GGUF file: metadata and tensor descriptors, parsed and
// validated; tensor data stays in the file.
type File struct {
	Name       string // path or name used in error messages
	Version    uint32
	Alignment  int64
	KV         []KV     // metadata in file order
	Tensors    []Tensor // descriptors in file order
	DataOffset int64    // absolute offset of the tensor data section
	Size       int64    // file size in bytes

	r      io.ReaderAt
	closer io.Closer
	kvIdx  map[string]int
	tIdx   map[string]int
}

// Tensor describes one tensor. Dims is ggml's ne: Dims[0] is the contiguous
// (row) dimension, so a matrix of rows×cols has Dims = [cols, rows].
type Tensor struct {
	Name   string
	Type   TensorType
	Dims   []int64
	Offset int64 // relative to File.DataOffset, a multiple of the alignment
	Size   int64 // bytes
}

// Elements is the number of elements.
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Shape is Dims reversed: the outermost dimension first, as Hugging Face and
// safetensors write shapes ([rows, cols] for a matrix).
func (t *Tensor) Shape() []int64 {
	s := make([]int64, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = d
	}
	return s
}

// Open opens and validates the GGUF file at path. Close releases it.
func Open(path string) (*File, error) {
	fh, size, err := safeio.OpenSized(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(fh, size, path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Close closes the underlying file when the File came from Open.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// IsGGUF reports whether the first bytes of a file are the GGUF magic.
func IsGGUF(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head) == Magic
}

// IsFile reports whether path names a regular file starting with the GGUF
// magic; it reads four bytes.
func IsFile(path string) bool {
	f, err := safeio.Open(path) // a pipe or device is not one, and must not block
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	return IsGGUF(head[:n])
}

// cursor reads the sequential part of a file (header, metadata, tensor
// descriptors) and refuses to read or skip past size.
type cursor struct {
	br      *bufio.Reader
	pos     int64
	size    int64
	scratch [8]byte
}

var errTruncated = errors.New("truncated")

func (c *cursor) need(n int64) error {
	if n < 0 || n > c.size-c.pos {
		return fmt.Errorf("%d bytes at offset %d run past the end of the file (%d bytes)", n, c.pos, c.size)
	}
	return nil
}

func (c *cursor) fill(b []byte) error {
	if err := c.need(int64(len(b))); err != nil {
		return err
	}
	if _, err := io.ReadFull(c.br, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errTruncated
		}
		return err
	}
	c.pos += int64(len(b))
	return nil
}

func (c *cursor) skip(n int64) error {
	if err := c.need(n); err != nil {
		return err
	}
	m, err := c.br.Discard(int(n))
	c.pos += int64(m)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errTruncated
		}
		return err
	}
	return nil
}

func (c *cursor) u32() (uint32, error) {
	if err := c.fill(c.scratch[:4]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(c.scratch[:4]), nil
}

func (c *cursor) u64() (uint64, error) {
	if err := c.fill(c.scratch[:8]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(c.scratch[:8]), nil
}

// count reads a uint64 count of items, each at least minSize bytes, and
// checks that many items can fit in what is left of the file.
func (c *cursor) count(minSize int64) (int64, error) {
	n, err := c.u64()
	if err != nil {
		return 0, err
	}
	if n > uint64(c.size-c.pos)/uint64(minSize) {
		return 0, fmt.Errorf("count %d cannot fit in the %d bytes left", n, c.size-c.pos)
	}
	return int64(n), nil
}

func (c *cursor) str() (string, error) {
	l, err := c.u64()
	if err != nil {
		return "", err
	}
	if l > uint64(c.size-c.pos) {
		return "", fmt.Errorf("string length %d at offset %d past the end of the file (%d bytes)", l, c.pos-8, c.size)
	}
	b := make([]byte, l)
	if err := c.fill(b); err != nil {
		return "", err
	}
	return string(b), nil
}

// Parse reads and validates a GGUF file of size bytes from r; name is used
// in error messages. The File keeps r for tensor data and lazy arrays.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	f := &File{Name: name, Size: size, r: r}
	if err := f.parse(); err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", name, err)
	}
	return f, nil
}

func (f *File) parse() error {
	c := &cursor{br: bufio.NewReaderSize(io.NewSectionReader(f.r, 0, f.Size), 64<<10), size: f.Size}
	if f.Size < 4 {
		return errors.New("not a GGUF file (shorter than its magic)")
	}
	magic, err := c.u32()
	if err != nil {
		return fmt.Errorf("magic: %w", err)
	}
	if magic != Magic {
		return fmt.Errorf("not a GGUF file (magic %#08x)", magic)
	}
	ver, err := c.u32()
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	switch {
	case ver == 2 || ver == 3:
	case ver == 1:
		return errors.New("GGUF version 1 is not supported (only 2 and 3)")
	case ver&0xffff == 0 && ver != 0:
		return fmt.Errorf("big-endian GGUF (version %d byte-swapped) is not supported", ver>>24)
	default:
		return fmt.Errorf("unsupported GGUF version %d (only 2 and 3)", ver)
	}
	f.Version = ver
	// Each tensor descriptor takes at least 8 (name length) + 4 (n_dims) +
	// 8 (one dim) + 4 (type) + 8 (offset) bytes; each key/value at least
	// 8 (key length) + 4 (type) + 1 (smallest value).
	nt, err := c.count(32)
	if err != nil {
		return fmt.Errorf("tensor count: %w", err)
	}
	nkv, err := c.count(13)
	if err != nil {
		return fmt.Errorf("metadata count: %w", err)
	}

	f.KV = make([]KV, 0, nkv)
	f.kvIdx = make(map[string]int, nkv)
	for i := int64(0); i < nkv; i++ {
		key, err := c.str()
		if err != nil {
			return fmt.Errorf("metadata key %d: %w", i, err)
		}
		if _, dup := f.kvIdx[key]; dup {
			return fmt.Errorf("metadata key %q appears twice", key)
		}
		v, err := f.readValue(c)
		if err != nil {
			return fmt.Errorf("metadata key %q: %w", key, err)
		}
		f.kvIdx[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	f.Alignment = DefaultAlignment
	if v, ok := f.Lookup(KeyAlignment); ok {
		if v.Type() != TypeUint32 {
			return fmt.Errorf("%s is %s, want uint32", KeyAlignment, v.typeName())
		}
		a, _ := v.AsUint()
		if a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return fmt.Errorf("%s is %d, not a power of two up to 65536", KeyAlignment, a)
		}
		f.Alignment = int64(a)
	}

	f.Tensors = make([]Tensor, 0, nt)
	f.tIdx = make(map[string]int, nt)
	for i := int64(0); i < nt; i++ {
		t, err := readTensorInfo(c)
		if err != nil {
			if t.Name != "" {
				return fmt.Errorf("tensor %d %q: %w", i, t.Name, err)
			}
			return fmt.Errorf("tensor %d: %w", i, err)
		}
		if _, dup := f.tIdx[t.Name]; dup {
			return fmt.Errorf("tensor %q appears twice", t.Name)
		}
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		f.tIdx[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	f.DataOffset = alignUp(c.pos, f.Alignment)
	var avail int64
	if f.DataOffset <= f.Size {
		avail = f.Size - f.DataOffset
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset > avail || t.Size > avail-t.Offset {
			return fmt.Errorf("tensor %q: data [%d, +%d) past the end of the file (tensor data section holds %d bytes from offset %d)",
				t.Name, t.Offset, t.Size, avail, f.DataOffset)
		}
	}
	return f.checkOverlap()
}

// checkOverlap refuses tensors whose data ranges share a byte.
func (f *File) checkOverlap() error {
	order := make([]int, 0, len(f.Tensors))
	for i := range f.Tensors {
		if f.Tensors[i].Size > 0 {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		p, q := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if p.Offset+p.Size > q.Offset {
			return fmt.Errorf("tensor %q: data [%d, +%d) overlaps tensor %q at [%d, +%d)", q.Name, q.Offset, q.Size, p.Name, p.Offset, p.Size)
		}
	}
	return nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

func (f *File) readValue(c *cursor) (Value, error) {
	tt, err := c.u32()
	if err != nil {
		return Value{}, fmt.Errorf("type: %w", err)
	}
	t := ValueType(tt)
	if !t.valid() {
		return Value{}, fmt.Errorf("unknown value type %d", tt)
	}
	switch t {
	case TypeString:
		s, err := c.str()
		if err != nil {
			return Value{}, err
		}
		return Value{typ: t, str: s}, nil
	case TypeArray:
		return f.readArray(c)
	}
	n := t.size()
	if err := c.fill(c.scratch[:n]); err != nil {
		return Value{}, err
	}
	v := leBits(c.scratch[:n])
	if t == TypeBool && v > 1 {
		return Value{}, fmt.Errorf("bool value %d is neither 0 nor 1", v)
	}
	return Value{typ: t, bits: v}, nil
}

// readArray checks an array's extent and skips it; its elements are decoded
// on demand by the Value getters.
func (f *File) readArray(c *cursor) (Value, error) {
	et, err := c.u32()
	if err != nil {
		return Value{}, fmt.Errorf("array type: %w", err)
	}
	elem := ValueType(et)
	switch {
	case elem == TypeArray:
		return Value{}, errors.New("nested arrays are not supported")
	case !elem.valid():
		return Value{}, fmt.Errorf("array of unknown type %d", et)
	}
	min := elem.size()
	if elem == TypeString {
		min = 8
	}
	n, err := c.count(min)
	if err != nil {
		return Value{}, fmt.Errorf("array length: %w", err)
	}
	v := Value{typ: TypeArray, elem: elem, n: n, src: f, off: c.pos}
	if elem != TypeString {
		v.nbytes = n * min
		if err := c.skip(v.nbytes); err != nil {
			return Value{}, err
		}
		if elem == TypeBool {
			// Bools are checked now so that nothing downstream sees 2..255.
			// (Rare and small: only a few flags are ever arrays.)
			b := make([]byte, n)
			if _, err := f.r.ReadAt(b, v.off); err != nil {
				return Value{}, err
			}
			for i, x := range b {
				if x > 1 {
					return Value{}, fmt.Errorf("bool element %d is %d", i, x)
				}
			}
		}
		return v, nil
	}
	for i := int64(0); i < n; i++ {
		l, err := c.u64()
		if err != nil {
			return Value{}, fmt.Errorf("string element %d: %w", i, err)
		}
		if l > uint64(c.size-c.pos) {
			return Value{}, fmt.Errorf("string element %d: length %d at offset %d past the end of the file (%d bytes)", i, l, c.pos-8, c.size)
		}
		if err := c.skip(int64(l)); err != nil {
			return Value{}, fmt.Errorf("string element %d: %w", i, err)
		}
	}
	v.nbytes = c.pos - v.off
	return v, nil
}

func readTensorInfo(c *cursor) (Tensor, error) {
	var t Tensor
	name, err := c.str()
	if err != nil {
		return t, fmt.Errorf("name: %w", err)
	}
	if len(name) > MaxNameLen {
		return t, fmt.Errorf("name of %d bytes is longer than %d", len(name), MaxNameLen)
	}
	t.Name = name
	nd, err := c.u32()
	if err != nil {
		return t, fmt.Errorf("dimension count: %w", err)
	}
	if nd < 1 || nd > MaxDims {
		return t, fmt.Errorf("%d dimensions, want 1 to %d", nd, MaxDims)
	}
	t.Dims = make([]int64, nd)
	elems := int64(1)
	for j := range t.Dims {
		d, err := c.u64()
		if err != nil {
			return t, fmt.Errorf("dimension %d: %w", j, err)
		}
		if d > math.MaxInt64 {
			return t, fmt.Errorf("dimension %d is %d, too large", j, d)
		}
		t.Dims[j] = int64(d)
		if d != 0 && elems > math.MaxInt64/int64(d) {
			return t, fmt.Errorf("dimensions %v overflow", t.Dims[:j+1])
		}
		elems *= int64(d)
	}
	typ, err := c.u32()
	if err != nil {
		return t, fmt.Errorf("type: %w", err)
	}
	t.Type = TensorType(typ)
	if !t.Type.Known() {
		return t, fmt.Errorf("unknown tensor type %d", typ)
	}
	rowBytes, err := t.Type.RowBytes(t.Dims[0])
	if err != nil {
		return t, fmt.Errorf("first dimension: %w", err)
	}
	t.Size = rowBytes
	for _, d := range t.Dims[1:] {
		if d != 0 && t.Size > math.MaxInt64/d {
			return t, fmt.Errorf("size of %v %s overflows", t.Dims, t.Type)
		}
		t.Size *= d
	}
	off, err := c.u64()
	if err != nil {
		return t, fmt.Errorf("offset: %w", err)
	}
	if off > math.MaxInt64 {
		return t, fmt.Errorf("offset %d too large", off)
	}
	t.Offset = int64(off)
	return t, nil
}

// Lookup returns the value of key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.kvIdx[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool { _, ok := f.kvIdx[key]; return ok }

func (f *File) get(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return Value{}, fmt.Errorf("gguf: %s: metadata key %q: %w", f.Name, key, ErrNotFound)
	}
	return v, nil
}

func (f *File) wrap(key string, err error) error {
	return fmt.Errorf("gguf: %s: metadata key %q %w", f.Name, key, err)
}

// typed returns key's value converted by as, with the key named in either
// error (missing key or wrong type).
func typed[T any](f *File, key string, as func(Value) (T, error)) (T, error) {
	var zero T
	v, err := f.get(key)
	if err != nil {
		return zero, err
	}
	x, err := as(v)
	if err != nil {
		return zero, f.wrap(key, err)
	}
	return x, nil
}

// String returns a string value.
func (f *File) String(key string) (string, error) { return typed(f, key, Value.AsString) }

// Uint returns a non-negative integer value of any integer type.
func (f *File) Uint(key string) (uint64, error) { return typed(f, key, Value.AsUint) }

// Int returns an integer value of any integer type that fits int64.
func (f *File) Int(key string) (int64, error) { return typed(f, key, Value.AsInt) }

// Float returns a float32 or float64 value.
func (f *File) Float(key string) (float64, error) { return typed(f, key, Value.AsFloat) }

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) { return typed(f, key, Value.AsBool) }

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, error) { return typed(f, key, Value.AsStrings) }

// Floats returns an array of float32 (float64 elements are rounded).
func (f *File) Floats(key string) ([]float32, error) { return typed(f, key, Value.AsFloat32s) }

// Ints returns an array of integers of any integer element type.
func (f *File) Ints(key string) ([]int64, error) { return typed(f, key, Value.AsInts) }

// Tensor returns the descriptor named name.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.tIdx[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Data returns a reader of the tensor's bytes.
func (f *File) Data(t *Tensor) *io.SectionReader {
	return io.NewSectionReader(f.r, f.DataOffset+t.Offset, t.Size)
}

// ReadTensor reads a tensor's bytes.
func (f *File) ReadTensor(t *Tensor) ([]byte, error) {
	b := make([]byte, t.Size)
	if _, err := f.r.ReadAt(b, f.DataOffset+t.Offset); err != nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: %w", f.Name, t.Name, err)
	}
	return b, nil
}
