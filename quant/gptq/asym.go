package gptq

import (
	"fmt"
	"math"
	"runtime"

	"github.com/shrink-llm/shrink/lowrank"
)

// AsymmetricTarget returns the weights to round when the rounded matrix
// must reproduce the uncompressed model's output W·X while it is fed the
// compressed model's inputs X̃ (asymmetric calibration, as GPTAQ/GPTQv2
// calls it). With H = X̃X̃ᵀ and D = (X − X̃)·X̃ᵀ,
//
//	‖W·X − Q·X̃‖² + λ‖Q − W‖² = tr((Q − W*)·Hd·(Q − W*)ᵀ) + const,
//	W* = W + W·D·Hd⁻¹,  Hd = H + λI (the damping f was made with),
//
// so GPTQ's pass rounding W* under H minimizes the asymmetric objective
// exactly as it minimizes the symmetric one: the closed form moves the
// whole correction into the target, before any column is rounded, rather
// than feeding it along with each column's rounding error. alpha scales
// the correction (1: the least-squares target; 0: W itself; between: a
// shrunk correction, which a short calibration's noisy D may need).
//
// w is rows×cols row-major (not modified); d is the full cols×cols matrix
// D (row-major, D[i][j] = Σ_t (x_i − x̃_i)·x̃_j over the same tokens as H);
// f is the factor of the same H (NewFactor), without activation order or
// with it (the factor's column order is undone here). Dead columns (no
// input energy in X̃) get 0, as the pass zeroes them. The work is two
// rows×cols×cols products on lowrank's GEMM with threads workers.
func AsymmetricTarget(w []float32, rows, cols int, d []float64, f *Factor, alpha float64, threads int) ([]float32, error) {
	n := cols
	switch {
	case f == nil || f.n != n:
		return nil, fmt.Errorf("gptq: asymmetric target: no factor of %d columns", n)
	case len(w) != rows*n:
		return nil, fmt.Errorf("gptq: asymmetric target: %d weights, want %d×%d", len(w), rows, n)
	case len(d) != n*n:
		return nil, fmt.Errorf("gptq: asymmetric target: D has %d entries, want %d", len(d), n*n)
	case math.IsNaN(alpha) || math.IsInf(alpha, 0):
		return nil, fmt.Errorf("gptq: asymmetric target: alpha %v", alpha)
	}
	for i, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("gptq: asymmetric target: D[%d, %d] is %v", i/n, i%n, v)
		}
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	out := make([]float32, rows*n)
	if alpha == 0 || rows == 0 {
		copy(out, w)
		return out, nil
	}
	w64 := make([]float64, rows*n)
	for i, v := range w {
		w64[i] = float64(v)
	}
	// M = W·D, its columns in the factor's order: Mp[:, a] = M[:, perm[a]].
	m := make([]float64, rows*n)
	lowrank.Gemm(threads, false, false, rows, n, n, 1, w64, n, d, n, 0, m, n)
	mp := w64 // W is no longer needed
	for r := range rows {
		src, dst := m[r*n:(r+1)*n], mp[r*n:(r+1)*n]
		for a, c := range f.perm {
			dst[a] = src[c]
		}
	}
	// Hd⁻¹ in the factor's order is UᵀU: Z = (Mp·Uᵀ)·U.
	lowrank.Gemm(threads, false, true, rows, n, n, 1, mp, n, f.u, n, 0, m, n)
	lowrank.Gemm(threads, false, false, rows, n, n, 1, m, n, f.u, n, 0, mp, n)
	for r := range rows {
		z, src, dst := mp[r*n:(r+1)*n], w[r*n:(r+1)*n], out[r*n:(r+1)*n]
		for a, c := range f.perm {
			if f.dead[c] {
				continue
			}
			dst[c] = float32(float64(src[c]) + alpha*z[a])
		}
	}
	return out, nil
}
