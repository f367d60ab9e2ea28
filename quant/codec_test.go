package quant

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/x448/float16"
)

var allEncodings = []Encoding{F32, F16, BF16, Q8, Q8Group(64), Q8Group(128), Q4, QK(4, 128), QK(3, 32), QK(6, 64), Q4S(32), Q4NL(32)}

var oddShapes = [][2]int{{7, 33}, {3, 100}, {1, 1}, {5, 129}, {2, 64}, {4, 32}, {1, 257}, {9, 127}, {0, 5}, {3, 0}}

// weights draws a [rows, cols] matrix shaped like real weights: normal
// values whose scale varies by row and by group, some all-zero groups,
// outliers, exact ties for q8 and values tiny enough to need subnormal
// float16 scales.
func weights(r *rand.Rand, rows, cols int) []float32 {
	x := make([]float32, rows*cols)
	for i := range x {
		row, col := i/max(cols, 1), i%max(cols, 1)
		sigma := 0.02 * math.Pow(10, float64((row*7+col/32)%5-2))
		x[i] = float32(r.NormFloat64() * sigma)
		switch r.IntN(64) {
		case 0:
			x[i] *= 50 // outlier
		case 1:
			x[i] = float32(r.IntN(255)-127) / 2 // halves: ties when the scale is 0.5 or 1
		case 2:
			x[i] = float32(r.NormFloat64() * 1e-6)
		}
	}
	// Zero out some whole 32-wide spans so all-zero groups occur.
	for i := 0; i+32 <= len(x); i += 32 * 7 {
		clear(x[i : i+32])
	}
	return x
}

// q8Reference is the plain q8 encoder the fast one must match byte for byte:
// float64 bookkeeping, x448 for the float16 scale, math.RoundToEven.
func q8Reference(x []float32, rows, cols, group int) ([]byte, error) {
	ng := (cols + group - 1) / group
	qp := (rows*cols + 63) / 64 * 64
	out := make([]byte, qp+2*rows*ng)
	for r := range rows {
		for g := range ng {
			lo, hi := r*cols+g*group, r*cols+min((g+1)*group, cols)
			amax := 0.0
			for _, v := range x[lo:hi] {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("row %d: non-finite", r)
				}
				amax = max(amax, math.Abs(float64(v)))
			}
			var s16 uint16
			if amax != 0 {
				s16 = min(float16.Fromfloat32(float32(amax)/127).Bits(), 0x7bff)
				if amax/float64(float16.Frombits(s16).Float32()) > 127.5 {
					s16++
				}
				if s16 >= 0x7c00 {
					return nil, fmt.Errorf("row %d: out of range", r)
				}
			}
			s := float16.Frombits(s16).Float32()
			for i := lo; i < hi; i++ {
				q := 0.0
				if s != 0 {
					q = math.RoundToEven(float64(x[i] / s))
				}
				out[i] = byte(int8(max(-127, min(127, q))))
			}
			binary.LittleEndian.PutUint16(out[qp+2*(r*ng+g):], s16)
		}
	}
	return out, nil
}

func mustSize(t *testing.T, e Encoding, rows, cols int) int {
	t.Helper()
	n, err := e.Size(rows, cols)
	if err != nil {
		t.Fatalf("%v Size(%d, %d): %v", e, rows, cols, err)
	}
	return int(n)
}

func encodeOK(t *testing.T, e Encoding, x []float32, rows, cols int) []byte {
	t.Helper()
	dst := make([]byte, mustSize(t, e, rows, cols))
	for i := range dst {
		dst[i] = 0xAA // padding must be overwritten, not assumed zero
	}
	if err := Encode(e, dst, x, rows, cols); err != nil {
		t.Fatalf("Encode %v [%d, %d]: %v", e, rows, cols, err)
	}
	return dst
}

// encodeDecode encodes x with encodeOK and decodes it back, returning
// both the encoding and the decoded values.
func encodeDecode(t *testing.T, e Encoding, x []float32, rows, cols int) ([]byte, []float32) {
	t.Helper()
	b := encodeOK(t, e, x, rows, cols)
	y := make([]float32, len(x))
	if err := Decode(e, y, b, rows, cols); err != nil {
		t.Fatalf("Decode %v [%d, %d]: %v", e, rows, cols, err)
	}
	return b, y
}

