package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/shrink-llm/shrink/quant"
)

// QuantizeQ8_0 encodes src (a multiple of 32 values) as Q8_0 blocks with
// llama.cpp's reference quantizer: d = amax/127 stored as float16, each
// quant round(x/d) (half away from zero). dst holds len(src)/32·34 bytes.
func QuantizeQ8_0(dst []byte, src []float32) error {
	if len(src)%32 != 0 || len(dst) != len(src)/32*34 {
		return fmt.Errorf("Q8_0 of %d values needs a multiple of 32 values and %d bytes, got %d", len(src), len(src)/32*34, len(dst))
	}
	for b := 0; b < len(src)/32; b++ {
		x := src[b*32 : (b+1)*32]
		out := dst[b*34 : (b+1)*34]
		var amax float32
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("value %g at %d cannot be quantized", v, b*32)
			}
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(out, quant.FloatToHalf(d))
		for j, v := range x {
			out[2+j] = byte(int8(math.Round(float64(v * id))))
		}
	}
	return nil
}
