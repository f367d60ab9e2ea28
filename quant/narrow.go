package quant

import "math"

// FloatToHalf narrows one float32 to IEEE binary16 bits with
// round-to-nearest-even. Overflow gives ±Inf, ±Inf stays ±Inf, NaN becomes a
// quiet NaN with the same sign and the top payload bits, and results below
// the normal range are rounded to the exact subnormal.
func FloatToHalf(f float32) uint16 { return f32BitsToF16(math.Float32bits(f)) }

// FloatToBF16 narrows one float32 to bfloat16 bits with
// round-to-nearest-even; NaN stays a quiet NaN (never rounds into Inf).
func FloatToBF16(f float32) uint16 { return f32BitsToBF16(math.Float32bits(f)) }

// F32ToF16 narrows src into dst (which must be at least as long) as IEEE
// binary16 bit patterns; see FloatToHalf for the rounding rules.
func F32ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = f32BitsToF16(math.Float32bits(f))
	}
}

// F32ToBF16 narrows src into dst (which must be at least as long) as
// bfloat16 bit patterns; see FloatToBF16 for the rounding rules.
func F32ToBF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = f32BitsToBF16(math.Float32bits(f))
	}
}

// f32BitsToBF16 rounds by adding just under half an ulp of the kept part
// plus its lowest bit, so ties carry only when that bit is odd; a carry out
// of the mantissa correctly bumps the exponent, up to Inf. NaN is handled
// apart because the addition could carry a small payload into Inf.
func f32BitsToBF16(x uint32) uint16 {
	r := (x + 0x7fff + (x>>16)&1) >> 16
	if x&0x7fffffff > 0x7f800000 {
		r = x>>16 | 0x40
	}
	return uint16(r)
}

const (
	f16MinNormalAsF32 = 0x38800000 // 2^-14, the smallest normal binary16
	f16OverflowAsF32  = 0x47800000 // 2^16: from here on the result is Inf
	f32InfBits        = 0x7f800000
	// Adding 0.5 to a value below 2^-14 leaves its multiples of 2^-24 (the
	// binary16 subnormal step, which is the float32 ulp of 0.5) in the low
	// mantissa bits, rounded to nearest-even by the FPU itself.
	halfSubnormalMagic = 0x3f000000 // 0.5
)

// f32BitsToF16 works on the magnitude and reattaches the sign. Normal
// results rebias the exponent (127→15) and round the 13 dropped mantissa
// bits the same way as bf16; a mantissa carry rolls into the exponent and at
// the top into Inf. The cases are computed unconditionally and picked with
// selects the compiler turns into conditional moves, so the loop does not
// depend on branch prediction; NaN is picked last, over Inf. The function
// stays within the inlining budget so that F32ToF16's loop inlines it.
func f32BitsToF16(x uint32) uint16 {
	a := x & 0x7fffffff
	h := (a - (112 << 23) + 0xfff + (a>>13)&1) >> 13
	sub := math.Float32bits(math.Float32frombits(a)+0.5) - halfSubnormalMagic
	if a < f16MinNormalAsF32 {
		h = sub
	}
	if a >= f16OverflowAsF32 {
		h = 0x7c00
	}
	if a > f32InfBits {
		h = 0x7e00 | a>>13&0x3ff
	}
	return uint16(h | x>>16&0x8000)
}