func TestEncodeSizeChecks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, e := range allEncodings {
		for _, sh := range oddShapes {
			rows, cols := sh[0], sh[1]
			size := mustSize(t, e, rows, cols)
			x := weights(r, rows, cols)
			if err := Encode(e, make([]byte, size), x, rows, cols); err != nil {
				t.Errorf("%v [%d, %d]: Encode with Size bytes failed: %v", e, rows, cols, err)
			}
			for _, bad := range []int{size - 1, size + 1} {
				if bad < 0 {
					continue
				}
				if err := Encode(e, make([]byte, bad), x, rows, cols); err == nil {
					t.Errorf("%v [%d, %d]: Encode accepted %d bytes (want %d)", e, rows, cols, bad, size)
				}
				if err := Decode(e, make([]float32, len(x)), make([]byte, bad), rows, cols); err == nil {
					t.Errorf("%v [%d, %d]: Decode accepted %d bytes (want %d)", e, rows, cols, bad, size)
				}
			}
			if err := Encode(e, make([]byte, size), append(x, 1), rows, cols); err == nil {
				t.Errorf("%v [%d, %d]: Encode accepted %d values", e, rows, cols, len(x)+1)
			}
		}
	}
	if err := Encode(Encoding{}, nil, nil, 0, 0); err == nil {
		t.Error("Encode accepted the invalid zero Encoding")
	}
	if err := Encode(Q8Group(48), nil, nil, 0, 0); err == nil {
		t.Error("Encode accepted q8 group 48")
	}
}

func TestF32RoundTripBitExact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, sh := range oddShapes {
		rows, cols := sh[0], sh[1]
		x := randomF32Bits(r, rows*cols) // NaN payloads, Inf, subnormals
		b := encodeOK(t, F32, x, rows, cols)
		for i, v := range x {
			if got := binary.LittleEndian.Uint32(b[4*i:]); got != math.Float32bits(v) {
				t.Fatalf("[%d, %d] element %d stored as %#08x, want %#08x", rows, cols, i, got, math.Float32bits(v))
			}
		}
		y := make([]float32, len(x))
		if err := Decode(F32, y, b, rows, cols); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if math.Float32bits(y[i]) != math.Float32bits(x[i]) {
				t.Fatalf("[%d, %d] element %d decoded as %#08x, want %#08x", rows, cols, i, math.Float32bits(y[i]), math.Float32bits(x[i]))
			}
		}
	}
}

func TestHalfEncodingsMatchScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	tests := []struct {
		e      Encoding
		narrow func(float32) uint16
		widen  func(uint16) float32
	}{
		{F16, func(f float32) uint16 { return float16.Fromfloat32(f).Bits() }, HalfToFloat},
		{BF16, bf16Ref, func(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }},
	}
	for _, tc := range tests {
		for _, sh := range oddShapes {
			rows, cols := sh[0], sh[1]
			x := randomF32Bits(r, rows*cols)
			b, y := encodeDecode(t, tc.e, x, rows, cols)
			for i, v := range x {
				h := binary.LittleEndian.Uint16(b[2*i:])
				if want := tc.narrow(v); h != want {
					t.Fatalf("%v [%d, %d] element %d (%#08x): stored %#04x, want %#04x", tc.e, rows, cols, i, math.Float32bits(v), h, want)
				}
				if want := tc.widen(h); math.Float32bits(y[i]) != math.Float32bits(want) {
					t.Fatalf("%v element %d: decoded %#08x, want %#08x", tc.e, i, math.Float32bits(y[i]), math.Float32bits(want))
				}
			}
		}
	}
}

func TestQ8MatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	shapes := append([][2]int(nil), oddShapes...)
	for range 30 {
		shapes = append(shapes, [2]int{1 + r.IntN(9), 1 + r.IntN(400)})
	}
	for _, g := range []int{32, 64, 128} {
		e := Q8Group(g)
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			x := weights(r, rows, cols)
			got := encodeOK(t, e, x, rows, cols)
			want, err := q8Reference(x, rows, cols, g)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for got[i] == want[i] {
					i++
				}
				t.Fatalf("%v [%d, %d]: byte %d is %#02x, reference %#02x (quants plane ends at %d)", e, rows, cols, i, got[i], want[i], QuantsPlaneSize(rows, cols))
			}
		}
	}
}

