package quant

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestEncodingNames: Parse reads every spelling to its encoding, whose
// String is the canonical name.
func TestEncodingNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Encoding
		name string
	}{
		{"f32", F32, "f32"},
		{"FP16", F16, "f16"},
		{"bfloat16", BF16, "bf16"},
		{"q8_0", Q8, "q8"},
		{"q8g64", Q8Group(64), "q8g64"},
		{"q8g128", Q8Group(128), "q8g128"},
		{"q4", Q4, "q4"},
		{"Q4_K", Q4, "q4"},
		{"q4g64", QK(4, 64), "q4g64"},
		{"q4g32", Q4, "q4"},
		{"q3", QK(3, 32), "q3"},
		{"q5g128", QK(5, 128), "q5g128"},
		{"q6_k", QK(6, 32), "q6"},
		{"q2", QK(2, 32), "q2"},
		{"q4s", Q4S(32), "q4s"},
		{"q4_0", Q4S(32), "q4s"},
		{"q4sg64", Q4S(64), "q4sg64"},
		{"q4nl", Q4NL(32), "q4nl"},
		{"Q4NL", Q4NL(32), "q4nl"},
		{"q4nlg64", Q4NL(64), "q4nlg64"},
		{"q4nlg128", Q4NL(128), "q4nlg128"},
		{"q4nlg32", Q4NL(32), "q4nl"},
	} {
		e, err := Parse(tc.in)
		if err != nil || e != tc.want || e.String() != tc.name {
			t.Errorf("Parse(%q) = %v (%q), %v; want %v (%q)", tc.in, e, e.String(), err, tc.want, tc.name)
		}
		// Every packed encoding but the table-driven q4nl is linear.
		if packed := e.Kind != KindQ8 && !e.IsFloat(); e.IsPacked() != packed || packed && e.Linear() != (e.Kind != KindQ4NL) {
			t.Errorf("%v: IsPacked %v, Linear %v", e, e.IsPacked(), e.Linear())
		}
	}
	if got := (Encoding{}).String(); got != "invalid(0)" {
		t.Errorf("zero Encoding's String = %q", got)
	}
	for _, bad := range []string{"q7", "q1", "q4g48", "q4g", "q4g064", "q5s", "q4x", "q", "q4sg", "q4g+64", "q9",
		"q3nl", "q5nl", "q4nlg48", "q4nlg", "q4n", "q4nls", "q4snl"} {
		if e, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", bad, e)
		}
	}
}

func TestPackedSizes(t *testing.T) {
	for _, tc := range []struct {
		e          Encoding
		rows, cols int
		want       int64
	}{
		// 12 groups, 2 super-blocks: 192 quant + 18 sub + 8 sup bytes a row.
		{Q4, 384, 384, 384*192 + 384*18 + 384*8},
		// 352 pads to itself; 11 groups → 6 sub pairs; 2 super-blocks.
		{Q4, 3, 352, 576 + 64 + 24},
		// 37 pads to 64: 32 B lo, 8 B hi, 1 sub pair, 1 super-block a row.
		{QK(5, 32), 2, 37, 64 + 64 + 64 + 8},
		{Q4S(32), 2, 100, 128 + 16},
		{QK(3, 32), 1, 256, 64 + 64 + 64 + 4},
		{QK(6, 128), 1, 256, 128 + 64 + 64 + 4},
	} {
		got, err := tc.e.Size(tc.rows, tc.cols)
		if err != nil || got != tc.want {
			t.Errorf("%v.Size(%d, %d) = %d, %v; want %d", tc.e, tc.rows, tc.cols, got, err, tc.want)
		}
	}
	// Projection-sized rows cost the nominal bits plus the row tails.
	for _, tc := range []struct {
		e    Encoding
		want float64
	}{{Q4, 4.5}, {QK(3, 32), 3.5}, {QK(5, 32), 5.5}, {QK(6, 32), 6.5}, {QK(4, 64), 4.3125}, {Q4S(32), 4.5}} {
		if got := tc.e.BitsPerWeight(4096, 4096); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%v: %v bits/weight at 4096², want %v", tc.e, got, tc.want)
		}
	}
}

