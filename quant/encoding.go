package quant

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the family of an encoding.
type Kind uint8

const (
	KindInvalid Kind = iota
	KindF32
	KindF16
	KindBF16
	KindQ8
	// KindQK is the packed low-bit family (q2…q6): unsigned Bits-bit quants
	// with an asymmetric scale and offset per group, both stored as 6-bit
	// integers under one float16 pair per super-block of 256 weights (see
	// qk.go).
	KindQK
	// KindQ4S is plain symmetric int4 with one float16 scale per group: the
	// baseline the two-level encodings are measured against.
	KindQ4S
	// KindQ4NL is 4-bit quants on a fixed non-uniform level table with one
	// signed float16 scale per group (q4s's planes; see nl.go).
	KindQ4NL
)

// DefaultGroup is the q8 group size used when none is given.
const DefaultGroup = 32

// PlaneAlign is the alignment of every plane inside an encoded tensor, so
// that SIMD loads of the quants and of the scales never straddle a plane.
const PlaneAlign = 64

// Encoding is a complete description of how a [rows, cols] float32 matrix is
// turned into bytes. The zero value is invalid.
type Encoding struct {
	Kind  Kind
	Group int // weights per scale along cols; KindQ8, KindQK, KindQ4S
	Bits  int // bits per quant; KindQK (2…6), KindQ4S and KindQ4NL (4)
}

var (
	F32  = Encoding{Kind: KindF32}
	F16  = Encoding{Kind: KindF16}
	BF16 = Encoding{Kind: KindBF16}
	Q8   = Encoding{Kind: KindQ8, Group: DefaultGroup}
)

// Q8Group returns the q8 encoding with group size g.
func Q8Group(g int) Encoding { return Encoding{Kind: KindQ8, Group: g} }

// kindNames are the names of the kinds whose name Bits does not change
// (KindQK is named by its bits, q2…q6).
var kindNames = [...]string{KindF32: "f32", KindF16: "f16", KindBF16: "bf16", KindQ8: "q8", KindQ4S: "q4s", KindQ4NL: "q4nl"}

// String gives the canonical name: f32, f16, bf16, then for the grouped
// encodings the family (q8, q2…q6, q4s, q4nl) with "g" and the group size
// appended unless it is DefaultGroup (q8g64, q4g128).
func (e Encoding) String() string {
	switch {
	case e.IsFloat():
		return kindNames[e.Kind]
	case e.Kind == KindQ8 || e.IsPacked():
		name := e.familyName()
		if e.Group == DefaultGroup {
			return name
		}
		return name + "g" + strconv.Itoa(e.Group)
	}
	return fmt.Sprintf("invalid(%d)", e.Kind)
}

// MarshalText makes encodings readable in JSON headers and plans.
func (e Encoding) MarshalText() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return []byte(e.String()), nil
}

// UnmarshalText parses the canonical name.
func (e *Encoding) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// Parse reads an encoding name. It accepts the canonical names, upper case,
// and the aliases q8_0 and q8g32 for q8.
func Parse(s string) (Encoding, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "f32", "fp32", "float32":
		return F32, nil
	case "f16", "fp16", "float16":
		return F16, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "q8", "q8_0", "q8g32":
		return Q8, nil
	}
	if rest, ok := strings.CutPrefix(t, "q8g"); ok {
		g, err := strconv.Atoi(rest)
		if err == nil {
			e := Q8Group(g)
			if e.Validate() == nil {
				return e, nil
			}
		}
	}
	if e, ok := parsePacked(t); ok {
		return e, nil
	}
	return Encoding{}, fmt.Errorf("unknown encoding %q (want f32, f16, bf16, q8, q8g64, q8g128, q2…q6, q4g64, q4g128, q4s, q4nl)", s)
}

// Validate reports whether e is a supported encoding.
func (e Encoding) Validate() error {
	switch e.Kind {
	case KindF32, KindF16, KindBF16:
		if e.Group != 0 {
			return fmt.Errorf("encoding %v: group size %d given to a float encoding", e.Kind, e.Group)
		}
		return nil
	case KindQ8:
		switch e.Group {
		case 32, 64, 128:
			return nil
		}
		return fmt.Errorf("q8 group size %d not supported (want 32, 64 or 128)", e.Group)
	case KindQK, KindQ4S, KindQ4NL:
		return e.validatePacked()
	}
	return fmt.Errorf("invalid encoding kind %d", e.Kind)
}

// IsPacked reports whether e is one of the packed low-bit encodings (KindQK,
// KindQ4S, KindQ4NL), which share the planar layout of qk.go and the
// runtime's packed activations (int8 in blocks of 32).
func (e Encoding) IsPacked() bool { return e.Kind == KindQK || e.Kind == KindQ4S || e.Kind == KindQ4NL }

// Linear reports whether every group of a packed encoding decodes as
// a·q − m (GroupParams): true for KindQK and KindQ4S, false for the
// table-driven KindQ4NL.
func (e Encoding) Linear() bool { return e.Kind == KindQK || e.Kind == KindQ4S }

// IsFloat reports whether every weight is stored on its own (no shared scale).
func (e Encoding) IsFloat() bool {
	return e.Kind == KindF32 || e.Kind == KindF16 || e.Kind == KindBF16
}

// Groups is the number of scale groups in a row of cols weights.
func (e Encoding) Groups(cols int) int {
	if e.Group == 0 || cols <= 0 {
		return 0
	}
	return (cols + e.Group - 1) / e.Group
}

// QuantsPlaneSize is the padded size of the q8 quants plane.
func QuantsPlaneSize(rows, cols int) int64 {
	return align(int64(rows)*int64(cols), PlaneAlign)
}

// Size is the number of bytes a [rows, cols] matrix takes in encoding e.
// It fails on negative or overflowing shapes and on invalid encodings, so
// callers validating untrusted headers can rely on it.
func (e Encoding) Size(rows, cols int) (int64, error) {
	if err := e.Validate(); err != nil {
		return 0, err
	}
	if rows < 0 || cols < 0 {
		return 0, fmt.Errorf("negative shape [%d, %d]", rows, cols)
	}
	const limit = int64(1) << 50 // 1 PiB: far past any model, far below overflow
	n := int64(rows) * int64(cols)
	if cols != 0 && n/int64(cols) != int64(rows) || n > limit {
		return 0, fmt.Errorf("shape [%d, %d] too large", rows, cols)
	}
	switch e.Kind {
	case KindF32:
		return 4 * n, nil
	case KindF16, KindBF16:
		return 2 * n, nil
	case KindQ8:
		return QuantsPlaneSize(rows, cols) + 2*int64(rows)*int64(e.Groups(cols)), nil
	case KindQK, KindQ4S, KindQ4NL:
		return e.Layout(rows, cols).Size, nil
	}
	return 0, fmt.Errorf("invalid encoding kind %d", e.Kind)
}

// BitsPerWeight is the storage cost of one weight of a [rows, cols] matrix,
// padding included.
func (e Encoding) BitsPerWeight(rows, cols int) float64 {
	sz, err := e.Size(rows, cols)
	if err != nil || rows == 0 || cols == 0 {
		return 0
	}
	return float64(sz) * 8 / (float64(rows) * float64(cols))
}

func align(n, a int64) int64 { return (n + a - 1) / a * a }
