package runtime

import (
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// TestMulSharedMixedPacked: q, k and v in different packed encodings (the
// table-driven q4nl among linear ones) fuse into one dispatch over one
// activation quantization and give exactly what separate products give.
func TestMulSharedMixedPacked(t *testing.T) {
	rng := newRand(21)
	const cols = 160
	p := newPool(2)
	defer p.close()
	for _, encs := range [][]quant.Encoding{
		{quant.Q4NL(32), quant.Q4, quant.Q4S(32)},
		{quant.Q4, quant.Q4NL(64), quant.QK(6, 32)},
		{quant.Q4NL(128), quant.Q4NL(32)},
	} {
		var ms []*Matrix
		for i, enc := range encs {
			m, err := NewMatrix(denseT(t, rng, "w", enc, 40+8*i, cols, 0.1))
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		for _, T := range []int{1, 4} {
			X := randn(rng, T*cols, 1)
			Ys := make([][]float32, len(ms))
			for i, m := range ms {
				Ys[i] = make([]float32, T*m.Rows())
			}
			newExec(p, false).mulShared(ms, Ys, X, T)
			for i, m := range ms {
				y := make([]float32, T*m.Rows())
				newExec(p, false).mul(m, y, X, T, false)
				if !slices.Equal(y, Ys[i]) {
					t.Fatalf("%v T=%d part %d (%v): fused product differs", encs, T, i, encs[i])
				}
			}
		}
	}
}
