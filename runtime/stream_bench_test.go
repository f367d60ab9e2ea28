package runtime

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/internal/membw"

	"github.com/shrink-llm/shrink/quant"
)

// BenchmarkMatVecStream measures matrix-vector products over a set of
// weights far larger than the last-level cache, as decode sees them: the
// GB/s it reports is the weight bytes streamed per second, to be set
// against the machine's memory bandwidth (internal/membw).
func BenchmarkMatVecStream(b *testing.B) {
	const rows, cols, total = 5632, 2048, 256 << 20
	probe, err := membw.New(512 << 20)
	if err != nil {
		b.Fatal(err)
	}
	r := newRand(7)
	vals := randn(r, rows*cols, 0.02)
	for _, enc := range []quant.Encoding{quant.F32, quant.F16, quant.BF16, quant.Q8} {
		sz, _ := enc.Size(rows, cols)
		data := make([]byte, sz)
		if err := quant.EncodeParallel(context.Background(), enc, data, vals, rows, cols, 2); err != nil {
			b.Fatal(err)
		}
		n := int(max(1, total/sz))
		ms := make([]*Matrix, n)
		for i := range ms {
			cp := make([]byte, sz)
			copy(cp, data)
			m, err := NewMatrix(DenseWeight("w", []int64{rows, cols}, enc, cp))
			if err != nil {
				b.Fatal(err)
			}
			ms[i] = m
		}
		x := randn(r, cols, 1)
		y := make([]float32, rows)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/threads=%d", enc, threads), func(b *testing.B) {
				p := newPool(threads)
				defer p.close()
				e := newExec(p, false)
				e.reserve(1, ms...)
				bw, err := probe.Measure(context.Background(), threads, 3)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					e.mul(ms[i%n], y, x, 1, false)
				}
				got := float64(sz) * float64(b.N) / time.Since(start).Seconds()
				b.ReportMetric(got/1e9, "GB/s")
				b.ReportMetric(100*got/bw, "%probe")
			})
		}
	}
}
