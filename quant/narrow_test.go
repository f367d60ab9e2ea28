package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

// bf16Ref is the plain reference for bf16 narrowing: add 0x7FFF plus the
// lowest kept bit, truncate; NaN gets the quiet bit.
func bf16Ref(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x0040
	}
	lsb := (b >> 16) & 1
	return uint16((b + 0x7fff + lsb) >> 16)
}

func isF16NaN(h uint16) bool  { return h&0x7c00 == 0x7c00 && h&0x03ff != 0 }
func isBF16NaN(h uint16) bool { return h&0x7f80 == 0x7f80 && h&0x007f != 0 }

// randomF32Bits mixes uniform bit patterns with the hard cases: values at and
// next to rounding halfway points for both f16 and bf16, f16 subnormals and
// underflow, the overflow boundary, Inf and NaN.
func randomF32Bits(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		var b uint32
		switch r.IntN(8) {
		case 0, 1:
			b = r.Uint32()
		case 2: // f16 halfway: low 13 bits = 0x1000, jittered by ±1
			b = r.Uint32()&^0x1fff | 0x1000
			b += uint32(r.IntN(3)) - 1
		case 3: // bf16 halfway
			b = r.Uint32()&^0xffff | 0x8000
			b += uint32(r.IntN(3)) - 1
		case 4: // f16 subnormal / underflow range: exponents 100..113
			b = r.Uint32()&0x807fffff | uint32(100+r.IntN(14))<<23
			if r.IntN(2) == 0 {
				b = b&^0x1fff | uint32(r.IntN(3)-1+0x1000)&0x1fff
			}
		case 5: // around 65504 .. 65536 and beyond: exponents 141..144
			b = r.Uint32()&0x807fffff | uint32(141+r.IntN(4))<<23
		case 6: // Inf/NaN
			b = r.Uint32()&0x807fffff | 0x7f800000
			if r.IntN(4) == 0 {
				b &= 0xff800000
			}
		case 7: // realistic weights
			b = math.Float32bits(float32(r.NormFloat64() * 0.02))
		}
		out[i] = math.Float32frombits(b)
	}
	return out
}

// TestAllPatternsRoundTrip widens every 16-bit pattern, checks it against
// an independent reference, and narrows it back, in bulk and one at a time:
// every pattern comes back, NaNs as quiet NaNs of the same sign.
func TestAllPatternsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		widen  func([]float32, []uint16)
		narrow func([]uint16, []float32)
		one    func(float32) uint16
		ref    func(uint16) float32
		isNaN  func(uint16) bool
		quiet  uint16 // the quiet-NaN bit
	}{
		{"f16", F16ToF32, F32ToF16, FloatToHalf, func(h uint16) float32 { return float16.Frombits(h).Float32() }, isF16NaN, 0x0200},
		{"bf16", BF16ToF32, F32ToBF16, FloatToBF16, func(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }, isBF16NaN, 0x0040},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := make([]uint16, 1<<16)
			for i := range src {
				src[i] = uint16(i)
			}
			wide := make([]float32, len(src))
			tc.widen(wide, src)
			back := make([]uint16, len(src))
			tc.narrow(back, wide)
			for i, h := range src {
				ref := tc.ref(h)
				if math.Float32bits(wide[i]) != math.Float32bits(ref) && !(tc.isNaN(h) && wide[i] != wide[i]) {
					t.Fatalf("%s %#04x widened to %#08x, want %#08x", tc.name, h, math.Float32bits(wide[i]), math.Float32bits(ref))
				}
				if tc.isNaN(h) {
					if !tc.isNaN(back[i]) || back[i]&0x8000 != h&0x8000 || back[i]&tc.quiet == 0 {
						t.Fatalf("NaN %#04x round-tripped to %#04x, want a quiet NaN of the same sign", h, back[i])
					}
					continue
				}
				if back[i] != h {
					t.Fatalf("%s %#04x round-tripped to %#04x", tc.name, h, back[i])
				}
				if s := tc.one(wide[i]); s != h {
					t.Fatalf("%s %#04x narrowed one at a time to %#04x", tc.name, h, s)
				}
			}
		})
	}
}

func TestNarrowMatchesReference(t *testing.T) {
	n := 4 << 20
	if testing.Short() {
		n = 1 << 18
	}
	r := rand.New(rand.NewPCG(1, 2))
	// Odd length so any unrolled tail is exercised.
	src := randomF32Bits(r, n+7)
	got16 := make([]uint16, len(src))
	gotB := make([]uint16, len(src))
	F32ToF16(got16, src)
	F32ToBF16(gotB, src)
	for i, f := range src {
		if want := float16.Fromfloat32(f).Bits(); got16[i] != want {
			t.Fatalf("F32ToF16(%#08x) = %#04x, want %#04x", math.Float32bits(f), got16[i], want)
		}
		if s := FloatToHalf(f); s != got16[i] {
			t.Fatalf("FloatToHalf(%#08x) = %#04x, bulk gave %#04x", math.Float32bits(f), s, got16[i])
		}
		if want := bf16Ref(f); gotB[i] != want {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(f), gotB[i], want)
		}
		if s := FloatToBF16(f); s != gotB[i] {
			t.Fatalf("FloatToBF16(%#08x) = %#04x, bulk gave %#04x", math.Float32bits(f), s, gotB[i])
		}
	}
}

