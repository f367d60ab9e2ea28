package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrNotFound is wrapped by the metadata getters when the key is absent, so
// callers can tell an optional key from a malformed one.
var ErrNotFound = errors.New("key not found")

// KV is one metadata key/value pair, in file order.
type KV struct {
	Key   string
	Value Value
}

// Value is a metadata value: a scalar, a string, or an array of scalars or
// strings. Arrays read from a file stay in the file until one of the array
// getters decodes them; arrays built for writing hold their elements.
type Value struct {
	typ  ValueType
	bits uint64 // scalar payload: integer bits, bool, float bits
	str  string

	elem ValueType // array element type
	n    int64     // array length
	// lazy array: bytes [off, off+nbytes) of src
	src    *File
	off    int64
	nbytes int64
	// in-memory array: []string, []float32, []float64, []int64 (any integer
	// element type), []bool
	mem any
}

// Scalar and array constructors for the writer.

func Uint8Value(v uint8) Value     { return Value{typ: TypeUint8, bits: uint64(v)} }
func Int8Value(v int8) Value       { return Value{typ: TypeInt8, bits: uint64(int64(v))} }
func Uint16Value(v uint16) Value   { return Value{typ: TypeUint16, bits: uint64(v)} }
func Int16Value(v int16) Value     { return Value{typ: TypeInt16, bits: uint64(int64(v))} }
func Uint32Value(v uint32) Value   { return Value{typ: TypeUint32, bits: uint64(v)} }
func Int32Value(v int32) Value     { return Value{typ: TypeInt32, bits: uint64(int64(v))} }
func Uint64Value(v uint64) Value   { return Value{typ: TypeUint64, bits: v} }
func Int64Value(v int64) Value     { return Value{typ: TypeInt64, bits: uint64(v)} }
func Float32Value(v float32) Value { return Value{typ: TypeFloat32, bits: uint64(math.Float32bits(v))} }
func Float64Value(v float64) Value { return Value{typ: TypeFloat64, bits: math.Float64bits(v)} }
func StringValue(s string) Value   { return Value{typ: TypeString, str: s} }
func BoolValue(b bool) Value {
	if b {
		return Value{typ: TypeBool, bits: 1}
	}
	return Value{typ: TypeBool}
}

// StringsValue is an array of strings.
func StringsValue(s []string) Value {
	return Value{typ: TypeArray, elem: TypeString, n: int64(len(s)), mem: s}
}

// Float32sValue is an array of float32.
func Float32sValue(f []float32) Value {
	return Value{typ: TypeArray, elem: TypeFloat32, n: int64(len(f)), mem: f}
}

// IntsValue is an array of integers stored with element type elem (one of
// the integer types); values are truncated to it.
func IntsValue(elem ValueType, v []int64) Value {
	if !elem.isInt() {
		panic("gguf: IntsValue with non-integer element type " + elem.String())
	}
	return Value{typ: TypeArray, elem: elem, n: int64(len(v)), mem: v}
}

// Type is the value's type tag.
func (v Value) Type() ValueType { return v.typ }

// ElemType is an array's element type.
func (v Value) ElemType() ValueType { return v.elem }

// Len is an array's length (0 for scalars).
func (v Value) Len() int64 { return v.n }

func (v Value) typeName() string {
	if v.typ == TypeArray {
		return "array of " + v.elem.String()
	}
	return v.typ.String()
}

// scalarInt gives a signed view of an integer scalar's bits.
func (v Value) scalarInt() int64 {
	switch v.typ {
	case TypeInt8:
		return int64(int8(v.bits))
	case TypeInt16:
		return int64(int16(v.bits))
	case TypeInt32:
		return int64(int32(v.bits))
	}
	return int64(v.bits)
}

// AsUint returns an integer value that is not negative.
func (v Value) AsUint() (uint64, error) {
	if !v.typ.isInt() {
		return 0, fmt.Errorf("is %s, want an unsigned integer", v.typeName())
	}
	if v.typ.isSigned() {
		i := v.scalarInt()
		if i < 0 {
			return 0, fmt.Errorf("is negative (%d)", i)
		}
		return uint64(i), nil
	}
	return v.bits, nil
}

// AsInt returns an integer value that fits an int64.
func (v Value) AsInt() (int64, error) {
	if !v.typ.isInt() {
		return 0, fmt.Errorf("is %s, want an integer", v.typeName())
	}
	if v.typ == TypeUint64 && v.bits > math.MaxInt64 {
		return 0, fmt.Errorf("is %d, too large", v.bits)
	}
	return v.scalarInt(), nil
}

// AsFloat returns a float32 or float64 value as float64 (float32 widened
// exactly).
func (v Value) AsFloat() (float64, error) {
	switch v.typ {
	case TypeFloat32:
		return float64(math.Float32frombits(uint32(v.bits))), nil
	case TypeFloat64:
		return math.Float64frombits(v.bits), nil
	}
	return 0, fmt.Errorf("is %s, want a float", v.typeName())
}

