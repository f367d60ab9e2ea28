package membw

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"

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

// readAll consumes every byte of b. With assembly kernels it is the runtime's
// own AVX2 dot product (both operands are the same memory: the second load
// hits L1, so DRAM sees one stream); without (-tags noasm, other CPUs) it is
// a Go loop folding 64-byte lines with XOR, which on this class of machine
// reads within a few percent of the assembly, so the bandwidth — a property
// of the machine — does not depend on how shrink was built.
func readAll(b []float32) float32 {
	if simd.Accelerated() {
		var s float32
		for i := 0; i < len(b); i += chunk {
			c := b[i:min(i+chunk, len(b))]
			s += simd.DotF32(c, c)
		}
		return s
	}
	return float32(xorFold(b))
}

// xorFold reads b 64 bytes at a time with four independent chains.
func xorFold(b []float32) uint64 {
	n := len(b) / 2
	w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), n)
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+16 <= n; i += 16 {
		c := (*[16]uint64)(w[i : i+16])
		s0 |= c[0] ^ c[1] ^ c[2] ^ c[3]
		s1 |= c[4] ^ c[5] ^ c[6] ^ c[7]
		s2 |= c[8] ^ c[9] ^ c[10] ^ c[11]
		s3 |= c[12] ^ c[13] ^ c[14] ^ c[15]
	}
	for ; i < n; i++ {
		s0 |= w[i]
	}
	return s0 | s1 | s2 | s3
}

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
			*out = readAll(part)
		}(p.buf[lo:hi], &p.sink[t])
	}
	wg.Wait()
	return time.Since(start)
}
