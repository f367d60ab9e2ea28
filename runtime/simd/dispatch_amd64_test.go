//go:build !noasm && gc

package simd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrink-llm/shrink/internal/cpu"
)

// testFeatureSets lists the pure-Go path and every assembly path this CPU can
// run, so each is checked against the references.
func testFeatureSets() []namedFeatures {
	d := cpu.Detected()
	sets := []namedFeatures{{"go", features{}}}
	if d.AVX2 {
		sets = append(sets, namedFeatures{"avx2", features{AVX2: true}})
	}
	if d.AVX512 {
		sets = append(sets, namedFeatures{"avx512", features{AVX2: true, AVX512: true}})
	}
	if d.VNNI {
		sets = append(sets, namedFeatures{"avx512vnni", features{AVX2: true, AVX512: true, VNNI: true}})
	}
	return sets
}

// TestDispatchFollowsCPULevels lowers the levels through internal/cpu (as a
// test of another package would) and checks that the exported calls switch
// kernels with them and still agree with the references: a q8 matrix product
// on the VNNI tile, Rows and AVX2 paths, and a float one on the AVX-512 tile
// and AVX2 paths, against the pure-Go walk of the same shapes. (The levels
// themselves are checked against /proc/cpuinfo in internal/cpu.)
func TestDispatchFollowsCPULevels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const rows, tokens, n, group = 9, 5, 192, 32
	w := randF32(r, rows*n)
	x := randF32(r, tokens*n)
	wq, ws := randQ8(r, rows*n, -127), randF16(r, rows*n/group)
	xq, xs := make([]int8, tokens*n), make([]float32, tokens*n/group)
	for u := range tokens {
		quantizeQ8Go(xq[u*n:(u+1)*n], xs[u*n/group:(u+1)*n/group], x[u*n:(u+1)*n], group)
	}
	wantF := make([]float32, tokens*rows)
	matF32With(features{}, wantF, rows, w, n, x, n, rows, tokens, n, false)
	wantQ := make([]float32, tokens*rows)
	matQ8With(features{}, wantQ, rows, wq, ws, n, n/group, xq, xs, n, n/group, rows, tokens, n, group, false)
	for _, fs := range testFeatureSets() {
		restore := cpu.SetForTesting(fs.f)
		got := current()
		acc := Accelerated()
		gotF := make([]float32, tokens*rows)
		MatF32(gotF, rows, w, n, x, n, rows, tokens, n, false)
		gotQ := make([]float32, tokens*rows)
		MatQ8(gotQ, rows, wq, ws, n, n/group, xq, xs, n, n/group, rows, tokens, n, group, false)
		restore()
		if got != fs.f || acc != fs.f.AVX2 {
			t.Fatalf("%s: dispatch sees %+v (accelerated %v), want %+v", fs.name, got, acc, fs.f)
		}
		for i := range wantF {
			if d := math.Abs(float64(gotF[i] - wantF[i])); d > 1e-3*(1+math.Abs(float64(wantF[i]))) {
				t.Errorf("%s MatF32[%d] = %v, reference %v", fs.name, i, gotF[i], wantF[i])
			}
			if d := math.Abs(float64(gotQ[i] - wantQ[i])); d > 1e-3*(1+math.Abs(float64(wantQ[i]))) {
				t.Errorf("%s MatQ8[%d] = %v, reference %v", fs.name, i, gotQ[i], wantQ[i])
			}
		}
	}
}
