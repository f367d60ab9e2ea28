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

// readAll consumes every byte of b as two sequential streams read side by
// side, its two halves: one core reads two streams faster than one (on the
// machine in BENCHMARKS.md about a fifth more), and the runtime's one-token
// kernels read two, so a one-stream probe would understate the roofline
// they work against. With assembly kernels it is the runtime's own AVX2 dot
// product of the two halves; without (-tags noasm, other CPUs) a Go loop
// folding 64-byte lines of both halves with XOR, so the bandwidth — a
// property of the machine — does not depend on how shrink was built. For a
// buffer of ones the result is the number of pairs read: half of b, plus
// its odd last element.
func readAll(b []float32) float32 {
	if simd.Accelerated() {
		h := len(b) / 2
		var s float32
		for i := 0; i < h; i += chunk {
			n := min(chunk, h-i)
			s += simd.DotF32(b[i:i+n], b[h+i:h+i+n])
		}
		if len(b)%2 == 1 {
			s += b[len(b)-1] * b[len(b)-1]
		}
		return s
	}
	return float32(xorFold(b))
}

// xorFold reads b's 64-bit words as two streams, its two halves, a 64-byte
// line of each at a time with two independent chains per stream.
func xorFold(b []float32) uint64 {
	n := len(b) / 2
	w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), n)
	h := n / 2 &^ 7 // whole lines per stream
	var s0, s1, s2, s3 uint64
	for i := 0; i < h; i += 8 {
		c, d := (*[8]uint64)(w[i:i+8]), (*[8]uint64)(w[h+i:h+i+8])
		s0 |= c[0] ^ c[1] ^ c[2] ^ c[3]
		s1 |= c[4] ^ c[5] ^ c[6] ^ c[7]
		s2 |= d[0] ^ d[1] ^ d[2] ^ d[3]
		s3 |= d[4] ^ d[5] ^ d[6] ^ d[7]
	}
	for i := 2 * h; i < n; i++ {
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
