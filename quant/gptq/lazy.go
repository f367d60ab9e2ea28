package gptq

import "github.com/shrink-llm/shrink/lowrank"

// lazyScratch is one worker's float64 operands of the lazy update, sized
// for its rows once: c holds up to rb×cols of the rows, a the rb×BlockSize
// errors.
type lazyScratch struct {
	c, a []float64
}

func newLazyScratch(rb, cols, bs int) lazyScratch {
	return lazyScratch{c: make([]float64, rb*cols), a: make([]float64, rb*bs)}
}

// lazyUpdate applies a finished block's scaled errors to the columns after
// it, block [b0, b1): row[b1:] −= Σ_jj errs[jj]·U[jj, b1:] for each of
// wb's rb rows (stride n); errs is rb × bs, U is n × n (upper part read).
//
// This is where the pass spends its flops (rows·cols²/2 over a matrix,
// against rows·cols·BlockSize/2 inside the blocks), so it runs as one
// matrix product C −= E·U_block on lowrank's packed GEMM, in float64: the
// block's rows are widened once per block (1/BlockSize of the product's
// work), multiplied, and rounded back to float32 once per element instead
// of once per column as a float32 loop would. One thread: the pass already
// runs a worker per row block.
func lazyUpdate(wb []float32, rb, n, b0, b1 int, errs []float32, bs int, u []float64, s *lazyScratch) {
	w, k := n-b1, b1-b0
	if w <= 0 || k <= 0 {
		return
	}
	sc, sa := s.c[:rb*w], s.a[:rb*k]
	for r := range rb {
		c := sc[r*w : (r+1)*w]
		for i, v := range wb[r*n+b1 : (r+1)*n] {
			c[i] = float64(v)
		}
		a := sa[r*k : (r+1)*k]
		for i, v := range errs[r*bs : r*bs+k] {
			a[i] = float64(v)
		}
	}
	lowrank.Gemm(1, false, false, rb, w, k, -1, sa, k, u[b0*n+b1:], n, 1, sc, w)
	for r := range rb {
		row := wb[r*n+b1 : (r+1)*n]
		for i, v := range sc[r*w : (r+1)*w] {
			row[i] = float32(v)
		}
	}
}
