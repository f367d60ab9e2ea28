package quant

import (
	"math"

	"github.com/shrink-llm/shrink/internal/half"
)

// BF16ToF32 widens bfloat16 bit patterns exactly: a bfloat16 is the top half
// of a float32, so widening is a shift.
func BF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// F16ToF32 widens IEEE binary16 bit patterns exactly (subnormals, ±Inf and
// NaN payloads included).
func F16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = HalfToFloat(h)
	}
}

// HalfToFloat widens one IEEE binary16 value exactly (internal/half holds
// the definition, shared with runtime/simd).
func HalfToFloat(h uint16) float32 { return half.ToFloat32(h) }