// TestQ8ErrorBound checks the property the scale bump exists for: every
// decoded weight is within half a quantization step of the original.
func TestQ8ErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, g := range []int{32, 64, 128} {
		e := Q8Group(g)
		for _, sh := range oddShapes {
			rows, cols := sh[0], sh[1]
			x := weights(r, rows, cols)
			b, y := encodeDecode(t, e, x, rows, cols)
			quants, scales, err := Q8Planes(b, rows, cols, g)
			if err != nil {
				t.Fatal(err)
			}
			ng := e.Groups(cols)
			for i, v := range x {
				row, col := i/cols, i%cols
				s := float64(HalfToFloat(scales[row*ng+col/g]))
				if q := quants[i]; q < -127 {
					t.Fatalf("quant %d below -127", q)
				}
				if float64(y[i]) != s*float64(quants[i]) {
					t.Fatalf("decoded %v is not scale·q = %v·%d", y[i], s, quants[i])
				}
				// Half a step, plus the float32 rounding of x/s (≤ 127.5 ulps
				// of 2^-24 relative).
				if d := math.Abs(float64(y[i]) - float64(v)); d > s*(0.5+1e-5) {
					t.Fatalf("%v [%d, %d] element (%d, %d): |%v − %v| = %v exceeds half step %v", e, rows, cols, row, col, y[i], v, d, s/2)
				}
			}
		}
	}
}

func TestQ8HandComputed(t *testing.T) {
	// amax 127 gives scale exactly 1: -63.5 ties to even -64; the second row
	// is all zero (scale 0); the third row's amax 127·2.4·2^-24 makes
	// f16(amax/127) round down to 2·2^-24, leaving amax/scale = 152.4, so the
	// scale is bumped to 3·2^-24 (f16 bits 0x0003).
	tiny := float32(127 * 2.4 * 0x1p-24)
	x := []float32{
		127, -63.5, 0.25,
		0, 0, 0,
		tiny, -tiny / 2, 0,
	}
	b := encodeOK(t, Q8, x, 3, 3)
	if len(b) != 64+2*3 {
		t.Fatalf("size %d, want 70", len(b))
	}
	wantQ := []int8{127, -64, 0, 0, 0, 0, int8(math.RoundToEven(float64(tiny / 0x3p-24))), int8(math.RoundToEven(float64(-tiny / 2 / 0x3p-24))), 0}
	for i, q := range wantQ {
		if int8(b[i]) != q {
			t.Errorf("quant %d = %d, want %d", i, int8(b[i]), q)
		}
	}
	if wantQ[6] != 102 {
		t.Errorf("bumped-scale quant %d, want 102", wantQ[6])
	}
	for i := 9; i < 64; i++ {
		if b[i] != 0 {
			t.Fatalf("padding byte %d = %#x, want 0", i, b[i])
		}
	}
	if got := b[64:]; !bytes.Equal(got, []byte{0x00, 0x3c, 0x00, 0x00, 0x03, 0x00}) {
		t.Errorf("scales plane % x, want 00 3c 00 00 03 00", got)
	}
	// amax = 255·2^-24: amax/127 rounds down to the subnormal scale 2·2^-24
	// leaving amax/scale exactly 127.5, which is not above 127.5, so no bump;
	// the tie rounds to even ±128 and must clamp to ±127.
	edge := float32(255 * 0x1p-24)
	c := encodeOK(t, Q8, []float32{edge, -edge, 0x1p-24}, 1, 3)
	if sb := binary.LittleEndian.Uint16(c[64:]); sb != 0x0002 {
		t.Errorf("scale bits %#04x, want 0x0002", sb)
	}
	if int8(c[0]) != 127 || int8(c[1]) != -127 || int8(c[2]) != 0 {
		t.Errorf("±127.5-step tie encoded as %d, %d, %d; want 127, -127, 0", int8(c[0]), int8(c[1]), int8(c[2]))
	}
}

