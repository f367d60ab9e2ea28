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
func F32View(b []byte) []float32 {
	if len(b)%4 != 0 {
		panic(fmt.Sprintf("quant.F32View: %d bytes is not a whole number of float32", len(b)))
	}
	if v, ok := aliasF32(b); ok {
		return v
	}
	out := make([]float32, len(b)/4)
	decodeF32Portable(out, b)
	return out
}

// U16View returns the uint16 values (f16 or bf16 bit patterns, or q8
// scales) stored little-endian in b, aliasing b when the host is
// little-endian and b is 2-byte aligned and copying otherwise, like F32View.
// len(b) must be even.
func U16View(b []byte) []uint16 {
	if len(b)%2 != 0 {
		panic(fmt.Sprintf("quant.U16View: %d bytes is not a whole number of uint16", len(b)))
	}
	if v, ok := aliasU16(b); ok {
		return v
	}
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
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

// aliasF32 reinterprets b as []float32 when that gives the little-endian
// values: the host is little-endian and b is suitably aligned (a misaligned
// unsafe conversion is invalid Go even where the CPU would tolerate it).
func aliasF32(b []byte) ([]float32, bool) {
	if len(b) == 0 {
		return []float32{}, true
	}
	if !HostLittleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}

// aliasU16 is aliasF32 for 2-byte values.
func aliasU16(b []byte) ([]uint16, bool) {
	if len(b) == 0 {
		return []uint16{}, true
	}
	if !HostLittleEndian || uintptr(unsafe.Pointer(&b[0]))%2 != 0 {
		return nil, false
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2), true
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
