package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

var benchLengths = []int{2048, 5632}

// benchSink keeps results live so the calls are not optimised away.
var benchSink float32

// benchPaths runs body once per path: "asm" is the dispatched default
// (current()), "go" the pure-Go reference. SetBytes counts weight bytes
// read per call, so MB/s is weight bandwidth.
func benchPaths(b *testing.B, weightBytes int, body func(b *testing.B, f features)) {
	for _, p := range []namedFeatures{{"asm", current()}, {"go", features{}}} {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(weightBytes))
			body(b, p.f)
		})
	}
}

// benchDotFormat benchmarks one float weight format's single-row kernel
// (rows=1) and four-row kernel (rows=4) at each length; size is its bytes per
// weight.
func benchDotFormat[W any](b *testing.B, seed uint64, size int, randW func(*rand.Rand, int) []W,
	dot func(features, []W, []float32) float32, dot4 func(features, *[4]float32, []W, int, []float32)) {
	r := rand.New(rand.NewPCG(1, seed))
	for _, n := range benchLengths {
		w, x := randW(r, 4*n), randF32(r, n)
		b.Run(fmt.Sprintf("n=%d/rows=1", n), func(b *testing.B) {
			benchPaths(b, size*n, func(b *testing.B, f features) {
				for b.Loop() {
					benchSink += dot(f, w[:n], x)
				}
			})
		})
		b.Run(fmt.Sprintf("n=%d/rows=4", n), func(b *testing.B) {
			benchPaths(b, 4*size*n, func(b *testing.B, f features) {
				var out [4]float32
				for b.Loop() {
					dot4(f, &out, w, n, x)
				}
				benchSink += out[0]
			})
		})
	}
}

func BenchmarkDotF32(b *testing.B)  { benchDotFormat(b, 1, 4, randF32, dotF32With, dotF32x4With) }
func BenchmarkDotF16(b *testing.B)  { benchDotFormat(b, 2, 2, randF16, dotF16With, dotF16x4With) }
func BenchmarkDotBF16(b *testing.B) { benchDotFormat(b, 3, 2, randBF16, dotBF16With, dotBF16x4With) }

// BenchmarkDotQ8 is benchDotFormat for q8 weights (one float16 scale per
// group) at each group size.
func BenchmarkDotQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 4))
	for _, group := range []int{32, 64, 128} {
		for _, n := range benchLengths {
			ng := (n + group - 1) / group
			wq, xq := randQ8(r, 4*n, -127), randQ8(r, n, -127)
			ws, xs := randF16(r, 4*ng), randF32(r, ng)
			b.Run(fmt.Sprintf("g=%d/n=%d/rows=1", group, n), func(b *testing.B) {
				benchPaths(b, n+2*ng, func(b *testing.B, f features) {
					for b.Loop() {
						benchSink += dotQ8With(f, wq[:n], ws[:ng], xq, xs, group)
					}
				})
			})
			b.Run(fmt.Sprintf("g=%d/n=%d/rows=4", group, n), func(b *testing.B) {
				benchPaths(b, 4*(n+2*ng), func(b *testing.B, f features) {
					var out [4]float32
					for b.Loop() {
						dotQ8x4With(f, &out, wq, ws, n, ng, xq, xs, group)
					}
					benchSink += out[0]
				})
			})
		}
	}
}

func BenchmarkQuantizeQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 1))
	for _, n := range benchLengths {
		x := randF32(r, n)
		xq, xs := make([]int8, n), make([]float32, n/32)
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			for b.Loop() {
				QuantizeQ8(xq, xs, x, 32)
			}
		})
	}
}
