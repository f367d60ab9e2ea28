package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// F32View returns the float32 values stored little-endian in b. On
// little-endian hosts with b 4-byte aligned (always true for a slice of a
// page-aligned mmap at an offset the format aligns) it aliases b without
// copying, so the result must be treated as read-only; otherwise it returns
// a decoded copy. len(b) must be a multiple of 4; anything else is a caller
// bug (the format reader validates sizes) and panics.
func F32View(b []byte) []float32 { return view(b, "F32View", decodeF32Portable) }

// U16View returns the uint16 values (f16 or bf16 bit patterns, or q8
// scales) stored little-endian in b, aliasing b when the host is
// little-endian and b is 2-byte aligned and copying otherwise, like F32View.
// len(b) must be even.
func U16View(b []byte) []uint16 { return view(b, "U16View", decodeU16sPortable) }

// view is F32View and U16View: b aliased as []T where alias allows, else
// decoded by decode into a copy; name is the caller's, for the panic.
func view[T float32 | uint16](b []byte, name string, decode func([]T, []byte)) []T {
	size := int(unsafe.Sizeof(T(0)))
	if len(b)%size != 0 {
		panic(fmt.Sprintf("quant.%s: %d bytes is not a whole number of %T", name, len(b), T(0)))
	}
	if v, ok := alias[T](b); ok {
		return v
	}
	out := make([]T, len(b)/size)
	decode(out, b)
	return out
}

// Q8Planes splits an encoded q8 tensor of shape [rows, cols] and group size
// group into its quants (rows·cols, row-major, padding excluded) and its
// float16 scales (rows·ceil(cols/group), row r's group g at r·ngroups+g).
// The quants always alias b; the scales alias it as U16View does. It fails
// when b is not exactly the size the shape calls for.
func Q8Planes(b []byte, rows, cols, group int) (quants []int8, scales []uint16, err error) {
	e := Q8Group(group)
	size, err := e.Size(rows, cols)
	if err != nil {
		return nil, nil, fmt.Errorf("q8 planes of [%d, %d]: %w", rows, cols, err)
	}
	if int64(len(b)) != size {
		return nil, nil, fmt.Errorf("q8 planes of [%d, %d] group %d: have %d bytes, want %d", rows, cols, group, len(b), size)
	}
	n := rows * cols
	qp := int(QuantsPlaneSize(rows, cols))
	if n > 0 {
		quants = unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), n)
	} else {
		quants = []int8{}
	}
	return quants, U16View(b[qp:]), nil
}

// alias reinterprets b as []T when that gives the little-endian values: the
// host is little-endian and b is aligned to T (a misaligned unsafe
// conversion is invalid Go even where the CPU would tolerate it).
func alias[T float32 | uint16](b []byte) ([]T, bool) {
	if len(b) == 0 {
		return []T{}, true
	}
	size := unsafe.Sizeof(T(0))
	if !HostLittleEndian || uintptr(unsafe.Pointer(&b[0]))%size != 0 {
		return nil, false
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), uintptr(len(b))/size), true
}

// f32Bytes is the memory of f as bytes; only meaningful as the little-endian
// layout when HostLittleEndian.
func f32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

func decodeF32Portable(dst []float32, b []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

func decodeU16sPortable(dst []uint16, b []byte) {
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
}