// TestPackPlaneOrder pins the byte order of the planes: a 128-weight chunk
// of nibbles holds w[j] | w[j+64]<<4 in byte j; a shorter last chunk of h
// weights splits at h/2.
func TestPackPlaneOrder(t *testing.T) {
	q := make([]uint8, 128+96)
	for i := range q {
		q[i] = uint8(i*7+3) & 15
	}
	b := make([]byte, len(q)/2)
	PackPlane(b, q, 0, 4)
	for j := range 64 {
		if want := q[j] | q[j+64]<<4; b[j] != want {
			t.Fatalf("chunk 0 byte %d = %#x, want %#x", j, b[j], want)
		}
	}
	for j := range 48 {
		if want := q[128+j] | q[128+48+j]<<4; b[64+j] != want {
			t.Fatalf("tail byte %d = %#x, want %#x", j, b[64+j], want)
		}
	}
	// One bit per weight: byte j bit k holds weight j + 16k of a chunk.
	bits := make([]uint8, 128)
	bits[5], bits[16*3+2] = 1, 1
	hb := make([]byte, 16)
	PackPlane(hb, bits, 0, 1)
	if hb[5] != 1 || hb[2] != 1<<3 {
		t.Fatalf("bit plane = %v", hb)
	}
	for _, p := range []int{1, 2, 4} {
		for _, n := range []int{32, 64, 96, 128, 160, 352, 384} {
			q := make([]uint8, n)
			for i := range q {
				q[i] = uint8(rand.IntN(1 << p))
			}
			b := make([]byte, n*p/8)
			PackPlane(b, q, 0, p)
			got := make([]uint8, n)
			UnpackPlane(got, b, 0, p)
			if !bytes.Equal(got, q) {
				t.Fatalf("p=%d n=%d: unpack differs", p, n)
			}
		}
	}
}

func TestSubScales(t *testing.T) {
	sub := make([]byte, 9)
	for g := range 5 {
		putSubScales(sub, g, uint8(g*11+1), uint8(63-g*5))
	}
	for g := range 5 {
		sc, mn := SubScales(sub, g)
		if sc != uint8(g*11+1) || mn != uint8(63-g*5) {
			t.Fatalf("group %d: %d, %d", g, sc, mn)
		}
	}
	if sub[8] != 0 || sub[7]>>4 != 0 {
		t.Fatalf("unused half of the last pair written: %v", sub)
	}
}

// packedRelErr encodes and decodes x, returning ‖x − x̂‖/‖x‖.
func packedRelErr(t *testing.T, e Encoding, x []float32, rows, cols int) float64 {
	t.Helper()
	_, got := encodeDecode(t, e, x, rows, cols)
	return Compare(x, got).RelFrobenius
}

func gaussian(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.02)
	}
	return x
}

// TestPackedQuality checks each encoding's error on Gaussian weights
// against the level count it has, and that every two-level encoding beats
// plain symmetric int4 at equal or fewer bits where it should.
func TestPackedQuality(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, cols := range []int{384, 352, 1000} {
		x := gaussian(r, 64*cols)
		errs := map[string]float64{}
		for _, e := range []Encoding{QK(2, 32), QK(3, 32), Q4, QK(4, 64), QK(4, 128), QK(5, 32), QK(6, 32), Q4S(32)} {
			errs[e.String()] = packedRelErr(t, e, x, 64, cols)
		}
		t.Logf("cols %d: %v", cols, errs)
		order := []string{"q2", "q3", "q4", "q5", "q6"}
		for i := 1; i < len(order); i++ {
			// Each extra bit should roughly halve the error.
			if ratio := errs[order[i]] / errs[order[i-1]]; ratio > 0.6 || ratio < 0.35 {
				t.Errorf("cols %d: %s/%s error ratio %.3f", cols, order[i], order[i-1], ratio)
			}
		}
		if errs["q4"] >= errs["q4s"] || errs["q4g64"] >= errs["q4s"] {
			t.Errorf("cols %d: q4 %.4g, q4g64 %.4g not better than q4s %.4g", cols, errs["q4"], errs["q4g64"], errs["q4s"])
		}
		if errs["q4"] > errs["q4g64"] || errs["q4g64"] > errs["q4g128"] {
			t.Errorf("cols %d: larger groups should not be more accurate", cols)
		}
		// A Gaussian's 4-bit optimum is about 0.1 relative error.
		if errs["q4"] > 0.11 {
			t.Errorf("cols %d: q4 relative error %.4g", cols, errs["q4"])
		}
	}
}

