package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The packed low-bit encodings (KindQK: q2…q6 and their larger-group
// variants; KindQ4S: plain symmetric int4) share one planar layout, so that
// the runtime streams each plane with whole-vector loads:
//
//  1. lo plane: the low LoBits (4, or 2 for q2/q3) bits of every quant;
//  2. hi plane: the remaining HiBits (q3, q5: 1; q6: 2; else none);
//  3. sub plane (KindQK only): per group a 6-bit scale and a 6-bit offset;
//  4. sup plane: float16 values — KindQK: (d, dmin) per super-block of 256
//     weights; KindQ4S: one scale per group.
//
// Each plane starts 64-aligned and is row-major with a fixed number of bytes
// per row. A row's quants are padded with zeros to PaddedCols (cols rounded
// up to 32), then cut into chunks of 128 weights, the last chunk shorter
// (32, 64 or 96) when PaddedCols is not a multiple of 128. A chunk of h
// weights in a plane of p bits per weight is s = h·p/8 bytes; byte j holds
// weight j + k·s of the chunk in bits [k·p, (k+1)·p), for k < 8/p. For the
// nibble plane that is "byte j = w[j] | w[j+64]<<4": one 64-byte load,
// VPAND 0x0F and VPSRLW 4 give two vectors of 64 consecutive weights each,
// which line up with two consecutive 64-byte loads of int8 activations.

const (
	// PackBlock is the unit of packing and of the activation scales the
	// runtime pairs with packed weights: rows are padded to whole blocks.
	PackBlock = 32
	// SuperBlock is the number of weights sharing one (d, dmin) pair in
	// KindQK; the last super-block of a row is shorter when cols % 256 ≠ 0.
	SuperBlock = 256
	// PackChunk is the span of one interleaved chunk of a plane.
	PackChunk = 128
	// subMax is the largest 6-bit sub-scale.
	subMax = 63
)

// ErrScaleRange is wrapped by packed-encoding errors for a group whose
// magnitudes need a scale beyond the float16 range.
var ErrScaleRange = errors.New("value too large for a float16 scale")

// QK returns the two-level asymmetric encoding with bits-bit quants and
// groups of group weights (q4 = QK(4, 32)).
func QK(bits, group int) Encoding { return Encoding{Kind: KindQK, Bits: bits, Group: group} }

// Q4 is the default 4-bit encoding, about 4.5 bits per weight.
var Q4 = QK(4, DefaultGroup)

// Q4S returns plain symmetric int4 with one float16 scale per group.
func Q4S(group int) Encoding { return Encoding{Kind: KindQ4S, Bits: 4, Group: group} }

// parsePacked reads q2…q6, q4g64, q4s, q4sg128 and the llama.cpp-style
// aliases q4_k (= q4) and q4_0 (= q4s).
func parsePacked(t string) (Encoding, bool) {
	switch t {
	case "q2_k":
		return QK(2, 32), true
	case "q3_k":
		return QK(3, 32), true
	case "q4_k":
		return Q4, true
	case "q5_k":
		return QK(5, 32), true
	case "q6_k":
		return QK(6, 32), true
	case "q4_0":
		return Q4S(32), true
	}
	rest, ok := strings.CutPrefix(t, "q")
	if !ok || len(rest) < 1 {
		return Encoding{}, false
	}
	bits, err := strconv.Atoi(rest[:1])
	if err != nil {
		return Encoding{}, false
	}
	e := QK(bits, DefaultGroup)
	rest = rest[1:]
	if r, ok := strings.CutPrefix(rest, "s"); ok {
		e.Kind, rest = KindQ4S, r
	} else if r, ok := strings.CutPrefix(rest, "nl"); ok {
		e.Kind, rest = KindQ4NL, r
	}
	if r, ok := strings.CutPrefix(rest, "g"); ok {
		g, err := strconv.Atoi(r)
		if err != nil || r == "" || r[0] == '0' || r[0] == '+' {
			return Encoding{}, false
		}
		e.Group, rest = g, ""
	}
	if rest != "" || e.Validate() != nil {
		return Encoding{}, false
	}
	return e, true
}

func (e Encoding) validatePacked() error {
	switch e.Group {
	case 32, 64, 128:
	default:
		return fmt.Errorf("%s group size %d not supported (want 32, 64 or 128)", e.familyName(), e.Group)
	}
	if e.Kind == KindQ4S || e.Kind == KindQ4NL {
		if e.Bits != 4 {
			return fmt.Errorf("%s with %d bits: it has 4", e.familyName(), e.Bits)
		}
		return nil
	}
	if e.Bits < 2 || e.Bits > 6 {
		return fmt.Errorf("packed encoding with %d bits not supported (want 2…6)", e.Bits)
	}
	return nil
}

// familyName is a grouped encoding's name without its group: q8, q2…q6,
// q4s, q4nl (the 4-bit families by their kind, whatever Bits says).
func (e Encoding) familyName() string {
	if e.Kind == KindQK {
		return "q" + strconv.Itoa(e.Bits)
	}
	return kindNames[e.Kind]
}

// Layout is where the planes of a packed [rows, cols] tensor lie; see the
// comment at the top of qk.go. All offsets are from the start of the part.
type Layout struct {
	Rows, Cols     int
	PaddedCols     int // cols rounded up to PackBlock
	LoBits, HiBits int
	Groups         int // scale groups per row
	SuperBlocks    int // KindQK: (d, dmin) pairs per row
	// Bytes per row in each plane.
	LoRow, HiRow, SubRow, SupRow int
	LoAt, HiAt, SubAt, SupAt     int64
	Size                         int64
}

// Layout computes the plane layout of a packed encoding. The shape must
// already have passed Size's checks (Size calls it after them).
func (e Encoding) Layout(rows, cols int) Layout {
	l := Layout{Rows: rows, Cols: cols, PaddedCols: (cols + PackBlock - 1) / PackBlock * PackBlock}
	l.LoBits = 4
	if e.Bits < 4 {
		l.LoBits = 2
	}
	l.HiBits = e.Bits - l.LoBits
	l.Groups = e.Groups(cols)
	l.LoRow = l.PaddedCols * l.LoBits / 8
	l.HiRow = l.PaddedCols * l.HiBits / 8
	if e.Kind == KindQ4S || e.Kind == KindQ4NL {
		l.SupRow = 2 * l.Groups
	} else {
		l.SuperBlocks = (cols + SuperBlock - 1) / SuperBlock
		l.SubRow = 3 * ((l.Groups + 1) / 2)
		l.SupRow = 4 * l.SuperBlocks
	}
	r := int64(rows)
	l.LoAt = 0
	l.HiAt = align(r*int64(l.LoRow), PlaneAlign)
	l.SubAt = l.HiAt + align(r*int64(l.HiRow), PlaneAlign)
	l.SupAt = l.SubAt + align(r*int64(l.SubRow), PlaneAlign)
	l.Size = l.SupAt + r*int64(l.SupRow)
	return l
}

// PackedPlanes splits an encoded packed tensor into its four planes (hi and
// sub may be empty); the sup plane is viewed as float16 bit patterns like
// U16View. It fails when b is not exactly the size the shape calls for.
func PackedPlanes(e Encoding, b []byte, rows, cols int) (lo, hi, sub []byte, sup []uint16, l Layout, err error) {
	if !e.IsPacked() {
		return nil, nil, nil, nil, l, fmt.Errorf("packed planes: %v is not a packed encoding", e)
	}
	size, err := e.Size(rows, cols)
	if err != nil {
		return nil, nil, nil, nil, l, fmt.Errorf("%v planes of [%d, %d]: %w", e, rows, cols, err)
	}
	if int64(len(b)) != size {
		return nil, nil, nil, nil, l, fmt.Errorf("%v planes of [%d, %d]: have %d bytes, want %d", e, rows, cols, len(b), size)
	}
	l = e.Layout(rows, cols)
	r := int64(rows)
	lo = b[l.LoAt : l.LoAt+r*int64(l.LoRow)]
	hi = b[l.HiAt : l.HiAt+r*int64(l.HiRow)]
	sub = b[l.SubAt : l.SubAt+r*int64(l.SubRow)]
	sup = U16View(b[l.SupAt:])
	return lo, hi, sub, sup, l, nil
}

// PackPlane writes the low p bits of q[i] >> shift for the len(q) weights of
// one row (len(q) a multiple of PackBlock) into dst (len(q)·p/8 bytes) in
// the chunked bit-plane order described at the top of this file.
func PackPlane(dst []byte, q []uint8, shift, p int) {
	clear(dst)
	mask := uint8(1)<<p - 1
	for c0 := 0; c0 < len(q); c0 += PackChunk {
		h := min(PackChunk, len(q)-c0)
		s := h * p / 8
		d := dst[c0*p/8 : c0*p/8+s]
		for i, v := range q[c0 : c0+h] {
			d[i%s] |= (v >> shift & mask) << (i / s * p)
		}
	}
}

// UnpackPlane is PackPlane's inverse: it ORs each weight's p bits, shifted
// left by shift, into q (len(q) a multiple of PackBlock).
func UnpackPlane(q []uint8, src []byte, shift, p int) {
	mask := uint8(1)<<p - 1
	for c0 := 0; c0 < len(q); c0 += PackChunk {
		h := min(PackChunk, len(q)-c0)
		s := h * p / 8
		d := src[c0*p/8 : c0*p/8+s]
		for i := range q[c0 : c0+h] {
			q[c0+i] |= (d[i%s] >> (i / s * p) & mask) << shift
		}
	}
}

// SubScales returns the 6-bit scale and offset of group g from a row of the
// sub plane: pair k = g/2 is the 24-bit little-endian word at 3k, group 2k
// in its bits 0–11 and group 2k+1 in bits 12–23, each as scale | offset<<6.
func SubScales(sub []byte, g int) (sc, mn uint8) {
	b := sub[3*(g/2):]
	w := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	v := w >> (12 * (g & 1))
	return uint8(v & 63), uint8(v >> 6 & 63)
}

func putSubScales(sub []byte, g int, sc, mn uint8) {
	b := sub[3*(g/2):]
	w := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	sh := 12 * (g & 1)
	w = w&^(0xfff<<sh) | (uint32(sc&63)|uint32(mn&63)<<6)<<sh
	b[0], b[1], b[2] = byte(w), byte(w>>8), byte(w>>16)
}

// packedScratch is the per-row working memory of the packed encoders.
type packedScratch struct {
	q     []uint8   // PaddedCols quants
	scale []float32 // per group
	off   []float32 // per group
	ones  []float32
}

func newPackedScratch(l Layout, group int) *packedScratch {
	s := &packedScratch{
		q:     make([]uint8, l.PaddedCols),
		scale: make([]float32, l.Groups),
		off:   make([]float32, l.Groups),
		ones:  make([]float32, group),
	}
	for i := range s.ones {
		s.ones[i] = 1
	}
	return s
}

// encodePackedRows encodes rows [r0, r1) of a packed encoding. imp, when
// not nil, holds a non-negative importance per column (calibration
// activation energy) that weights the scale search's squared error.
func encodePackedRows(e Encoding, dst []byte, src []float32, rows, cols, r0, r1 int, imp []float32) error {
	l := e.Layout(rows, cols)
	s := newPackedScratch(l, e.Group)
	for r := r0; r < r1; r++ {
		x := src[r*cols : (r+1)*cols]
		if m := maxAbsBits(x); m >= f32InfBits {
			for i, v := range x {
				if math.Float32bits(v)&0x7fffffff >= f32InfBits {
					return &rowError{enc: e, row: r, col: i, rows: rows, cols: cols, err: fmt.Errorf("%w %v", ErrNonFinite, v)}
				}
			}
		}
		lo := dst[l.LoAt+int64(r*l.LoRow):][:l.LoRow]
		hi := dst[l.HiAt+int64(r*l.HiRow):][:l.HiRow]
		sub := dst[l.SubAt+int64(r*l.SubRow):][:l.SubRow]
		sup := dst[l.SupAt+int64(r*l.SupRow):][:l.SupRow]
		var col int
		var err error
		switch e.Kind {
		case KindQ4S:
			col, err = encodeQ4SRow(s, sup, x, e.Group)
		case KindQ4NL:
			col, err = encodeQ4NLRow(s, sup, x, imp, e.Group)
		default:
			col, err = encodeQKRow(s, sub, sup, x, imp, e)
		}
		if err != nil {
			return &rowError{enc: e, row: r, col: col, rows: rows, cols: cols, err: err}
		}
		PackPlane(lo, s.q, 0, l.LoBits)
		if l.HiBits > 0 {
			PackPlane(hi, s.q, l.LoBits, l.HiBits)
		}
	}
	return nil
}

// f16Scale rounds a non-negative scale to float16, failing past its range.
func f16Scale(v float32) (uint16, float32, bool) {
	b := f32BitsToF16(math.Float32bits(v))
	if b >= 0x7c00 {
		return 0, 0, false
	}
	return b, HalfToFloat(b), true
}

// encodeQ4SRow is plain symmetric int4 round to nearest, the usual first
// attempt: per group, d = m/−8 with m the element of largest magnitude
// (so m itself is the level −8), q = clamp(round(x/d), −8, 7) + 8.
func encodeQ4SRow(s *packedScratch, sup []byte, x []float32, group int) (int, error) {
	clear(s.q)
	for g := range len(sup) / 2 {
		lo, hi := g*group, min((g+1)*group, len(x))
		var m float32
		for _, v := range x[lo:hi] {
			if abs32(v) > abs32(m) {
				m = v
			}
		}
		bits, d, ok := f16Scale(abs32(m) / 8)
		if !ok {
			return lo, fmt.Errorf("%w: |%v|", ErrScaleRange, m)
		}
		if m > 0 {
			bits |= 0x8000
			d = -d
		}
		binary.LittleEndian.PutUint16(sup[2*g:], bits)
		if d == 0 {
			for i := lo; i < hi; i++ {
				s.q[i] = 8
			}
			continue
		}
		id := 1 / d
		for i, v := range x[lo:hi] {
			q := int(RoundHalfAway(v*id)) + 8
			s.q[lo+i] = uint8(min(max(q, 0), 15))
		}
	}
	return 0, nil
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// RoundHalfAway rounds to the nearest integer, ties away from zero, for
// the small magnitudes (|v| < 2^23) the encoders produce. It is exported so
// that encoders outside this package (GPTQ) round exactly as ours do.
func RoundHalfAway(v float32) float32 {
	h := float32(0.5)
	if v < 0 {
		h = -0.5
	}
	return float32(int32(v + h))
}

// encodeQKRow fits every group's scale and offset (fitGroup), quantizes
// them to 6 bits under one float16 (d, dmin) per super-block, and then
// rounds each weight against the scale and offset actually stored.
func encodeQKRow(s *packedScratch, sub, sup []byte, x, imp []float32, e Encoding) (int, error) {
	G, nmax := e.Group, 1<<e.Bits-1
	clear(s.q)
	clear(sub)
	for g := range s.scale {
		lo, hi := g*G, min((g+1)*G, len(x))
		w := s.ones[:hi-lo]
		if imp != nil {
			w = imp[lo:hi]
		}
		s.scale[g], s.off[g] = fitGroup(x[lo:hi], w, nmax)
	}
	perSB := SuperBlock / G
	for sb := range len(sup) / 4 {
		g0, g1 := sb*perSB, min((sb+1)*perSB, len(s.scale))
		var ms, mo float32
		for g := g0; g < g1; g++ {
			ms = max(ms, s.scale[g])
			mo = max(mo, s.off[g])
		}
		db, d, ok := f16Scale(ms / subMax)
		mb, dm, ok2 := f16Scale(mo / subMax)
		if !ok || !ok2 {
			return g0 * G, fmt.Errorf("%w: a group's range %v needs a super-block scale beyond float16", ErrScaleRange, max(ms, mo)*float32(nmax))
		}
		binary.LittleEndian.PutUint16(sup[4*sb:], db)
		binary.LittleEndian.PutUint16(sup[4*sb+2:], mb)
		for g := g0; g < g1; g++ {
			var sc, mn uint8
			if d > 0 {
				sc = uint8(min(max(RoundHalfAway(s.scale[g]/d), 0), subMax))
			}
			if dm > 0 {
				mn = uint8(min(max(RoundHalfAway(s.off[g]/dm), 0), subMax))
			}
			putSubScales(sub, g, sc, mn)
			st, ot := d*float32(sc), dm*float32(mn)
			lo, hi := g*G, min((g+1)*G, len(x))
			if st == 0 {
				continue // every weight decodes to −ot; quants stay 0
			}
			id := 1 / st
			for i, v := range x[lo:hi] {
				q := int(RoundHalfAway((v + ot) * id))
				s.q[lo+i] = uint8(min(max(q, 0), nmax))
			}
		}
	}
	return 0, nil
}

// Search grid of fitGroup: trial inverse scales (nmax + fitLo + fitStep·i)
// / (max − min) for i ≤ fitSteps, around the plain nmax/(max − min).
const (
	fitLo    = -1
	fitStep  = 0.1
	fitSteps = 20
)

// fitGroup finds a scale s ≥ 0 and offset o ≥ 0 such that x ≈ s·L − o with
// integer L in [0, nmax], minimizing Σ w·(s·L − o − x)². For each trial
// inverse scale it rounds the group to levels L and then solves the
// weighted least-squares problem for (s, −o) given those levels exactly (a
// 2×2 system; o clamped at 0, which K-quants also require, since the
// offset is stored unsigned), keeping the best.
func fitGroup(x, w []float32, nmax int) (scale, off float32) {
	return fitGroupTrials(x, w, nmax, true)
}

// fitGroupTrials is fitGroup; with paired false it gathers every trial on
// its own, the plain loop that the paired one must match bit for bit.
func fitGroupTrials(x, w []float32, nmax int, paired bool) (scale, off float32) {
	xmin, xmax := x[0], x[0]
	for _, v := range x[1:] {
		xmin = min(xmin, v)
		xmax = max(xmax, v)
	}
	xmin = min(xmin, 0)
	if xmax == xmin {
		return 0, -xmin
	}
	fn := float32(nmax)
	// Σw, Σw·x and Σw·x² do not depend on the levels; the trial loop only
	// gathers Σw·l, Σw·l² and Σw·x·l. u holds x − min (the rounding
	// argument) and wx the products w·x.
	var buf [2 * 128]float32
	u, wx := buf[:len(x)], buf[128:128+len(x)]
	var sw, sx float32
	var sxx float64
	for i, v := range x {
		u[i] = v - xmin
		wx[i] = w[i] * v
		sw += w[i]
		sx += wx[i]
		sxx += float64(wx[i] * v)
	}
	// The trials are independent, so they are gathered two at a time: each
	// trial's sums are still added in element order (the same float32
	// results as one trial at a time), but the two dependency chains
	// overlap, which nearly halves the time of this, the encoder's hot
	// loop.
	const trials = fitSteps + 2
	var sums [trials][3]float32 // Σw·l, Σw·l², Σw·x·l
	inv := func(t int) float32 {
		if t == 0 {
			return fn / (xmax - xmin)
		}
		return (fn + fitLo + fitStep*float32(t-1)) / (xmax - xmin)
	}
	t := 0
	for ; paired && t+2 <= trials; t += 2 {
		is0, is1 := inv(t), inv(t+1)
		// is·u ≥ 0 and < 2^22, so adding 1.5·2^23 and taking it away
		// again rounds it to an integer (ties to even); the conversion
		// keeps the product from being fused into the addition.
		var sl0, sll0, sxl0, sl1, sll1, sxl1 float32
		for i, v := range u {
			wi, wxi := w[i], wx[i]
			l0 := min(float32(is0*v)+roundMagic-roundMagic, fn)
			l1 := min(float32(is1*v)+roundMagic-roundMagic, fn)
			wl0 := wi * l0
			wl1 := wi * l1
			sl0 += wl0
			sl1 += wl1
			sll0 += wl0 * l0
			sll1 += wl1 * l1
			sxl0 += wxi * l0
			sxl1 += wxi * l1
		}
		sums[t] = [3]float32{sl0, sll0, sxl0}
		sums[t+1] = [3]float32{sl1, sll1, sxl1}
	}
	for ; t < trials; t++ {
		is := inv(t)
		var sl, sll, sxl float32
		for i, v := range u {
			l := min(float32(is*v)+roundMagic-roundMagic, fn)
			wl := w[i] * l
			sl += wl
			sll += wl * l
			sxl += wx[i] * l
		}
		sums[t] = [3]float32{sl, sll, sxl}
	}
	best := math.MaxFloat64
	scale, off = (xmax-xmin)/fn, -xmin
	for _, sm := range sums {
		sl, sll, sxl := sm[0], sm[1], sm[2]
		det := sw*sll - sl*sl
		var s, b float32
		if det > 0 {
			s = (sw*sxl - sx*sl) / det
			b = (sll*sx - sl*sxl) / det
		}
		if det <= 0 || b > 0 {
			b = 0
			if sll > 0 {
				s = sxl / sll
			}
		}
		if !(s > 0) {
			continue
		}
		// Σw(s·l + b − x)² expanded over the sums already gathered.
		S, B := float64(s), float64(b)
		err := S*S*float64(sll) + 2*S*B*float64(sl) + B*B*float64(sw) - 2*S*float64(sxl) - 2*B*float64(sx) + sxx
		if err < best {
			best, scale, off = err, s, -b
		}
	}
	return scale, off
}

// decodePackedRows decodes rows [r0, r1) into dst (just those rows).
func decodePackedRows(e Encoding, dst []float32, src []byte, rows, cols, r0, r1 int) {
	l := e.Layout(rows, cols)
	q := make([]uint8, l.PaddedCols)
	for r := r0; r < r1; r++ {
		clear(q)
		UnpackPlane(q, src[l.LoAt+int64(r*l.LoRow):][:l.LoRow], 0, l.LoBits)
		if l.HiBits > 0 {
			UnpackPlane(q, src[l.HiAt+int64(r*l.HiRow):][:l.HiRow], l.LoBits, l.HiBits)
		}
		sub := src[l.SubAt+int64(r*l.SubRow):][:l.SubRow]
		sup := src[l.SupAt+int64(r*l.SupRow):][:l.SupRow]
		out := dst[(r-r0)*cols : (r-r0+1)*cols]
		for g := range l.Groups {
			lo, hi := g*e.Group, min((g+1)*e.Group, cols)
			if e.Kind == KindQ4NL {
				decodeQ4NLGroup(out[lo:hi], q[lo:hi], HalfToFloat(binary.LittleEndian.Uint16(sup[2*g:])))
				continue
			}
			a, m := e.GroupParams(sub, sup, g)
			for i := lo; i < hi; i++ {
				out[i] = float32(a*float32(q[i])) - m
			}
		}
	}
}

// GroupParams gives the float32 step a and offset m of group g of one row
// (sub and sup are that row's bytes in the sub and sup planes): weight i of
// the group decodes to a·q_i − m, the product rounded to float32 before the
// subtraction. KindQK: a = d·sc, m = dmin·mn (both exact in float32);
// KindQ4S: a = d, m = 8·d. KindQ4NL has no such form (see Linear); it
// gives its scale d as a and m = 0.
func (e Encoding) GroupParams(sub, sup []byte, g int) (a, m float32) {
	switch e.Kind {
	case KindQ4S:
		d := HalfToFloat(binary.LittleEndian.Uint16(sup[2*g:]))
		return d, 8 * d
	case KindQ4NL:
		return HalfToFloat(binary.LittleEndian.Uint16(sup[2*g:])), 0
	}
	sb := g * e.Group / SuperBlock
	d := HalfToFloat(binary.LittleEndian.Uint16(sup[4*sb:]))
	dm := HalfToFloat(binary.LittleEndian.Uint16(sup[4*sb+2:]))
	sc, mn := SubScales(sub, g)
	return d * float32(sc), dm * float32(mn)
}