func TestNarrowSpecialValues(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := math.Float32frombits(0x7fc00000)
	// A signalling NaN whose payload sits entirely in the bits bf16 drops:
	// naive rounding would turn it into Inf.
	snanLow := math.Float32frombits(0xff800001)
	tests := []struct {
		name   string
		in     float32
		f16    uint16
		bf16   uint16
		f16NaN bool
	}{
		{"zero", 0, 0x0000, 0x0000, false},
		{"neg zero", float32(math.Copysign(0, -1)), 0x8000, 0x8000, false},
		{"one", 1, 0x3c00, 0x3f80, false},
		{"max f16", 65504, 0x7bff, 0x4780, false},
		{"f16 ties up to inf", 65520, 0x7c00, 0x4780, false},
		{"just below f16 overflow tie", math.Float32frombits(0x477fefff), 0x7bff, 0x4780, false},
		{"big", 1e10, 0x7c00, bf16Ref(1e10), false},
		{"-big", -1e10, 0xfc00, bf16Ref(-1e10), false},
		{"max f32", math.MaxFloat32, 0x7c00, 0x7f80, false},
		{"inf", inf, 0x7c00, 0x7f80, false},
		{"-inf", -inf, 0xfc00, 0xff80, false},
		{"min f16 subnormal", 0x1p-24, 0x0001, 0x3380, false},
		{"half min subnormal ties to zero", 0x1p-25, 0x0000, 0x3300, false},
		{"above half min subnormal", math.Float32frombits(0x33000001), 0x0001, 0x3300, false},
		{"1.5 min subnormal ties to even 2", 0x1.8p-24, 0x0002, 0x33c0, false},
		{"largest subnormal rounds to min normal", math.Float32frombits(0x387ff000), 0x0400, 0x3880, false},
		{"tiny", 1e-30, 0x0000, bf16Ref(1e-30), false},
		{"-tiny", -1e-30, 0x8000, bf16Ref(-1e-30), false},
		{"nan", nan, 0x7e00, 0x7fc0, true},
		{"snan low payload", snanLow, 0xfe00, 0xffc0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FloatToHalf(tc.in); got != tc.f16 {
				t.Errorf("f16 = %#04x, want %#04x", got, tc.f16)
			}
			if tc.f16NaN && !isF16NaN(FloatToHalf(tc.in)) {
				t.Errorf("f16 of NaN is not NaN")
			}
			if got := FloatToBF16(tc.in); got != tc.bf16 {
				t.Errorf("bf16 = %#04x, want %#04x", got, tc.bf16)
			}
		})
	}
}

func TestF16ToF32MatchesReference(t *testing.T) {
	// Bulk widening against the scalar one and x448, over all patterns in
	// an odd-length, offset slice.
	src := make([]uint16, 1<<16+3)
	for i := range src {
		src[i] = uint16(i * 40503)
	}
	dst := make([]float32, len(src))
	F16ToF32(dst, src)
	for i, h := range src {
		want := float16.Frombits(h).Float32()
		if isF16NaN(h) {
			// x448 quiets signalling NaNs; widening here keeps the payload
			// bit for bit, which is exactly representable.
			want = math.Float32frombits(uint32(h&0x8000)<<16 | 0x7f800000 | uint32(h&0x3ff)<<13)
		}
		if math.Float32bits(dst[i]) != math.Float32bits(want) || math.Float32bits(HalfToFloat(h)) != math.Float32bits(want) {
			t.Fatalf("widen %#04x = %#08x, want %#08x", h, math.Float32bits(dst[i]), math.Float32bits(want))
		}
	}
}

func benchData(n int) []float32 {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.02)
	}
	return x
}

// benchConvert times conv over src (elemBytes bytes a value) into a
// destination of the same length and reports ns per value.
func benchConvert[S, D any](b *testing.B, conv func([]D, []S), src []S, elemBytes int) {
	dst := make([]D, len(src))
	b.SetBytes(int64(len(src) * elemBytes))
	for b.Loop() {
		conv(dst, src)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(src)), "ns/value")
}

func BenchmarkF32ToF16(b *testing.B) { benchConvert(b, F32ToF16, benchData(1<<16), 4) }

func BenchmarkF32ToF16RandomBits(b *testing.B) {
	benchConvert(b, F32ToF16, randomF32Bits(rand.New(rand.NewPCG(5, 6)), 1<<16), 4)
}

func BenchmarkF32ToBF16(b *testing.B) { benchConvert(b, F32ToBF16, benchData(1<<16), 4) }

func BenchmarkBF16ToF32(b *testing.B) {
	src := make([]uint16, 1<<16)
	F32ToBF16(src, benchData(len(src)))
	benchConvert(b, BF16ToF32, src, 2)
}

func BenchmarkF16ToF32(b *testing.B) {
	src := make([]uint16, 1<<16)
	F32ToF16(src, benchData(len(src)))
	benchConvert(b, F16ToF32, src, 2)
}
