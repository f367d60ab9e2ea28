package gptq

// lazyUpdate applies a finished block's scaled errors to the columns after
// it, block [b0, b1): row[b1:] -= Σ_jj errs[jj]·U[jj, b1:] in jj order for
// each of wb's rb rows (stride n); errs is rb × bs, U is n × n. nz is
// scratch, returned for reuse.
//
// It is the plain column-by-column loop with four error columns applied
// per pass over a row, so each row is loaded and stored a quarter as often.
// Each element still sees the same operations in the same order, and zero
// errors are still skipped (subtracting 0·u could turn −0 into +0), so the
// result is bit-identical to the plain loop (lazyUpdateRef).
func lazyUpdate(wb []float32, rb, n, b0, b1 int, errs []float32, bs int, u []float32, nz []int) []int {
	w := n - b1
	for r := range rb {
		row := wb[r*n+b1 : (r+1)*n]
		er := errs[r*bs : r*bs+b1-b0]
		nz = nz[:0]
		for i, ev := range er {
			if ev != 0 {
				nz = append(nz, i)
			}
		}
		i := 0
		for ; i+4 <= len(nz); i += 4 {
			j0, j1, j2, j3 := nz[i], nz[i+1], nz[i+2], nz[i+3]
			e0, e1, e2, e3 := er[j0], er[j1], er[j2], er[j3]
			u0 := u[(b0+j0)*n+b1:][:w]
			u1 := u[(b0+j1)*n+b1:][:w]
			u2 := u[(b0+j2)*n+b1:][:w]
			u3 := u[(b0+j3)*n+b1:][:w]
			row := row[:w]
			for k := range row {
				v := row[k]
				v -= e0 * u0[k]
				v -= e1 * u1[k]
				v -= e2 * u2[k]
				v -= e3 * u3[k]
				row[k] = v
			}
		}
		for ; i < len(nz); i++ {
			j := nz[i]
			ev := er[j]
			ur := u[(b0+j)*n+b1:][:w]
			for k, uv := range ur {
				row[k] -= ev * uv
			}
		}
	}
	return nz
}
