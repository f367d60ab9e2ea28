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

func BenchmarkDotF32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range benchLengths {
		w, x := randF32(r, n), randF32(r, n)
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			benchPaths(b, 4*n, func(b *testing.B, f features) {
				for b.Loop() {
					benchSink += dotF32With(f, w, x)
				}
			})
		})
	}
}

func BenchmarkDotF16(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range benchLengths {
		w, x := randF16(r, n), randF32(r, n)
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			benchPaths(b, 2*n, func(b *testing.B, f features) {
				for b.Loop() {
					benchSink += dotF16With(f, w, x)
				}
			})
		})
	}
}

func BenchmarkDotBF16(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 3))
	for _, n := range benchLengths {
		w, x := randBF16(r, n), randF32(r, n)
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			benchPaths(b, 2*n, func(b *testing.B, f features) {
				for b.Loop() {
					benchSink += dotBF16With(f, w, x)
				}
			})
		})
	}
}

func BenchmarkDotQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 4))
	for _, group := range []int{32, 64, 128} {
		for _, n := range benchLengths {
			ng := (n + group - 1) / group
			wq, xq := randQ8(r, n, -127), randQ8(r, n, -127)
			ws, xs := randF16(r, ng), randF32(r, ng)
			b.Run(fmt.Sprintf("g=%d/n=%d", group, n), func(b *testing.B) {
				benchPaths(b, n+2*ng, func(b *testing.B, f features) {
					for b.Loop() {
						benchSink += dotQ8With(f, wq, ws, xq, xs, group)
					}
				})
			})
		}
	}
}

func BenchmarkDotF32x4(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 1))
	for _, n := range benchLengths {
		w, x := randF32(r, 4*n), randF32(r, n)
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			benchPaths(b, 4*4*n, func(b *testing.B, f features) {
				var out [4]float32
				for b.Loop() {
					dotF32x4With(f, &out, w, n, x)
				}
				benchSink += out[0]
			})
		})
	}
}

func BenchmarkDotF16x4(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, n := range benchLengths {
		w, x := randF16(r, 4*n), randF32(r, n)
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			benchPaths(b, 4*2*n, func(b *testing.B, f features) {
				var out [4]float32
				for b.Loop() {
					dotF16x4With(f, &out, w, n, x)
				}
				benchSink += out[0]
			})
		})
	}
}

func BenchmarkDotBF16x4(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 3))
	for _, n := range benchLengths {
		w, x := randBF16(r, 4*n), randF32(r, n)
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			benchPaths(b, 4*2*n, func(b *testing.B, f features) {
				var out [4]float32
				for b.Loop() {
					dotBF16x4With(f, &out, w, n, x)
				}
				benchSink += out[0]
			})
		})
	}
}

func BenchmarkDotQ8x4(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 4))
	for _, group := range []int{32, 64, 128} {
		for _, n := range benchLengths {
			ng := (n + group - 1) / group
			wq, xq := randQ8(r, 4*n, -127), randQ8(r, n, -127)
			ws, xs := randF16(r, 4*ng), randF32(r, ng)
			b.Run(fmt.Sprintf("g=%d/n=%d", group, n), func(b *testing.B) {
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
