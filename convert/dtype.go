package convert

import "github.com/shrink-llm/shrink/quant"

// DType is a checkpoint element type, spelled as safetensors does. Every
// reader reports its tensors in these terms (llama2.c files are F32).
type DType string

// Element types. Load decodes the float ones (F32, F16, BF16); the others
// are known only so that their sizes can be checked.
const (
	DTypeF64    DType = "F64"
	DTypeF32    DType = "F32"
	DTypeF16    DType = "F16"
	DTypeBF16   DType = "BF16"
	DTypeI64    DType = "I64"
	DTypeU64    DType = "U64"
	DTypeI32    DType = "I32"
	DTypeU32    DType = "U32"
	DTypeI16    DType = "I16"
	DTypeU16    DType = "U16"
	DTypeI8     DType = "I8"
	DTypeU8     DType = "U8"
	DTypeBool   DType = "BOOL"
	DTypeF8E4M3 DType = "F8_E4M3"
	DTypeF8E5M2 DType = "F8_E5M2"
)

// dtypeSizes is the one table of element sizes in bytes.
var dtypeSizes = map[DType]int64{
	DTypeF64: 8, DTypeI64: 8, DTypeU64: 8,
	DTypeF32: 4, DTypeI32: 4, DTypeU32: 4,
	DTypeF16: 2, DTypeBF16: 2, DTypeI16: 2, DTypeU16: 2,
	DTypeI8: 1, DTypeU8: 1, DTypeBool: 1, DTypeF8E4M3: 1, DTypeF8E5M2: 1,
}

// Size is the element size in bytes, 0 for an unknown dtype.
func (d DType) Size() int64 { return dtypeSizes[d] }

// Float reports whether Load can decode d.
func (d DType) Float() bool { _, ok := d.Encoding(); return ok }

// Encoding is the encoding that holds d's values exactly, byte for byte;
// ok is false unless d is F32, F16 or BF16.
func (d DType) Encoding() (e quant.Encoding, ok bool) {
	switch d {
	case DTypeF32:
		return quant.F32, true
	case DTypeF16:
		return quant.F16, true
	case DTypeBF16:
		return quant.BF16, true
	}
	return quant.Encoding{}, false
}