// AsBool returns a bool value.
func (v Value) AsBool() (bool, error) {
	if v.typ != TypeBool {
		return false, fmt.Errorf("is %s, want bool", v.typeName())
	}
	return v.bits != 0, nil
}

// AsString returns a string value.
func (v Value) AsString() (string, error) {
	if v.typ != TypeString {
		return "", fmt.Errorf("is %s, want string", v.typeName())
	}
	return v.str, nil
}

// arrayBytes returns the encoded elements of a lazy array.
func (v Value) arrayBytes() ([]byte, error) {
	buf := make([]byte, v.nbytes)
	if _, err := v.src.r.ReadAt(buf, v.off); err != nil {
		return nil, fmt.Errorf("reading array at offset %d: %w", v.off, err)
	}
	return buf, nil
}

// AsStrings returns an array of strings.
func (v Value) AsStrings() ([]string, error) {
	if v.typ != TypeArray || v.elem != TypeString {
		return nil, fmt.Errorf("is %s, want array of string", v.typeName())
	}
	if m, ok := v.mem.([]string); ok {
		return m, nil
	}
	b, err := v.arrayBytes()
	if err != nil {
		return nil, err
	}
	out := make([]string, v.n)
	for i := range out {
		// Lengths were checked when the file was opened; check again so a
		// file changed underneath cannot make us slice out of range.
		if len(b) < 8 {
			return nil, fmt.Errorf("element %d: truncated", i)
		}
		l := binary.LittleEndian.Uint64(b)
		if l > uint64(len(b)-8) {
			return nil, fmt.Errorf("element %d: length %d past the end of the array", i, l)
		}
		out[i] = string(b[8 : 8+l])
		b = b[8+l:]
	}
	return out, nil
}

// AsFloat32s returns an array of float32 (or float64, rounded to float32).
func (v Value) AsFloat32s() ([]float32, error) {
	if v.typ != TypeArray || (v.elem != TypeFloat32 && v.elem != TypeFloat64) {
		return nil, fmt.Errorf("is %s, want array of float32", v.typeName())
	}
	switch m := v.mem.(type) {
	case []float32:
		return m, nil
	case []float64:
		out := make([]float32, len(m))
		for i, x := range m {
			out[i] = float32(x)
		}
		return out, nil
	}
	return scalars(v, func(e Value) (float32, error) {
		x, err := e.AsFloat()
		return float32(x), err
	})
}

// AsInts returns an array of any integer element type as int64 (a uint64
// element above MaxInt64 is an error).
func (v Value) AsInts() ([]int64, error) {
	if v.typ != TypeArray || !v.elem.isInt() {
		return nil, fmt.Errorf("is %s, want array of integers", v.typeName())
	}
	if m, ok := v.mem.([]int64); ok {
		return m, nil
	}
	return scalars(v, Value.AsInt)
}

// scalars decodes every element of a lazy array of scalars, each read as a
// Value of the element type and converted by as.
func scalars[T any](v Value, as func(Value) (T, error)) ([]T, error) {
	b, err := v.arrayBytes()
	if err != nil {
		return nil, err
	}
	n := int(v.elem.size())
	out := make([]T, v.n)
	for i := range out {
		x, err := as(Value{typ: v.elem, bits: leBits(b[i*n : (i+1)*n])})
		if err != nil {
			return nil, fmt.Errorf("element %d %w", i, err)
		}
		out[i] = x
	}
	return out, nil
}

// leBits reads a little-endian scalar of up to 8 bytes, zero-extended: the
// inverse of writing the low len(b) bytes of a value's bits.
func leBits(b []byte) uint64 {
	var w [8]byte
	copy(w[:], b)
	return binary.LittleEndian.Uint64(w[:])
}

// String formats the value for display; arrays show their type and length
// only (a vocabulary would fill the screen).
func (v Value) String() string {
	switch v.typ {
	case TypeString:
		s := v.str
		if len(s) > 80 {
			s = s[:77] + "..."
		}
		return strconv.Quote(s)
	case TypeBool:
		return strconv.FormatBool(v.bits != 0)
	case TypeFloat32, TypeFloat64:
		f, _ := v.AsFloat()
		bits := 64
		if v.typ == TypeFloat32 {
			bits = 32
		}
		return strconv.FormatFloat(f, 'g', -1, bits)
	case TypeArray:
		return fmt.Sprintf("[%d × %s]", v.n, v.elem)
	}
	if v.typ.isSigned() {
		return strconv.FormatInt(v.scalarInt(), 10)
	}
	if v.typ.isInt() {
		return strconv.FormatUint(v.bits, 10)
	}
	return "?" + strings.TrimSpace(v.typ.String())
}
