package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/shrink-llm/shrink/quant"
)

// The block layouts below are ggml's (ggml-common.h) and the formulas are
// those of its reference dequantizers (ggml-quants.c), written out so that
// every float32 operation happens in the same order: the results are bit
// for bit llama.cpp's. Products that are followed by an addition are
// rounded explicitly with float32(...) so the Go compiler cannot fuse them
// into an FMA, which would round once instead of twice.

const qkK = 256 // super-block size of the k-quants

// CanDequantize reports whether Dequantize supports t.
func CanDequantize(t TensorType) bool { _, ok := dequantizers[t]; return ok }

// dequantizers decode a whole run of elements of each supported type: the
// float types element by element, the quantized ones block by block.
var dequantizers = map[TensorType]func(t TensorType, dst []float32, src []byte){
	TypeF32:  dequantF32,
	TypeF16:  dequantF16,
	TypeBF16: dequantBF16,
	TypeQ8_0: blocks(dequantQ8_0),
	TypeQ4_0: blocks(dequantQ4_0),
	TypeQ4_1: blocks(dequantQ4_1),
	TypeQ5_0: blocks(dequantQ5_0),
	TypeQ5_1: blocks(dequantQ5_1),
	TypeQ2_K: blocks(dequantQ2_K),
	TypeQ3_K: blocks(dequantQ3_K),
	TypeQ4_K: blocks(dequantQ4_K),
	TypeQ5_K: blocks(dequantQ5_K),
	TypeQ6_K: blocks(dequantQ6_K),
}

// Dequantize decodes len(dst) elements of type t from src, which must hold
// exactly their encoded bytes (len(dst) a multiple of the block size).
func Dequantize(t TensorType, dst []float32, src []byte) error {
	dequant, ok := dequantizers[t]
	if !ok {
		return fmt.Errorf("cannot dequantize tensor type %s", t)
	}
	need, err := t.RowBytes(int64(len(dst)))
	if err != nil {
		return err
	}
	if int64(len(src)) != need {
		return fmt.Errorf("%d %s elements need %d bytes, got %d", len(dst), t, need, len(src))
	}
	dequant(t, dst, src)
	return nil
}

// blocks applies a decoder of one block of t to each block in turn.
func blocks(block func(y []float32, x []byte)) func(t TensorType, dst []float32, src []byte) {
	return func(t TensorType, dst []float32, src []byte) {
		bs, bb := int(t.BlockSize()), int(t.BlockBytes())
		for i := 0; i < len(dst)/bs; i++ {
			block(dst[i*bs:(i+1)*bs], src[i*bb:(i+1)*bb])
		}
	}
}

