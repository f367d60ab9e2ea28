package quant

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// q4nl has q4s's planes, so its sizes are q4s's.
func TestQ4NLSizes(t *testing.T) {
	for _, g := range []int{32, 64, 128} {
		for _, sh := range [][2]int{{384, 384}, {3, 352}, {2, 37}, {5, 1000}} {
			a, err1 := Q4NL(g).Size(sh[0], sh[1])
			b, err2 := Q4S(g).Size(sh[0], sh[1])
			if err1 != nil || err2 != nil || a != b {
				t.Errorf("g%d %v: q4nl %d (%v), q4s %d (%v)", g, sh, a, err1, b, err2)
			}
		}
	}
	if got := Q4NL(32).BitsPerWeight(4096, 4096); got != 4.5 {
		t.Errorf("q4nl: %v bits/weight", got)
	}
}

func TestNLLevelsShape(t *testing.T) {
	if !slices.IsSorted(NLLevels[:]) || NLLevels[0] != -127 || NLLevels[15] > 127 {
		t.Fatalf("NLLevels %v: want ascending from −127", NLLevels)
	}
	tb := newNLTable(&NLLevels)
	for i, v := range tb.lv {
		if got := tb.nearest(v); int(got) != i {
			t.Errorf("nearest(level %d = %v) = %d", i, v, got)
		}
	}
	// Between two levels: the nearer one; far outside: the ends.
	for i := range 15 {
		a, b := tb.lv[i], tb.lv[i+1]
		if got := tb.nearest(a + (b-a)*0.4); int(got) != i {
			t.Errorf("nearest just above level %d = %d", i, got)
		}
		if got := tb.nearest(a + (b-a)*0.6); int(got) != i+1 {
			t.Errorf("nearest just below level %d = %d", i+1, got)
		}
	}
	if tb.nearest(-1e9) != 0 || tb.nearest(1e9) != 15 {
		t.Error("out-of-range values do not clamp to the ends")
	}
}

// TestQ4NLQuality: on Gaussian weights and on heavy-tailed (Laplace)
// weights, q4nl at 4.5 bits beats plain symmetric int4 at 4.5 bits, and
// every decoded weight is its group's scale times a table level.
func TestQ4NLQuality(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	laplace := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.ExpFloat64() * 0.02)
			if r.IntN(2) == 0 {
				x[i] = -x[i]
			}
		}
		return x
	}
	for _, cols := range []int{384, 352, 1000} {
		for name, x := range map[string][]float32{"gauss": gaussian(r, 64*cols), "laplace": laplace(64 * cols)} {
			nl := packedRelErr(t, Q4NL(32), x, 64, cols)
			s := packedRelErr(t, Q4S(32), x, 64, cols)
			q4 := packedRelErr(t, Q4, x, 64, cols)
			t.Logf("cols %d %s: q4nl %.4f q4s %.4f q4 %.4f", cols, name, nl, s, q4)
			if nl >= 0.9*s {
				t.Errorf("cols %d %s: q4nl error %.4g not 10%% below q4s %.4g", cols, name, nl, s)
			}
			if g64 := packedRelErr(t, Q4NL(64), x, 64, cols); g64 < nl {
				t.Errorf("cols %d %s: q4nlg64 %.4g more accurate than q4nl %.4g", cols, name, g64, nl)
			}
		}
	}
	// Decoded values lie on the table.
	rows, cols := 4, 100
	x := gaussian(r, rows*cols)
	b, got := encodeDecode(t, Q4NL(32), x, rows, cols)
	lo, _, _, sup, l, err := PackedPlanes(Q4NL(32), b, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	q := make([]uint8, l.PaddedCols)
	for row := range rows {
		clear(q)
		UnpackPlane(q, lo[row*l.LoRow:(row+1)*l.LoRow], 0, 4)
		for c := range cols {
			d := HalfToFloat(sup[row*l.Groups+c/32])
			if want := d * float32(NLLevels[q[c]]); got[row*cols+c] != want {
				t.Fatalf("row %d col %d: %v, want %v·%d", row, c, got[row*cols+c], d, NLLevels[q[c]])
			}
		}
	}
}