func TestQ8Errors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name    string
		rows    int
		cols    int
		bad     map[int]float32
		wantErr error
		wantMsg string
	}{
		{"nan", 4, 40, map[int]float32{2*40 + 35: nan}, ErrNonFinite, "row 2, col 35"},
		{"-inf", 4, 40, map[int]float32{1*40 + 3: -inf, 3*40 + 1: nan}, ErrNonFinite, "row 1, col 3"},
		{"huge", 3, 10, map[int]float32{2*10 + 9: 1e7}, ErrQ8Range, "row 2, col 9"},
		{"max f32", 1, 5, map[int]float32{4: math.MaxFloat32}, ErrQ8Range, "row 0, col 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := weights(rand.New(rand.NewPCG(1, 1)), tc.rows, tc.cols)
			for i, v := range tc.bad {
				x[i] = v
			}
			dst := make([]byte, mustSize(t, Q8, tc.rows, tc.cols))
			err := Encode(Q8, dst, x, tc.rows, tc.cols)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(fmt.Sprint(err), tc.wantMsg) {
				t.Fatalf("Encode error %v, want %v naming %q", err, tc.wantErr, tc.wantMsg)
			}
			perr := EncodeParallel(context.Background(), Q8, dst, x, tc.rows, tc.cols, 2)
			if perr == nil || perr.Error() != err.Error() {
				t.Fatalf("EncodeParallel error %v, Encode gave %v", perr, err)
			}
		})
	}
	// Magnitudes up to 127.5·65504 fit with the largest scale, 65504, even
	// where amax/127 itself rounds to an infinite float16.
	for _, v := range []float32{127 * 65504, 127 * 65520, 127.5 * 65504} {
		b := make([]byte, 66)
		if err := Encode(Q8, b, []float32{-v}, 1, 1); err != nil {
			t.Errorf("%v rejected: %v", v, err)
		} else if int8(b[0]) != -127 || binary.LittleEndian.Uint16(b[64:]) != 0x7bff {
			t.Errorf("%v encoded as q %d, scale %#04x", -v, int8(b[0]), binary.LittleEndian.Uint16(b[64:]))
		}
	}
	if err := Encode(Q8, make([]byte, 66), []float32{math.Nextafter32(127.5*65504, 1e9)}, 1, 1); !errors.Is(err, ErrQ8Range) {
		t.Errorf("just above 127.5·65504: error %v, want ErrQ8Range", err)
	}
}

