package half

import "math"

// ToFloat32 widens one IEEE binary16 value exactly: subnormals, ±0, ±Inf
// and NaN payloads included.
func ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN: the payload moves up with the mantissa
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias 15 → 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant·2^-24 is exact in float32.
	return math.Float32frombits(sign | math.Float32bits(float32(mant)*(1.0/(1<<24))))
}
