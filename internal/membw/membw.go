package membw

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shrink-llm/shrink/runtime/simd"
)

// Probe is a reusable bandwidth probe over one buffer. Allocating and
// faulting in the buffer is the slow part, so one Probe serves several
// measurements.
type Probe struct {
	buf []float32
	// sink keeps the sums alive so the reads cannot be optimized away.
	sink []float32
}

// DefaultBytes is the buffer size New uses for 0: 1 GiB, some thirty times
// the L3 cache of current server parts.
const DefaultBytes = 1 << 30

// New allocates and touches a buffer of about size bytes (0 = DefaultBytes).
func New(size int64) (*Probe, error) {
	if size == 0 {
		size = DefaultBytes
	}
	if size < 1<<20 {
		return nil, fmt.Errorf("membw: buffer of %d bytes is too small to measure memory (want ≥ 1 MiB)", size)
	}
	n := int(size / 4)
	p := &Probe{buf: make([]float32, n)}
	// Write every page so that the timed passes read memory, not the
	// shared zero page or page faults.
	for i := range p.buf {
		p.buf[i] = 1
	}
	return p, nil
}

// Bytes is the size of the buffer each pass reads.
func (p *Probe) Bytes() int64 { return int64(len(p.buf)) * 4 }

// Measure returns the best read bandwidth in bytes/s over passes passes
// (≥ 1) of threads goroutines, each reading a contiguous 1/threads share of
// the buffer.
func (p *Probe) Measure(ctx context.Context, threads, passes int) (float64, error) {
	if threads < 1 || passes < 1 {
		return 0, fmt.Errorf("membw: need at least one thread and one pass, got %d and %d", threads, passes)
	}
	if cap(p.sink) < threads {
		p.sink = make([]float32, threads)
	}
	best := 0.0
	for range passes {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		d := p.pass(threads)
		best = max(best, float64(p.Bytes())/d.Seconds())
	}
	return best, nil
}

// chunk is how many floats one kernel call reads: 256 KiB keeps the call
// overhead negligible while the loop stays a plain stream.
const chunk = 64 << 10

func (p *Probe) pass(threads int) time.Duration {
	var wg sync.WaitGroup
	share := (len(p.buf) + threads - 1) / threads
	start := time.Now()
	for t := range threads {
		lo := min(t*share, len(p.buf))
		hi := min(lo+share, len(p.buf))
		wg.Add(1)
		go func(part []float32, out *float32) {
			defer wg.Done()
			var s float32
			for i := 0; i < len(part); i += chunk {
				b := part[i:min(i+chunk, len(part))]
				// Both operands are the same memory: the second load
				// hits L1, so DRAM traffic is one stream.
				s += simd.DotF32(b, b)
			}
			*out = s
		}(p.buf[lo:hi], &p.sink[t])
	}
	wg.Wait()
	return time.Since(start)
}
