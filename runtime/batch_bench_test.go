//go:build unix

package runtime

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBatchDecode reports the aggregate tokens/s of Batch steps over
// 1, 4, 8 and 16 sessions (after a 32-token prompt each), exact and tiled,
// at 2 threads (and the CPU time per token), on the .shrink file named by SHRINK_BATCH_BENCH (skipped
// without it): the ratio of the n-session to the 1-session figure is what
// a server gains from batching on that model.
func BenchmarkBatchDecode(b *testing.B) {
	path := os.Getenv("SHRINK_BATCH_BENCH")
	if path == "" {
		b.Skip("SHRINK_BATCH_BENCH names no .shrink file")
	}
	m, err := Open(path, Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	vocab := m.Config().VocabSize
	// The ceiling: one session's prefill of 64 tokens, the matrix-matrix
	// kernels over 16 tokens per weight tile.
	b.Run("prefill64", func(b *testing.B) {
		s, prompt := benchSession(b, m, 64, 64, 6)
		cpu0 := cpuTime()
		benchPrefills(b, s, prompt)
		b.ReportMetric((cpuTime()-cpu0).Seconds()*1e3/float64(64*b.N), "cpu-ms/tok")
	})
	for _, tiled := range []bool{false, true} {
		for _, n := range []int{1, 4, 8, 16} {
			b.Run(fmt.Sprintf("tiled=%v/seqs=%d", tiled, n), func(b *testing.B) {
				bt, err := m.NewBatch(n)
				if err != nil {
					b.Fatal(err)
				}
				bt.SetTiled(tiled)
				ss := make([]*Session, n)
				toks := make([]int, n)
				r := newRand(5)
				for i := range ss {
					if ss[i], err = m.NewSession(256); err != nil {
						b.Fatal(err)
					}
					defer ss[i].Close()
					if _, err := ss[i].Prefill(ctx, randTokens(r, 32, vocab), false); err != nil {
						b.Fatal(err)
					}
					toks[i] = 3 + i
				}
				b.ResetTimer()
				cpu0 := cpuTime()
				start := time.Now()
				for range b.N {
					if ss[0].Len() == ss[0].Cap() {
						for _, s := range ss {
							s.Reset()
						}
					}
					if _, err := bt.Decode(ctx, ss, toks); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "tok/s")
				// CPU time per token is the figure that a loaded machine
				// distorts least (stalls on memory count as CPU time).
				b.ReportMetric((cpuTime()-cpu0).Seconds()*1e3/float64(n*b.N), "cpu-ms/tok")
			})
		}
	}
}

// cpuTime is the process's user plus system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
