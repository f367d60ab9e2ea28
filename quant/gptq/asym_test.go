package gptq

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// asymLayer makes a synthetic layer: T inputs x (rows of x, T×n) with a
// few strong directions and uneven channels, the compressed model's inputs
// x̃ = x + noise·(perturbation correlated with x), a weight matrix, and
// H = X̃X̃ᵀ, D = (X − X̃)X̃ᵀ as the calibration pass accumulates them.
func asymLayer(seed uint64, rows, n, T int, noise float64) (w []float32, x, xq, h, d []float64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	src := newSpiky(rng, 5, n, 0.7, 3)
	mix := make([]float64, n*n) // the perturbation: a fixed linear map of x plus fresh noise
	for i := range mix {
		mix[i] = rng.NormFloat64() / math.Sqrt(float64(n))
	}
	x = make([]float64, T*n)
	xq = make([]float64, T*n)
	for t := range T {
		row := x[t*n : (t+1)*n]
		src.draw(rng, row)
		q := xq[t*n : (t+1)*n]
		for i := range q {
			var s float64
			for j := range n {
				s += mix[i*n+j] * row[j]
			}
			q[i] = row[i] + noise*(s+0.2*src.scale[i]*rng.NormFloat64())
		}
	}
	h = make([]float64, n*n)
	d = make([]float64, n*n)
	for t := range T {
		xr, qr := x[t*n:(t+1)*n], xq[t*n:(t+1)*n]
		for i := range n {
			for j := range n {
				h[i*n+j] += qr[i] * qr[j]
				d[i*n+j] += (xr[i] - qr[i]) * qr[j]
			}
		}
	}
	w = make([]float32, rows*n)
	for i := range w {
		w[i] = float32(0.05 * rng.NormFloat64())
	}
	return w, x, xq, h, d
}

// asymObjective is Σ_t ‖W·x_t − Q·x̃_t‖².
func asymObjective(w, q []float32, x, xq []float64, rows, n int) float64 {
	var s float64
	T := len(x) / n
	for r := range rows {
		wr, qr := w[r*n:(r+1)*n], q[r*n:(r+1)*n]
		for t := range T {
			var a, b float64
			for i := range n {
				a += float64(wr[i]) * x[t*n+i]
				b += float64(qr[i]) * xq[t*n+i]
			}
			s += (a - b) * (a - b)
		}
	}
	return s
}

