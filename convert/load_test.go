package convert

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrink-llm/shrink/gguf"
)

// TestLoadThreadsAndRotary checks the split, pooled load against its
// definition: for every thread count, a plain tensor loads to the portable
// decoder's values, and a rotary-permuted one to rotaryToHalf of them, bit
// for bit, for float and block-quantized sources, on sizes whose rows cross
// chunk borders and rows longer than a chunk.
func TestLoadThreadsAndRotary(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	type tc struct {
		dt         DType
		ggml       gguf.TensorType
		heads, hd  int
		cols       int
		quantBlock bool
	}
	cases := []tc{
		{dt: DTypeBF16, heads: 3, hd: 8, cols: 5},
		{dt: DTypeF16, heads: 4, hd: 256, cols: 1000},                                     // 2 MB: rows cross chunk borders
		{dt: DTypeF32, heads: 2, hd: 4, cols: 333},                                        // direct read path
		{dt: DTypeF16, heads: 1, hd: 2, cols: loadChunkBytes/2 + 17},                      // one row is longer than a chunk
		{dt: "Q8_0", ggml: gguf.TypeQ8_0, heads: 4, hd: 64, cols: 4096, quantBlock: true}, // 2.2 MB of blocks
		{dt: "Q8_0", ggml: gguf.TypeQ8_0, heads: 2, hd: 2, cols: 32, quantBlock: true},
	}
	for ci := range 2 * len(cases) {
		c, finite := cases[ci/2], ci%2 == 1
		rows := c.heads * c.hd
		n := rows * c.cols
		var raw []byte
		want := make([]float32, n)
		if c.quantBlock {
			raw = randBytes(rng, n/32*34)
			if finite {
				for b := 0; b < len(raw); b += 34 {
					raw[b+1] &^= 0x40 // the f16 scale's top exponent bit
				}
			}
			if err := gguf.Dequantize(c.ggml, want, raw); err != nil {
				t.Fatal(err)
			}
		} else {
			es := int(c.dt.Size())
			raw = randBytes(rng, n*es)
			if finite {
				for b := es - 1; b < len(raw); b += es {
					raw[b] &^= 0x40 // the top exponent bit
				}
			}
			decodeLE(want, raw, c.dt)
		}
		wantBad := nonFiniteError(want, c.cols) != nil
		wantRot := make([]float32, n)
		rotaryToHalf(wantRot, want, rows, c.cols, c.hd)
		src := &SourceTensor{Name: "t", DType: c.dt, Shape: []int64{int64(rows), int64(c.cols)}, File: "f",
			r: bytes.NewReader(raw), size: int64(len(raw)), fromGGUF: c.quantBlock, ggml: c.ggml}
		for _, rot := range []bool{false, true} {
			d := whole("blk.0.attn_q.weight", src)
			exp := want
			if rot {
				d = rotaryPermuted("blk.0.attn_q.weight", src, int64(c.hd))
				exp = wantRot
			}
			for _, th := range []int{1, 2, 3, 7} {
				t.Run(fmt.Sprintf("%s_%dx%d_finite=%v_rot=%v_t%d", c.dt, rows, c.cols, finite, rot, th), func(t *testing.T) {
					got := make([]float32, n)
					for i := range got {
						got[i] = float32(math.NaN())
					}
					bad, err := d.load(context.Background(), got, th, true)
					if err != nil {
						t.Fatal(err)
					}
					if bad != wantBad {
						t.Errorf("non-finite reported %v, want %v", bad, wantBad)
					}
					for i := range exp {
						if math.Float32bits(got[i]) != math.Float32bits(exp[i]) {
							t.Fatalf("element %d (row %d) = %08x, want %08x", i, i/c.cols, math.Float32bits(got[i]), math.Float32bits(exp[i]))
						}
					}
				})
			}
		}
	}
}

// TestLoadShortSource checks that a source shorter than its declared rows
// fails with a one-line error at every thread count, naming the tensor.
func TestLoadShortSource(t *testing.T) {
	raw := make([]byte, 2*8*4-2)
	src := &SourceTensor{Name: "q", DType: DTypeBF16, Shape: []int64{8, 4}, File: "m.gguf", r: bytes.NewReader(raw), size: 2 * 8 * 4}
	for _, th := range []int{1, 2, 4} {
		for _, d := range []*TensorDesc{whole("blk.0.attn_q.weight", src), rotaryPermuted("blk.0.attn_q.weight", src, 4)} {
			_, err := d.load(context.Background(), make([]float32, 32), th, true)
			wantErr(t, err, "blk.0.attn_q.weight", "m.gguf", "EOF")
		}
	}
}

// TestNonFiniteRowsFromAnyThreads checks that the split non-finite scan
// names the same first weight as the whole one.
func TestNonFiniteRowsFromAnyThreads(t *testing.T) {
	const rows, cols = 37, 11
	x := make([]float32, rows*cols)
	x[20*cols+3] = float32(math.Inf(-1))
	x[30*cols+1] = float32(math.NaN())
	want := nonFiniteError(x, cols)
	if want == nil {
		t.Fatal("no error for an infinity")
	}
	for _, th := range []int{2, 3, 5, 37} {
		err := inParts(rows, 1, th, func(lo, hi int64) error {
			return nonFiniteFrom(x[lo*cols:hi*cols], cols, int(lo))
		})
		if err == nil || err.Error() != want.Error() {
			t.Errorf("%d threads: %v, want %v", th, err, want)
		}
	}
}