func dequantF32(_ TensorType, dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(_ TensorType, dst []float32, src []byte) {
	for i := range dst {
		dst[i] = quant.HalfToFloat(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func dequantBF16(_ TensorType, dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func half(b []byte) float32 { return quant.HalfToFloat(binary.LittleEndian.Uint16(b)) }

// Q8_0: d f16, qs[32] int8. y = q·d.
func dequantQ8_0(y []float32, x []byte) {
	d := half(x)
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(x[2+j])) * d
	}
}

// Q4_0: d f16, qs[16]: element j in the low nibble of qs[j], element j+16
// in the high nibble. y = (q-8)·d.
func dequantQ4_0(y []float32, x []byte) {
	d := half(x)
	qs := x[2:18]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&0x0f)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// Q4_1: d f16, m f16, qs[16]. y = q·d + m.
func dequantQ4_1(y []float32, x []byte) {
	d, m := half(x), half(x[2:])
	qs := x[4:20]
	for j := 0; j < 16; j++ {
		y[j] = float32(float32(qs[j]&0x0f)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

// Q5_0: d f16, qh uint32 (fifth bits), qs[16]. y = (q-16)·d.
func dequantQ5_0(y []float32, x []byte) {
	d := half(x)
	qh := binary.LittleEndian.Uint32(x[2:])
	qs := x[6:22]
	for j := 0; j < 16; j++ {
		h0 := byte((qh>>uint(j))<<4) & 0x10
		h1 := byte(qh>>uint(j+12)) & 0x10
		y[j] = float32(int(qs[j]&0x0f|h0)-16) * d
		y[j+16] = float32(int(qs[j]>>4|h1)-16) * d
	}
}

// Q5_1: d f16, m f16, qh uint32, qs[16]. y = q·d + m.
func dequantQ5_1(y []float32, x []byte) {
	d, m := half(x), half(x[2:])
	qh := binary.LittleEndian.Uint32(x[4:])
	qs := x[8:24]
	for j := 0; j < 16; j++ {
		h0 := byte((qh>>uint(j))<<4) & 0x10
		h1 := byte(qh>>uint(j+12)) & 0x10
		y[j] = float32(float32(qs[j]&0x0f|h0)*d) + m
		y[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
	}
}

// Q2_K: scales[16] (4-bit scale | 4-bit min << 4), qs[64] (2-bit quants),
// d f16, dmin f16. Sixteen sub-blocks of 16: y = d·sc·q − dmin·m.
func dequantQ2_K(y []float32, x []byte) {
	scales := x[0:16]
	q := x[16:80]
	d, dmin := half(x[80:]), half(x[82:])
	is := 0
	for n := 0; n < qkK; n += 128 {
		shift := uint(0)
		for j := 0; j < 4; j++ {
			for half := 0; half < 2; half++ {
				sc := scales[is]
				is++
				dl := d * float32(sc&0x0f)
				ml := dmin * float32(sc>>4)
				for l := 0; l < 16; l++ {
					y[l] = float32(dl*float32((q[l+16*half]>>shift)&3)) - ml
				}
				y = y[16:]
			}
			shift += 2
		}
		q = q[32:]
	}
}

// Q3_K: hmask[32] (high bits), qs[64] (low 2 bits), scales[12] (sixteen
// 6-bit scales), d f16. y = d·(sc−32)·(q − 4·!high).
func dequantQ3_K(y []float32, x []byte) {
	hm := x[0:32]
	q := x[32:96]
	d := half(x[108:])
	var aux [4]uint32
	aux[0] = binary.LittleEndian.Uint32(x[96:])
	aux[1] = binary.LittleEndian.Uint32(x[100:])
	aux[2] = binary.LittleEndian.Uint32(x[104:])
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	tmp := aux[2]
	aux[2] = (aux[0]>>4)&kmask2 | ((tmp>>4)&kmask1)<<4
	aux[3] = (aux[1]>>4)&kmask2 | ((tmp>>6)&kmask1)<<4
	aux[0] = aux[0]&kmask2 | ((tmp>>0)&kmask1)<<4
	aux[1] = aux[1]&kmask2 | ((tmp>>2)&kmask1)<<4
	var scales [16]int8
	for i := range scales {
		scales[i] = int8(aux[i/4] >> (8 * uint(i%4)))
	}
	is := 0
	m := byte(1)
	for n := 0; n < qkK; n += 128 {
		shift := uint(0)
		for j := 0; j < 4; j++ {
			for half := 0; half < 2; half++ {
				dl := d * float32(int(scales[is])-32)
				is++
				for l := 0; l < 16; l++ {
					k := l + 16*half
					v := int((q[k] >> shift) & 3)
					if hm[k]&m == 0 {
						v -= 4
					}
					y[l] = dl * float32(v)
				}
				y = y[16:]
			}
			shift += 2
			m <<= 1
		}
		q = q[32:]
	}
}

// ScaleMinK4 unpacks the j-th (0..7) 6-bit scale and min from the 12 scale
// bytes of a Q4_K or Q5_K block (ggml's get_scale_min_k4). It is exported
// for converters that repack K-quant blocks without decoding them.
func ScaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// subBlockK4 returns the j-th sub-block's scale d·sc and min dmin·m of
// Q4_K and Q5_K.
func subBlockK4(j int, q []byte, d, dmin float32) (float32, float32) {
	sc, m := ScaleMinK4(j, q)
	return d * float32(sc), dmin * float32(m)
}

// Q4_K: d f16, dmin f16, scales[12], qs[128]. Eight sub-blocks of 32:
// y = d·sc·q − dmin·m.
func dequantQ4_K(y []float32, x []byte) {
	d, dmin := half(x), half(x[2:])
	scales := x[4:16]
	q := x[16:144]
	is := 0
	for j := 0; j < qkK; j += 64 {
		d1, m1 := subBlockK4(is, scales, d, dmin)
		d2, m2 := subBlockK4(is+1, scales, d, dmin)
		for l := 0; l < 32; l++ {
			y[l] = float32(d1*float32(q[l]&0x0f)) - m1
			y[l+32] = float32(d2*float32(q[l]>>4)) - m2
		}
		y = y[64:]
		q = q[32:]
		is += 2
	}
}

// Q5_K: d f16, dmin f16, scales[12], qh[32], qs[128].
func dequantQ5_K(y []float32, x []byte) {
	d, dmin := half(x), half(x[2:])
	scales := x[4:16]
	qh := x[16:48]
	ql := x[48:176]
	is := 0
	u1, u2 := byte(1), byte(2)
	for j := 0; j < qkK; j += 64 {
		d1, m1 := subBlockK4(is, scales, d, dmin)
		d2, m2 := subBlockK4(is+1, scales, d, dmin)
		for l := 0; l < 32; l++ {
			lo, hi := ql[l]&0x0f, ql[l]>>4
			if qh[l]&u1 != 0 {
				lo += 16
			}
			if qh[l]&u2 != 0 {
				hi += 16
			}
			y[l] = float32(d1*float32(lo)) - m1
			y[l+32] = float32(d2*float32(hi)) - m2
		}
		y = y[64:]
		ql = ql[32:]
		is += 2
		u1 <<= 2
		u2 <<= 2
	}
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] int8, d f16.
// y = d·sc·(q−32).
func dequantQ6_K(y []float32, x []byte) {
	ql := x[0:128]
	qh := x[128:192]
	sc := x[192:208]
	d := half(x[208:])
	for n := 0; n < qkK; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(ql[l]&0x0f|((qh[l]>>0)&3)<<4) - 32
			q2 := int(ql[l+32]&0x0f|((qh[l]>>2)&3)<<4) - 32
			q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
			q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
			y[l] = d * float32(int8(sc[is])) * float32(q1)
			y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		y = y[128:]
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}
