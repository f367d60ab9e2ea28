package testshared

import (
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// Encode encodes the rows×cols matrix x with e into a buffer of exactly
// e's size, failing tb on any error.
func Encode(tb testing.TB, e quant.Encoding, x []float32, rows, cols int) []byte {
	tb.Helper()
	n, err := e.Size(rows, cols)
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, n)
	if err := quant.Encode(e, b, x, rows, cols); err != nil {
		tb.Fatalf("encoding [%d, %d] as %v: %v", rows, cols, e, err)
	}
	return b
}

// RoundTrip encodes x with e and decodes it back: the weights a model
// stored in e holds.
func RoundTrip(tb testing.TB, e quant.Encoding, x []float32, rows, cols int) []float32 {
	tb.Helper()
	out := make([]float32, rows*cols)
	if err := quant.Decode(e, out, Encode(tb, e, x, rows, cols), rows, cols); err != nil {
		tb.Fatalf("decoding [%d, %d] as %v: %v", rows, cols, e, err)
	}
	return out
}
