package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A minimal reader of the protocol buffers wire format
// (https://protobuf.dev/programming-guides/encoding/), enough for
// SentencePiece's ModelProto: varints, fixed 32/64-bit values and
// length-delimited fields. Every length is checked against the bytes that
// remain before it is used, so a hostile file cannot make the reader index
// out of range or allocate more than the input's own size.

// Wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireGroupSt = 3 // deprecated groups: refused
	wireGroupEn = 4
	wireFixed32 = 5
)

var errTruncated = errors.New("truncated")

// protoField is one decoded field: its number and wire type, and either its
// varint/fixed value or its bytes (a sub-slice of the input).
type protoField struct {
	num   int
	wire  int
	value uint64
	bytes []byte
}

// protoReader walks the fields of one message.
type protoReader struct {
	buf []byte
	off int
}

// varint decodes a base-128 varint of at most 10 bytes.
func (r *protoReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 70; shift += 7 {
		if r.off >= len(r.buf) {
			return 0, errTruncated
		}
		b := r.buf[r.off]
		r.off++
		if shift == 63 && b > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

// next returns the next field, or ok=false at the end of the message.
func (r *protoReader) next() (f protoField, ok bool, err error) {
	if r.off >= len(r.buf) {
		return f, false, nil
	}
	at := r.off
	key, err := r.varint()
	if err != nil {
		return f, false, fmt.Errorf("field key at byte %d: %w", at, err)
	}
	num := key >> 3
	if num == 0 || num > 1<<29-1 {
		return f, false, fmt.Errorf("field number %d at byte %d is invalid", num, at)
	}
	f.num, f.wire = int(num), int(key&7)
	switch f.wire {
	case wireVarint:
		if f.value, err = r.varint(); err != nil {
			return f, false, fmt.Errorf("field %d at byte %d: %w", f.num, at, err)
		}
	case wireFixed64:
		if len(r.buf)-r.off < 8 {
			return f, false, fmt.Errorf("field %d at byte %d: %w", f.num, at, errTruncated)
		}
		f.value = binary.LittleEndian.Uint64(r.buf[r.off:])
		r.off += 8
	case wireFixed32:
		if len(r.buf)-r.off < 4 {
			return f, false, fmt.Errorf("field %d at byte %d: %w", f.num, at, errTruncated)
		}
		f.value = uint64(binary.LittleEndian.Uint32(r.buf[r.off:]))
		r.off += 4
	case wireBytes:
		n, err := r.varint()
		if err != nil {
			return f, false, fmt.Errorf("field %d at byte %d: length: %w", f.num, at, err)
		}
		if n > uint64(len(r.buf)-r.off) {
			return f, false, fmt.Errorf("field %d at byte %d: length %d runs past the end (%d bytes left)", f.num, at, n, len(r.buf)-r.off)
		}
		f.bytes = r.buf[r.off : r.off+int(n)]
		r.off += int(n)
	default:
		return f, false, fmt.Errorf("field %d at byte %d: unsupported wire type %d", f.num, at, f.wire)
	}
	return f, true, nil
}

// float32 reads a float field, which must be fixed32.
func (f protoField) float32() (float32, error) {
	if f.wire != wireFixed32 {
		return 0, fmt.Errorf("field %d: wire type %d, want fixed32", f.num, f.wire)
	}
	return math.Float32frombits(uint32(f.value)), nil
}

// int32 reads an int32 or enum field (varint, two's complement).
func (f protoField) int32() (int32, error) {
	if f.wire != wireVarint {
		return 0, fmt.Errorf("field %d: wire type %d, want varint", f.num, f.wire)
	}
	return int32(f.value), nil
}

// bool reads a bool field.
func (f protoField) bool() (bool, error) {
	if f.wire != wireVarint {
		return false, fmt.Errorf("field %d: wire type %d, want varint", f.num, f.wire)
	}
	return f.value != 0, nil
}

// message reads a length-delimited field's bytes.
func (f protoField) message() ([]byte, error) {
	if f.wire != wireBytes {
		return nil, fmt.Errorf("field %d: wire type %d, want length-delimited", f.num, f.wire)
	}
	return f.bytes, nil
}

// eachField calls fn with every field of the message in buf, in order, and
// stops at the first error, the reader's or fn's.
func eachField(buf []byte, fn func(protoField) error) error {
	r := protoReader{buf: buf}
	for {
		f, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}
