package lowrank

import (
	"fmt"
	"math"
	"testing"
)

// spdMatrix is X·Xᵀ/k + λI for a random n×k X with columns scaled over
// several orders of magnitude (calibration statistics look like this: a
// few directions carry most of the energy), row-major, full.
func spdMatrix(seed uint64, n int, lambda float64) []float64 {
	r := newRand(seed)
	k := n + 8
	x := make([]float64, n*k)
	for i := range n {
		s := math.Pow(10, 3*float64(i%7)/6) // 1 … 1000
		for j := range k {
			x[i*k+j] = s * r.NormFloat64()
		}
	}
	a := make([]float64, n*n)
	for i := range n {
		for j := i; j < n; j++ {
			s := dotF64(x[i*k:(i+1)*k], x[j*k:(j+1)*k]) / float64(k)
			a[i*n+j], a[j*n+i] = s, s
		}
		a[i*n+i] += lambda
	}
	return a
}

// invCholRef is the definition, unblocked: the Cholesky factorization
// a = R·Rᵀ from the last column (R upper), then U = R⁻¹ by back
// substitution.
func invCholRef(a []float64, n int) ([]float64, bool) {
	r := make([]float64, n*n)
	for i := range n {
		copy(r[i*n+i:(i+1)*n], a[i*n+i:(i+1)*n])
	}
	for j := n - 1; j >= 0; j-- {
		var s float64
		for k := j + 1; k < n; k++ {
			s += r[j*n+k] * r[j*n+k]
		}
		d := r[j*n+j] - s
		if !(d > 0) {
			return nil, false
		}
		d = math.Sqrt(d)
		r[j*n+j] = d
		for i := range j {
			var t float64
			for k := j + 1; k < n; k++ {
				t += r[i*n+k] * r[j*n+k]
			}
			r[i*n+j] = (r[i*n+j] - t) / d
		}
	}
	u := make([]float64, n*n)
	for j := range n {
		// Column j of U solves R·u = e_j; U is upper, so u_i = 0 for i > j.
		for i := j; i >= 0; i-- {
			var s float64
			if i == j {
				s = 1
			}
			for k := i + 1; k <= j; k++ {
				s -= r[i*n+k] * u[k*n+j]
			}
			u[i*n+j] = s / r[i*n+i]
		}
	}
	return u, true
}

func TestInverseCholeskyUpper(t *testing.T) {
	for _, n := range []int{1, 2, 7, 255, 256, 257, 300, 513, 700} {
		for _, th := range []int{1, 3} {
			t.Run(fmt.Sprintf("n=%d/threads=%d", n, th), func(t *testing.T) {
				a := spdMatrix(uint64(n), n, 1e-3)
				want, ok := invCholRef(a, n)
				if !ok {
					t.Fatal("reference: not positive definite")
				}
				got := append([]float64(nil), a...)
				// Only the upper triangle is input: poison the lower.
				for i := 1; i < n; i++ {
					for j := range i {
						got[i*n+j] = math.NaN()
					}
				}
				if !InverseCholeskyUpper(got, n, th) {
					t.Fatal("reported not positive definite")
				}
				var worst, scale float64
				for i := range n {
					for j := i; j < n; j++ {
						scale = max(scale, math.Abs(want[i*n+j]))
					}
				}
				for i := range n {
					for j := i; j < n; j++ {
						worst = max(worst, math.Abs(got[i*n+j]-want[i*n+j]))
					}
				}
				if worst > 1e-9*scale || math.IsNaN(worst) {
					t.Fatalf("max |U − U_ref| = %g (max |U_ref| %g)", worst, scale)
				}
				// And the defining property: U·a·Uᵀ = I, over the upper U.
				if n <= 300 {
					checkWhitens(t, a, got, n)
				}
			})
		}
	}
}

// checkWhitens checks U·a·Uᵀ = I for the upper triangle U of u.
func checkWhitens(t *testing.T, a, u []float64, n int) {
	t.Helper()
	ua := make([]float64, n*n)
	for i := range n {
		for k := i; k < n; k++ {
			c := u[i*n+k]
			for j := range n {
				ua[i*n+j] += c * a[k*n+j]
			}
		}
	}
	var worst float64
	for i := range n {
		for j := range n {
			var s float64
			for k := j; k < n; k++ {
				s += ua[i*n+k] * u[j*n+k]
			}
			if i == j {
				s--
			}
			worst = max(worst, math.Abs(s))
		}
	}
	if worst > 1e-8 {
		t.Fatalf("max |U·a·Uᵀ − I| = %g", worst)
	}
}

func TestInverseCholeskyUpperNotPD(t *testing.T) {
	for _, n := range []int{3, 300} {
		a := spdMatrix(5, n, 1e-3)
		a[(n/2)*n+n/2] = -1 // a negative diagonal: no factorization
		if InverseCholeskyUpper(a, n, 2) {
			t.Fatalf("n=%d: a matrix with a negative diagonal was factored", n)
		}
	}
}

func BenchmarkInverseCholeskyUpper(b *testing.B) {
	for _, n := range []int{2048} {
		a := spdMatrix(1, n, 1e-2)
		w := make([]float64, len(a))
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				copy(w, a)
				InverseCholeskyUpper(w, n, 1)
			}
		})
	}
}