func TestEncodeParallelMatchesEncode(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	shapes := [][2]int{{1000, 700}, {3, 100}, {1, 300000}, {600, 513}, {0, 4}}
	if testing.Short() {
		shapes = shapes[1:]
	}
	for _, e := range allEncodings {
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			x := weights(r, rows, cols)
			want := encodeOK(t, e, x, rows, cols)
			for _, w := range []int{0, 1, 2, 3, 8} {
				got := make([]byte, len(want))
				for i := range got {
					got[i] = 0x55
				}
				if err := EncodeParallel(context.Background(), e, got, x, rows, cols, w); err != nil {
					t.Fatalf("%v [%d, %d] workers %d: %v", e, rows, cols, w, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%v [%d, %d] workers %d: bytes differ from Encode", e, rows, cols, w)
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := make([]float32, 600*513)
	if err := EncodeParallel(ctx, Q8, make([]byte, mustSize(t, Q8, 600, 513)), x, 600, 513, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled EncodeParallel returned %v", err)
	}
}

func TestDecodeRowMatchesDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, e := range allEncodings {
		for _, sh := range oddShapes {
			rows, cols := sh[0], sh[1]
			x := weights(r, rows, cols)
			b, all := encodeDecode(t, e, x, rows, cols)
			row := make([]float32, cols)
			for ri := range rows {
				if err := DecodeRow(e, row, b, rows, cols, ri); err != nil {
					t.Fatal(err)
				}
				for c := range cols {
					if math.Float32bits(row[c]) != math.Float32bits(all[ri*cols+c]) {
						t.Fatalf("%v [%d, %d] row %d col %d: DecodeRow %v, Decode %v", e, rows, cols, ri, c, row[c], all[ri*cols+c])
					}
				}
			}
			for _, bad := range []int{-1, rows} {
				if err := DecodeRow(e, row, b, rows, cols, bad); err == nil {
					t.Errorf("%v: DecodeRow accepted row %d of %d", e, bad, rows)
				}
			}
			if rows > 0 {
				if err := DecodeRow(e, make([]float32, cols+1), b, rows, cols, 0); err == nil {
					t.Errorf("%v: DecodeRow accepted a destination of %d for %d cols", e, cols+1, cols)
				}
			}
		}
	}
}

// TestPortablePaths runs the copying code that big-endian hosts and
// misaligned buffers take, against the aliasing fast paths.
func TestPortablePaths(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{0, 1, 7, stageLen - 1, stageLen, 3*stageLen + 5} {
		x := randomF32Bits(r, n)

		b32 := make([]byte, 4*n)
		encodeF32Portable(b32, x)
		if want := encodeOK(t, F32, x, 1, n); !bytes.Equal(b32, want) {
			t.Fatalf("n=%d: portable f32 encode differs", n)
		}
		y := make([]float32, n)
		decodeF32Portable(y, b32)
		for i := range x {
			if math.Float32bits(y[i]) != math.Float32bits(x[i]) {
				t.Fatalf("n=%d: portable f32 decode element %d", n, i)
			}
		}

		for _, tc := range []struct {
			e      Encoding
			narrow func([]uint16, []float32)
			widen  func([]float32, []uint16)
		}{{F16, F32ToF16, F16ToF32}, {BF16, F32ToBF16, BF16ToF32}} {
			b16 := make([]byte, 2*n)
			encodeU16Portable(b16, x, tc.narrow)
			want := encodeOK(t, tc.e, x, 1, n)
			if !bytes.Equal(b16, want) {
				t.Fatalf("n=%d %v: portable encode differs", n, tc.e)
			}
			got, ref := make([]float32, n), make([]float32, n)
			decodeU16Portable(got, b16, tc.widen)
			if err := Decode(tc.e, ref, want, 1, n); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("n=%d %v: portable decode element %d", n, tc.e, i)
				}
			}
		}
	}
}

func TestViews(t *testing.T) {
	x := []float32{1, -2.5, float32(math.Inf(-1)), 3e-40}
	buf := make([]byte, 1+4*len(x)+8)
	for _, off := range []int{0, 1, 2, 4} { // 1 and 2 are misaligned for float32
		b := buf[off : off+4*len(x)]
		encodeF32Portable(b, x)
		v := F32View(b)
		for i := range x {
			if math.Float32bits(v[i]) != math.Float32bits(x[i]) {
				t.Fatalf("offset %d: F32View[%d] = %v, want %v", off, i, v[i], x[i])
			}
		}
		u := U16View(b)
		for i := range u {
			if want := binary.LittleEndian.Uint16(b[2*i:]); u[i] != want {
				t.Fatalf("offset %d: U16View[%d] = %#04x, want %#04x", off, i, u[i], want)
			}
		}
	}
	if HostLittleEndian {
		b := buf[4 : 4+4*len(x)]
		if v := F32View(b); &v[0] != (*float32)(unsafe.Pointer(&b[0])) {
			t.Error("F32View copied an aligned buffer on a little-endian host")
		}
	}
	for _, fn := range []func(){func() { F32View(make([]byte, 6)) }, func() { U16View(make([]byte, 3)) }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("view of a ragged length did not panic")
				}
			}()
			fn()
		}()
	}
}

