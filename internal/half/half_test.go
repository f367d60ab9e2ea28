package half

import (
	"math"
	"testing"

	"github.com/x448/float16"
)

// TestToFloat32Exhaustive compares every one of the 65536 bit patterns
// with an independent implementation, bit for bit. That one quiets
// signalling NaNs; ToFloat32 keeps the payload as it is, so for NaNs the
// quiet bit is left out of the comparison.
func TestToFloat32Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got, want := ToFloat32(h), float16.Frombits(h).Float32()
		g, w := math.Float32bits(got), math.Float32bits(want)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			g |= 0x00400000
		}
		if g != w {
			t.Fatalf("ToFloat32(%#04x) = %#08x, want %#08x", h, math.Float32bits(got), math.Float32bits(want))
		}
	}
}

func TestToFloat32Values(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 0x1p-24},
		{0x8001, -0x1p-24}, {0x03ff, 1023 * 0x1p-24}, {0x0400, 0x1p-14}, {0x7c00, float32(math.Inf(1))},
	} {
		if got := ToFloat32(tc.h); got != tc.want {
			t.Errorf("ToFloat32(%#04x) = %v, want %v", tc.h, got, tc.want)
		}
	}
	if got := ToFloat32(0x8000); math.Float32bits(got) != 0x80000000 {
		t.Errorf("ToFloat32(0x8000) = %v, want -0", got)
	}
	if got := ToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("ToFloat32(0x7e00) = %v, want NaN", got)
	}
}
