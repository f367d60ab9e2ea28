package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrNonFinite is wrapped by q8 encoding errors caused by a NaN or ±Inf
// weight, which has no symmetric int8 representation.
var ErrNonFinite = errors.New("non-finite value")

// ErrQ8Range is wrapped by q8 encoding errors for a group whose largest
// magnitude needs a scale beyond the float16 range (|x| > 127.5·65504).
var ErrQ8Range = errors.New("value too large for q8")

const (
	// roundMagic is 1.5·2^23: adding it to |v| < 2^22 leaves round-half-even(v)
	// in the low mantissa bits, which is much cheaper than math.RoundToEven
	// plus a float→int conversion.
	roundMagic     = 12582912
	roundMagicBits = 0x4b400000
)

// q8Scale picks the float16 scale of a group whose largest magnitude is the
// finite, nonzero amax: f16(amax/127), bumped one f16 step when rounding
// down left amax/scale above 127.5, so that clamping to ±127 never costs more
// than half a step. One bump is always enough: the rounded-down scale was
// within half an f16 ulp of amax/127, so the next one is above it. 127.5·s
// is exact in float32 (11+8 significant bits), making the test exact.
// It returns ok=false when even the largest float16 scale, 65504, is too
// small, i.e. amax > 127.5·65504.
func q8Scale(amax float32) (bits uint16, scale float32, ok bool) {
	bits = f32BitsToF16(math.Float32bits(amax / 127))
	if bits == 0x7c00 {
		// amax/127 rounded up to Inf; the largest finite scale may still
		// cover amax within 127.5 steps.
		bits = 0x7bff
	}
	scale = HalfToFloat(bits)
	if amax > 127.5*scale {
		bits++
		scale = HalfToFloat(bits)
	}
	return bits, scale, bits < 0x7c00
}

// quantizeQ8Row encodes one row x into quants q (len(x) bytes) and scales
// (ceil(len(x)/group) float16 bit patterns). On failure it returns the
// column of the offending element.
func quantizeQ8Row(q []byte, scales []uint16, x []float32, group int) (col int, err error) {
	return quantizeQ8RowMeasured(q, scales, x, group, nil)
}

// errSums are the sums an ErrorAccumulator needs, gathered while encoding.
type errSums struct {
	rr, ee, rd float64 // ref·ref, d·d, ref·d with d = decoded − ref
	maxBits    uint32  // largest |d| as float32 bits
}

// quantizeQ8RowMeasured is quantizeQ8Row that, when sums is not nil, also
// measures the reconstruction error of each weight while it is still in a
// register: scale·q is exactly what decoding gives, so this equals a decode
// followed by ErrorAccumulator.Add, at a fraction of the cost.
func quantizeQ8RowMeasured(q []byte, scales []uint16, x []float32, group int, sums *errSums) (col int, err error) {
	for g := range scales {
		lo := g * group
		hi := min(lo+group, len(x))
		xs := x[lo:hi]
		qs := q[lo:hi]
		qs = qs[:len(xs)]

		// Integer max of the magnitude bits orders finite floats like their
		// values and puts Inf and every NaN above them all, so one pass finds
		// both amax and any non-finite element.
		m := maxAbsBits(xs)
		if m >= f32InfBits {
			for i, v := range xs {
				if math.Float32bits(v)&0x7fffffff >= f32InfBits {
					return lo + i, fmt.Errorf("%w %v", ErrNonFinite, v)
				}
			}
		}
		if m == 0 {
			scales[g] = 0
			clear(qs)
			continue // an all-zero group decodes exactly: nothing to add
		}
		amax := math.Float32frombits(m)
		bits, s, ok := q8Scale(amax)
		if !ok {
			for i, v := range xs {
				if math.Float32bits(v)&0x7fffffff == m {
					return lo + i, fmt.Errorf("%w: |%v| needs a scale beyond float16", ErrQ8Range, v)
				}
			}
		}
		scales[g] = bits
		// |v/s| <= 127.5 by the choice of s, so the only value clamping can
		// change is a tie at ±127.5 that rounded to even ±128.
		if sums == nil {
			for i, v := range xs {
				t := v/s + roundMagic
				qi := int32(math.Float32bits(t)) - roundMagicBits
				qs[i] = byte(int8(min(max(qi, -127), 127)))
			}
			continue
		}
		// A group has at most 128 weights: float32 sums are ample.
		var rr, ee, rd float32
		var mb uint32
		for i, v := range xs {
			t := v/s + roundMagic
			qi := min(max(int32(math.Float32bits(t))-roundMagicBits, -127), 127)
			qs[i] = byte(int8(qi))
			d := float32(qi)*s - v
			rr += v * v
			ee += d * d
			rd += v * d
			mb = max(mb, math.Float32bits(d)&0x7fffffff)
		}
		sums.rr += float64(rr)
		sums.ee += float64(ee)
		sums.rd += float64(rd)
		sums.maxBits = max(sums.maxBits, mb)
	}
	return 0, nil
}

// add folds measured sums into an accumulator.
func (a *ErrorAccumulator) addSums(s errSums) {
	a.refSq += s.rr
	a.errSq += s.ee
	a.gotSq += max(s.rr+2*s.rd+s.ee, 0)
	a.dot += s.rr + s.rd
	a.maxAbs = max(a.maxAbs, float64(math.Float32frombits(s.maxBits)))
}

// dequantizeQ8Row decodes one row: scale·q is exact in float32, so decoding
// loses nothing beyond what encoding did.
// scales holds the row's float16 scales as little-endian bytes.
func dequantizeQ8Row(dst []float32, q []byte, scales []byte, group int) {
	for g := range len(scales) / 2 {
		sb := binary.LittleEndian.Uint16(scales[2*g:])
		lo := g * group
		hi := min(lo+group, len(dst))
		ds := dst[lo:hi]
		qs := q[lo:hi]
		qs = qs[:len(ds)]
		s := HalfToFloat(sb)
		for i, b := range qs {
			ds[i] = float32(int8(b)) * s
		}
	}
}

// maxAbsBits is the largest of the magnitude bit patterns of x. Four
// independent running maxima break the compare-and-move dependency chain
// that would otherwise cost two cycles per element.
func maxAbsBits(x []float32) uint32 {
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		m0 = max(m0, math.Float32bits(v[0])&0x7fffffff)
		m1 = max(m1, math.Float32bits(v[1])&0x7fffffff)
		m2 = max(m2, math.Float32bits(v[2])&0x7fffffff)
		m3 = max(m3, math.Float32bits(v[3])&0x7fffffff)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&0x7fffffff)
	}
	return max(m0, m1, m2, m3)
}