func TestQ8Planes(t *testing.T) {
	rows, cols, g := 5, 129, 64
	x := weights(rand.New(rand.NewPCG(23, 24)), rows, cols)
	b := encodeOK(t, Q8Group(g), x, rows, cols)
	q, s, err := Q8Planes(b, rows, cols, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != rows*cols || len(s) != rows*3 {
		t.Fatalf("planes of %d quants, %d scales; want %d, %d", len(q), len(s), rows*cols, rows*3)
	}
	for i := range q {
		if byte(q[i]) != b[i] {
			t.Fatalf("quant %d = %d, byte %#x", i, q[i], b[i])
		}
	}
	qp := int(QuantsPlaneSize(rows, cols))
	for i := range s {
		if want := binary.LittleEndian.Uint16(b[qp+2*i:]); s[i] != want {
			t.Fatalf("scale %d = %#04x, want %#04x", i, s[i], want)
		}
	}
	if _, _, err := Q8Planes(b[:len(b)-1], rows, cols, g); err == nil {
		t.Error("Q8Planes accepted a short buffer")
	}
	if _, _, err := Q8Planes(b, rows, cols, 48); err == nil {
		t.Error("Q8Planes accepted group 48")
	}
	if q, s, err := Q8Planes(nil, 0, 0, 32); err != nil || len(q) != 0 || len(s) != 0 {
		t.Errorf("empty planes: %v %v %v", q, s, err)
	}
}

func benchmarkEncode(b *testing.B, e Encoding, workers int) {
	const rows, cols = 2048, 5632
	x := benchData(rows * cols)
	size, _ := e.Size(rows, cols)
	dst := make([]byte, size)
	b.SetBytes(4 * rows * cols) // input float32 bytes, so MB/s is the effective rate
	for b.Loop() {
		var err error
		if workers == 1 {
			err = Encode(e, dst, x, rows, cols)
		} else {
			err = EncodeParallel(context.Background(), e, dst, x, rows, cols, workers)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(rows*cols), "ns/weight")
	b.ReportMetric(float64(4*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

func BenchmarkEncodeQ8(b *testing.B)          { benchmarkEncode(b, Q8, 1) }
func BenchmarkEncodeQ8G128(b *testing.B)      { benchmarkEncode(b, Q8Group(128), 1) }
func BenchmarkEncodeQ8Parallel2(b *testing.B) { benchmarkEncode(b, Q8, 2) }
func BenchmarkEncodeQ4(b *testing.B)          { benchmarkEncode(b, Q4, 1) }
func BenchmarkEncodeQ4Parallel2(b *testing.B) { benchmarkEncode(b, Q4, 2) }
func BenchmarkEncodeF16(b *testing.B)         { benchmarkEncode(b, F16, 1) }

func BenchmarkDecodeQ8(b *testing.B) {
	const rows, cols = 2048, 5632
	x := benchData(rows * cols)
	size, _ := Q8.Size(rows, cols)
	enc := make([]byte, size)
	if err := Encode(Q8, enc, x, rows, cols); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * rows * cols)
	for b.Loop() {
		if err := Decode(Q8, x, enc, rows, cols); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(rows*cols), "ns/weight")
}

func TestEncodeMeasuredMatchesSeparatePass(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, e := range []Encoding{F32, F16, BF16, Q8, Q8Group(64), Q8Group(128)} {
		for _, sh := range [][2]int{{1, 1}, {7, 33}, {300, 1000}, {5, 129}} {
			rows, cols := sh[0], sh[1]
			src := make([]float32, rows*cols)
			for i := range src {
				src[i] = float32(rng.NormFloat64())
			}
			size, _ := e.Size(rows, cols)
			want := make([]byte, size)
			if err := Encode(e, want, src, rows, cols); err != nil {
				t.Fatal(err)
			}
			dec := make([]float32, rows*cols)
			if err := Decode(e, dec, want, rows, cols); err != nil {
				t.Fatal(err)
			}
			wantM := Compare(src, dec)
			for _, workers := range []int{1, 2, 3} {
				got := make([]byte, size)
				m, err := EncodeMeasured(context.Background(), e, got, src, rows, cols, workers)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%v %v workers %d: bytes differ from Encode", e, sh, workers)
				}
				// Chunked float32 block sums: agreement to ~1e-6 relative.
				if math.Abs(m.RelFrobenius-wantM.RelFrobenius) > 1e-6*wantM.RelFrobenius || m.MaxAbs != wantM.MaxAbs ||
					math.Abs(m.Cosine-wantM.Cosine) > 1e-7 {
					t.Errorf("%v %v workers %d: metrics %+v, separate pass %+v", e, sh, workers, m, wantM)
				}
			}
		}
	}
}