// TestAsymmetricTargetNormalEquations: W* solves the damped least-squares
// problem min ‖W·X − Q·X̃‖² + λ‖Q − W‖², i.e. W*·(H + λI) = W·(H + D + λI),
// with and without activation order (the factor's column order must be
// undone), and alpha scales the correction linearly.
func TestAsymmetricTargetNormalEquations(t *testing.T) {
	for _, actOrder := range []bool{false, true} {
		rows, n := 7, 48
		w, _, _, h, d := asymLayer(3, rows, n, 400, 0.3)
		f, err := NewFactor(h, n, Options{ActOrder: actOrder, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		var mean float64
		for i := range n {
			mean += h[i*n+i]
		}
		lambda := DefaultPercDamp * mean / float64(n)
		ws, err := AsymmetricTarget(w, rows, n, d, f, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		var worst, norm float64
		for r := range rows {
			for j := range n {
				var lhs, rhs float64
				for i := range n {
					hd := h[i*n+j]
					if i == j {
						hd += lambda
					}
					lhs += float64(ws[r*n+i]) * hd
					rhs += float64(w[r*n+i]) * (hd + d[i*n+j])
				}
				worst = max(worst, math.Abs(lhs-rhs))
				norm = max(norm, math.Abs(rhs))
			}
		}
		if worst > 1e-4*norm {
			t.Errorf("act order %v: W*·Hd differs from W·(Hd + D) by %.3g (scale %.3g)", actOrder, worst, norm)
		}
		half, err := AsymmetricTarget(w, rows, n, d, f, 0.5, 2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range w {
			want := (float64(w[i]) + float64(ws[i])) / 2
			if math.Abs(float64(half[i])-want) > 1e-5*(math.Abs(want)+1e-3) {
				t.Fatalf("act order %v: alpha 0.5 gives %v at %d, want the midpoint %v", actOrder, half[i], i, want)
			}
		}
	}
}

// TestAsymmetricBeatsSymmetric: when the compressed model's inputs differ
// from the uncompressed model's, GPTQ rounding the asymmetric target has a
// lower asymmetric objective ‖W·X − Q·X̃‖² than GPTQ rounding W itself
// under the same H; when they are the same (D = 0) the bytes are GPTQ's.
func TestAsymmetricBeatsSymmetric(t *testing.T) {
	cases := []struct {
		enc   quant.Encoding
		noise float64
	}{
		{quant.Q4S(32), 0.3},
		{quant.Q4S(32), 0.1},
		{quant.Q4S(32), 0.02},
		{quant.Q4, 0.3},
		{quant.QK(3, 32), 0.2},
		{quant.Q8Group(32), 0.2},
	}
	rows, n := 16, 256
	for i, c := range cases {
		w, x, xq, h, d := asymLayer(uint64(20+i), rows, n, 1200, c.noise)
		f, err := NewFactor(h, n, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		opt := Options{Threads: 2, Factor: f, RefitGroups: true}
		_, sym := quantize(t, c.enc, w, rows, n, nil, opt)
		ws, err := AsymmetricTarget(w, rows, n, d, f, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		ba, asym := quantize(t, c.enc, ws, rows, n, nil, opt)
		// The same through Options.Cross, factoring H inside the pass.
		bo, _ := quantize(t, c.enc, w, rows, n, h, Options{Threads: 2, RefitGroups: true, Cross: d, AsymAlpha: 1})
		if !bytes.Equal(ba, bo) {
			t.Errorf("%v noise %.2f: Options.Cross gives other bytes than rounding AsymmetricTarget's output", c.enc, c.noise)
		}
		es, ea := asymObjective(w, sym, x, xq, rows, n), asymObjective(w, asym, x, xq, rows, n)
		floor := asymObjective(w, w, x, xq, rows, n) // unquantized W on X̃
		t.Logf("%v noise %.2f: asymmetric objective GPTQ %.5g, GPTAQ %.5g (ratio %.3f); W itself on X̃ %.5g", c.enc, c.noise, es, ea, ea/es, floor)
		if !(ea < es) {
			t.Errorf("%v noise %.2f: asymmetric target's objective %.6g is not below GPTQ's %.6g", c.enc, c.noise, ea, es)
		}

		// Same inputs: D = 0, the target is W and the bytes are GPTQ's.
		_, x2, xq2, h2, d2 := asymLayer(uint64(20+i), rows, n, 300, 0)
		for k := range x2 {
			if x2[k] != xq2[k] {
				t.Fatal("noise 0 left the inputs different")
			}
		}
		f2, err := NewFactor(h2, n, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		ws2, err := AsymmetricTarget(w, rows, n, d2, f2, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		opt2 := Options{Threads: 2, Factor: f2, RefitGroups: true}
		b1, _ := quantize(t, c.enc, w, rows, n, nil, opt2)
		b2, _ := quantize(t, c.enc, ws2, rows, n, nil, opt2)
		if !bytes.Equal(b1, b2) {
			t.Errorf("%v: with X̃ = X the asymmetric pass's bytes differ from GPTQ's", c.enc)
		}
	}
}

// TestAsymmetricTargetChecks: mismatched sizes and non-finite D are
// refused.
func TestAsymmetricTargetChecks(t *testing.T) {
	w, _, _, h, d := asymLayer(5, 3, 32, 100, 0.2)
	f, err := NewFactor(h, 32, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]float64(nil), d...)
	bad[37] = math.NaN()
	for name, call := range map[string]func() error{
		"short D":   func() error { _, err := AsymmetricTarget(w, 3, 32, d[:100], f, 1, 1); return err },
		"short W":   func() error { _, err := AsymmetricTarget(w[:90], 3, 32, d, f, 1, 1); return err },
		"NaN in D":  func() error { _, err := AsymmetricTarget(w, 3, 32, bad, f, 1, 1); return err },
		"no factor": func() error { _, err := AsymmetricTarget(w, 3, 32, d, nil, 1, 1); return err },
		"Inf alpha": func() error { _, err := AsymmetricTarget(w, 3, 32, d, f, math.Inf(1), 1); return err },
	} {
		if call() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
