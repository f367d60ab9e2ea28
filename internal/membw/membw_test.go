package membw

import (
	"context"
	"testing"

	"github.com/shrink-llm/shrink/runtime/simd"
)

func TestMeasure(t *testing.T) {
	p, err := New(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2, 3} {
		bw, err := p.Measure(context.Background(), threads, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !(bw > 0) {
			t.Errorf("threads %d: bandwidth %v, want > 0", threads, bw)
		}
		if simd.Accelerated() {
			// Every element is 1, so each share sums to the pairs it
			// reads: half its length, plus an odd last element.
			var sum float32
			want := 0
			share := (len(p.buf) + threads - 1) / threads
			for i, s := range p.sink[:threads] {
				sum += s
				n := min(share, len(p.buf)-min(i*share, len(p.buf)))
				want += n/2 + n%2
			}
			if int(sum) != want {
				t.Errorf("threads %d: summed %v pairs, want %d", threads, sum, want)
			}
		}
	}
}

func TestXorFoldReadsEverything(t *testing.T) {
	for _, n := range []int{0, 1, 2, 31, 32, 33, 100, 1000} {
		b := make([]float32, n)
		if got := xorFold(b); got != 0 {
			t.Fatalf("n=%d zeros: %x", n, got)
		}
		// A single set bit anywhere in the whole 64-bit words must show.
		for i := 0; i < n/2*2; i++ {
			clear(b)
			b[i] = 1
			if xorFold(b) == 0 {
				t.Fatalf("n=%d: element %d not read", n, i)
			}
		}
	}
}

func TestBadArgs(t *testing.T) {
	tests := []struct {
		name            string
		size            int64
		threads, passes int
	}{
		{"tiny buffer", 1000, 1, 1},
		{"no threads", 2 << 20, 0, 1},
		{"no passes", 2 << 20, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.size)
			if err == nil {
				_, err = p.Measure(context.Background(), tc.threads, tc.passes)
			}
			if err == nil {
				t.Error("want an error")
			}
		})
	}
}

func BenchmarkProbe1GiB(b *testing.B) {
	p, err := New(0)
	if err != nil {
		b.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		b.Run("threads="+string(rune('0'+threads)), func(b *testing.B) {
			var bw float64
			for range b.N {
				bw, _ = p.Measure(context.Background(), threads, 1)
			}
			b.ReportMetric(bw/1e9, "GB/s")
		})
	}
}
