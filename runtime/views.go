package runtime

import (
	"github.com/shrink-llm/shrink/quant"
)

// decodeRow widens row r of an encoded [rows, cols] matrix into dst[:cols].
// The shapes were validated when the weight was loaded, so quant.DecodeRow
// cannot fail here.
func decodeRow(dst []float32, data []byte, enc quant.Encoding, rows, cols, r int) {
	if err := quant.DecodeRow(enc, dst[:cols], data, rows, cols, r); err != nil {
		panic("runtime: " + err.Error())
	}
}
