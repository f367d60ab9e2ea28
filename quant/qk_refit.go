package quant

// RefitSubScales fits group g's scale and offset to x (the group's current
// weights; w, when not nil, weights each one's squared error) as the
// KindQK encoder does, but under the super-block's stored (d, dmin): the
// 6-bit pair is rewritten in sub (a row of the sub plane) and the decoded
// scale d·sc and offset dmin·mn are returned. GPTQ-style rounding calls it
// when it reaches a group, so the group's parameters see the error fed to
// it from the columns before, while the super-block's float16 pair stays
// as chosen when the super-block began.
func (e Encoding) RefitSubScales(sub, sup []byte, g int, x, w []float32) (a, m float32) {
	if w == nil {
		w = make([]float32, len(x))
		for i := range w {
			w[i] = 1
		}
	}
	scale, off := fitGroup(x, w, 1<<e.Bits-1)
	sb := g * e.Group / SuperBlock
	d := HalfToFloat(uint16(sup[4*sb]) | uint16(sup[4*sb+1])<<8)
	dm := HalfToFloat(uint16(sup[4*sb+2]) | uint16(sup[4*sb+3])<<8)
	var sc, mn uint8
	if d > 0 {
		sc = uint8(min(max(RoundHalfAway(scale/d), 0), subMax))
	}
	if dm > 0 {
		mn = uint8(min(max(RoundHalfAway(off/dm), 0), subMax))
	}
	nmax := 1<<e.Bits - 1
	osc, omn := SubScales(sub, g)
	if groupError(x, w, d*float32(osc), dm*float32(omn), nmax) <= groupError(x, w, d*float32(sc), dm*float32(mn), nmax) {
		sc, mn = osc, omn
	}
	putSubScales(sub, g, sc, mn)
	return d * float32(sc), dm * float32(mn)
}

// groupError is Σ w·(x − x̂)² for x rounded to nearest under scale a and
// offset m (x̂ = a·q − m, q in [0, nmax]).
func groupError(x, w []float32, a, m float32, nmax int) float64 {
	var s float64
	for i, v := range x {
		var dq float32
		if a != 0 {
			q := min(max(RoundHalfAway(min(max((v+m)/a, -256), 256)), 0), float32(nmax))
			dq = a*q - m
		} else {
			dq = -m
		}
		d := float64(v - dq)
		s += float64(w[i]) * d * d
	}
	return s
}

// SetSubScales stores group g's 6-bit scale and offset (each 0…63; higher
// bits are dropped) in sub, a row of a KindQK sub plane: group g then
// decodes with a = d·sc and m = dmin·mn under its super-block's pair.
func (e Encoding) SetSubScales(sub []byte, g int, sc, mn uint8) {
	putSubScales(sub, g, sc, mn)
}
