package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// TestEncodeMeasuredSameBitsAnyWorkers: the metrics of a parallel encode
// are bit-identical whatever the worker count and however the chunks fall
// to the workers (they used to be summed per worker, in whatever order the
// chunks were taken, so a stored metric read 1 or 0.9999999999999999 from
// run to run).
func TestEncodeMeasuredSameBitsAnyWorkers(t *testing.T) {
	const rows, cols = 4096, 1000 // 16 chunks of parallel work
	rng := rand.New(rand.NewPCG(3, 4))
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(rng.NormFloat64()) * float32(1+i%7)
	}
	for _, e := range []Encoding{F16, BF16, Q8, Q8Group(128)} {
		size, err := e.Size(rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, size)
		want, err := EncodeMeasured(context.Background(), e, dst, src, rows, cols, 1)
		if err != nil {
			t.Fatal(err)
		}
		for rep := range 6 {
			for _, workers := range []int{2, 3, 4, 8} {
				got, err := EncodeMeasured(context.Background(), e, dst, src, rows, cols, workers)
				if err != nil {
					t.Fatal(err)
				}
				for i, pair := range [][2]float64{{got.RelFrobenius, want.RelFrobenius}, {got.SNRdB, want.SNRdB}, {got.Cosine, want.Cosine}, {got.MaxAbs, want.MaxAbs}} {
					if math.Float64bits(pair[0]) != math.Float64bits(pair[1]) {
						t.Fatalf("%v, %d workers, run %d: metric %d is %v, with 1 worker %v", e, workers, rep, i, pair[0], pair[1])
					}
				}
			}
		}
	}
}