func TestPackedEdgeValues(t *testing.T) {
	for _, e := range []Encoding{Q4, QK(3, 32), QK(6, 64), Q4S(32), Q4NL(32)} {
		// All zero, one constant negative, one constant positive row.
		cols := 40
		x := make([]float32, 3*cols)
		for i := range cols {
			x[cols+i] = -0.5
			x[2*cols+i] = 0.25
		}
		_, got := encodeDecode(t, e, x, 3, cols)
		for i, v := range got {
			// The offset is a 6-bit multiple of a float16: exact to ~1e-3.
			if math.Abs(float64(v-x[i])) > 1e-3*math.Abs(float64(x[i])) {
				t.Fatalf("%v: element %d decodes to %v, want %v", e, i, v, x[i])
			}
		}
	}
}

func TestPackedErrors(t *testing.T) {
	for _, e := range []Encoding{Q4, Q4S(32), QK(5, 64), Q4NL(32)} {
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
			x := make([]float32, 5*70)
			x[3*70+41] = bad
			dst := make([]byte, mustSize(t, e, 5, 70))
			err := EncodeParallel(context.Background(), e, dst, x, 5, 70, 2)
			if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "row 3, col 41") {
				t.Errorf("%v with %v: %v", e, bad, err)
			}
		}
		x := make([]float32, 64)
		x[9] = 1e10 // beyond float16 scales of any level count
		dst := make([]byte, mustSize(t, e, 1, 64))
		if err := Encode(e, dst, x, 1, 64); !errors.Is(err, ErrScaleRange) {
			t.Errorf("%v with a huge value: %v", e, err)
		}
	}
	// Importance of the wrong length or with a NaN is refused.
	dst := make([]byte, mustSize(t, Q4, 1, 64))
	if _, err := EncodeWeighted(context.Background(), Q4, dst, make([]float32, 64), 1, 64, 1, make([]float32, 63)); err == nil {
		t.Error("short importance accepted")
	}
	imp := make([]float32, 64)
	imp[3] = float32(math.NaN())
	if _, err := EncodeWeighted(context.Background(), Q4, dst, make([]float32, 64), 1, 64, 1, imp); err == nil {
		t.Error("NaN importance accepted")
	}
}

// TestPackedImportance: weighting columns moves the error away from them.
func TestPackedImportance(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rows, cols := 32, 384
	x := gaussian(r, rows*cols)
	imp := make([]float32, cols)
	for c := range imp {
		imp[c] = 0.01
		if c%7 == 0 {
			imp[c] = 100
		}
	}
	weighted := func(b []byte) float64 {
		got := make([]float32, len(x))
		if err := Decode(Q4, got, b, rows, cols); err != nil {
			t.Fatal(err)
		}
		var s float64
		for i, v := range got {
			d := float64(v - x[i])
			s += float64(imp[i%cols]) * d * d
		}
		return s
	}
	plain := make([]byte, mustSize(t, Q4, rows, cols))
	if _, err := EncodeWeighted(context.Background(), Q4, plain, x, rows, cols, 2, nil); err != nil {
		t.Fatal(err)
	}
	wt := make([]byte, len(plain))
	if _, err := EncodeWeighted(context.Background(), Q4, wt, x, rows, cols, 2, imp); err != nil {
		t.Fatal(err)
	}
	if a, b := weighted(plain), weighted(wt); b >= 0.9*a {
		t.Errorf("weighted error %.4g with importance, %.4g without", b, a)
	}
}
