package convert

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// nonFiniteRef is the plain definition the block scan must agree with.
func nonFiniteRef(x []float32) int {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

func TestNonFiniteErrorFindsTheFirst(t *testing.T) {
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7fc00001), math.Float32frombits(0xff800001)}
	for _, n := range []int{0, 1, 3, 4, 5, 4095, 4096, 4097, 9000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%7) - 3.5 // finite, including the largest finite exponent below
		}
		if n > 2 {
			x[n/2] = math.MaxFloat32
		}
		if err := nonFiniteError(x, 13); err != nil {
			t.Fatalf("n=%d: finite tensor refused: %v", n, err)
		}
		for _, pos := range []int{0, n / 3, n - 1} {
			if pos < 0 || pos >= n {
				continue
			}
			for _, b := range bad {
				y := append([]float32(nil), x...)
				y[pos] = b
				if n > 4 && pos+2 < n {
					y[pos+2] = float32(math.NaN()) // a later one must not be named
				}
				want := nonFiniteRef(y)
				err := nonFiniteError(y, 13)
				if err == nil {
					t.Fatalf("n=%d pos=%d %v: not refused", n, pos, b)
				}
				row, col := want/13, want%13
				if !strings.Contains(err.Error(), "row "+strconv.Itoa(row)+", column "+strconv.Itoa(col)+" ") {
					t.Fatalf("n=%d pos=%d: %v, want row %d column %d", n, pos, err, row, col)
				}
			}
		}
	}
}
