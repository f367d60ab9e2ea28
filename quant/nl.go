package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// KindQ4NL (q4nl) is 4-bit quants on non-uniform levels: weight i of a
// group decodes to d·NLLevels[q_i], with one signed float16 d per group. It
// has q4s's planes (a 4-bit lo plane and one float16 per group in the sup
// plane), so the sizes are q4s's; only the meaning of a quant differs. The
// levels are int8 so that a kernel can look them up (a 16-byte shuffle) and
// multiply them by int8 activations exactly.

// NLLevels is q4nl's level table, ascending. It is the Lloyd-Max fit
// (FitNLLevels from evenly spaced levels, scaled so the most negative level
// is −127; converged after 13 rounds) of every eighth row of the 384-column
// projections of llama-stories-12m in groups of 32, each group under the
// scale the encoder would choose; TestNLLevelsFit re-derives it. The
// middle levels are about evenly spaced (14–15 apart) and the outer ones
// spread (20–28 apart): the group's largest magnitude sits alone at an end,
// so the ends are worth less resolution. The encoder picks the sign of d,
// so a group's largest magnitude can land on either end.
var NLLevels = [16]int8{-127, -104, -85, -69, -54, -39, -25, -10, 5, 19, 33, 47, 62, 79, 99, 127}

// Q4NL returns the non-uniform 4-bit encoding with groups of group weights.
func Q4NL(group int) Encoding { return Encoding{Kind: KindQ4NL, Bits: 4, Group: group} }

// nlTable is NLLevels as float32 with the rounding thresholds between
// neighbouring levels.
type nlTable struct {
	lv  [16]float32
	mid [15]float32
}

func newNLTable(levels *[16]int8) *nlTable {
	t := new(nlTable)
	for i, v := range levels {
		t.lv[i] = float32(v)
	}
	for i := range t.mid {
		t.mid[i] = (t.lv[i] + t.lv[i+1]) / 2
	}
	return t
}

var nlDefault = newNLTable(&NLLevels)

// nearest is the index of the level nearest v (the lower one on a tie).
func (t *nlTable) nearest(v float32) uint8 {
	// Branch-light binary search over the 15 thresholds.
	i := 0
	for _, step := range [4]int{8, 4, 2, 1} {
		if j := i + step; j <= 15 && v > t.mid[j-1] {
			i = j
		}
	}
	return uint8(i)
}

// nlSearch is the number of trial inverse scales on each side of the
// plain one, in steps of one level unit (the extreme level ± nlSearch).
const nlSearch = 8

// fitNLGroup returns the scale d (signed) minimizing Σ w·(d·L[q] − x)²
// over the trials: for each end of the table (the group's largest
// magnitude mapped onto the lowest or the highest level) and each trial
// inverse scale (that level ± k units), it rounds the group to the nearest
// levels and solves for d by least squares given those levels, keeping the
// best.
func fitNLGroup(t *nlTable, x, w []float32) float32 {
	var m float32
	for _, v := range x {
		if abs32(v) > abs32(m) {
			m = v
		}
	}
	if m == 0 {
		return 0
	}
	var sxx float64
	for i, v := range x {
		sxx += float64(w[i] * v * v)
	}
	best, bestD := math.MaxFloat64, m/t.lv[0]
	for _, end := range [2]float32{t.lv[0], t.lv[15]} {
		for k := -nlSearch; k <= nlSearch; k++ {
			is := (end + float32(k)*sign32(end)) / m
			var sxl, sll float64
			for i, v := range x {
				l := t.lv[t.nearest(v*is)]
				sxl += float64(w[i] * v * l)
				sll += float64(w[i] * l * l)
			}
			if sll == 0 {
				continue
			}
			if err := sxx - sxl*sxl/sll; err < best {
				best, bestD = err, float32(sxl/sll)
			}
		}
	}
	return bestD
}

func sign32(v float32) float32 {
	if v < 0 {
		return -1
	}
	return 1
}

// encodeQ4NLRow fits each group's scale (fitNLGroup), stores it as float16
// and rounds every weight to the nearest level under the stored scale.
func encodeQ4NLRow(s *packedScratch, sup []byte, x, imp []float32, group int) (int, error) {
	t := nlDefault
	zero := t.nearest(0)
	clear(s.q)
	for g := range len(sup) / 2 {
		lo, hi := g*group, min((g+1)*group, len(x))
		w := s.ones[:hi-lo]
		if imp != nil {
			w = imp[lo:hi]
		}
		d := fitNLGroup(t, x[lo:hi], w)
		bits, dq, ok := f16Scale(abs32(d))
		if !ok {
			return lo, fmt.Errorf("%w: scale %v", ErrScaleRange, d)
		}
		if d < 0 {
			bits |= 0x8000
			dq = -dq
		}
		binary.LittleEndian.PutUint16(sup[2*g:], bits)
		q := s.q[lo:hi]
		if dq == 0 {
			for i := range q {
				q[i] = zero
			}
			continue
		}
		id := 1 / dq
		for i, v := range x[lo:hi] {
			q[i] = t.nearest(v * id)
		}
		// The padding columns keep quant 0 (level −127) under the group's
		// scale: they multiply activations that are zero.
	}
	return 0, nil
}

// FitNLLevels is the Lloyd-Max fit of a 16-level table to x, read as rows
// of cols weights in groups of group: starting from start (ascending), it
// alternates fitting each group's scale to the table (as the encoder does)
// with moving each level to the mean of the normalized weights x/d nearest
// it, iters times, and returns the table scaled so that its most negative
// level is −127, rounded to integers. It is how NLLevels was derived.
func FitNLLevels(x []float32, cols, group, iters int, start [16]int8) [16]int8 {
	lv := start
	ones := make([]float32, group)
	for i := range ones {
		ones[i] = 1
	}
	for range iters {
		t := newNLTable(&lv)
		var sum, cnt [16]float64
		for r0 := 0; r0+cols <= len(x); r0 += cols {
			row := x[r0 : r0+cols]
			for lo := 0; lo < cols; lo += group {
				g := row[lo:min(lo+group, cols)]
				d := fitNLGroup(t, g, ones[:len(g)])
				if d == 0 {
					continue
				}
				for _, v := range g {
					u := v / d
					k := t.nearest(u)
					sum[k] += float64(u)
					cnt[k]++
				}
			}
		}
		var f [16]float64
		for k := range f {
			f[k] = float64(t.lv[k])
			if cnt[k] > 0 {
				f[k] = sum[k] / cnt[k]
			}
		}
		slices.Sort(f[:])
		sc := -127 / f[0]
		for k := range lv {
			lv[k] = int8(max(-127, min(127, math.Round(f[k]*sc))))
		}
	}
	return lv
}

// decodeQ4NLGroup writes d·NLLevels[q_i] for the quants of one group.
func decodeQ4NLGroup(out []float32, q []uint8, d float32) {
	for i, v := range q {
		out[i] = d * nlDefault.lv[v&15]
	}
}
