package convert

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// TestWidenPacked checks that packed dense projections become float32
// weights holding exactly their decoding, and that other weights (q8,
// factored) are left alone.
func TestWidenPacked(t *testing.T) {
	const rows, cols = 5, 512
	rng := rand.New(rand.NewPCG(3, 4))
	w := randF32(rng, rows*cols)
	enc := func(e quant.Encoding) []byte { return testshared.Encode(t, e, w, rows, cols) }
	shape := []int64{rows, cols}
	src := &runtime.MemSource{Weights: map[string]*runtime.Weight{}}
	for _, c := range []struct {
		name string
		kind format.Kind
		e    quant.Encoding
	}{{"q4", format.KindDense, quant.Q4}, {"q4-nokind", "", quant.Q4}, {"q8", format.KindDense, quant.Q8}, {"lorc", format.KindLoRC, quant.Q4}} {
		src.Weights[c.name] = &runtime.Weight{Name: c.name, Shape: shape, Kind: c.kind,
			Parts: []runtime.WeightPart{{Role: format.RoleW, Shape: shape, Encoding: c.e, Data: enc(c.e)}}}
	}
	if err := widenPacked(src); err != nil {
		t.Fatal(err)
	}
	for name, wantWide := range map[string]bool{"q4": true, "q4-nokind": true, "q8": false, "lorc": false} {
		p := src.Weights[name].Parts[0]
		if (p.Encoding == quant.F32) != wantWide {
			t.Fatalf("%s: encoding %v after widenPacked", name, p.Encoding)
		}
		if !wantWide {
			continue
		}
		want := make([]float32, rows*cols)
		if err := quant.Decode(quant.Q4, want, enc(quant.Q4), rows, cols); err != nil {
			t.Fatal(err)
		}
		for i, v := range want {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(p.Data[4*i:])); math.Float32bits(got) != math.Float32bits(v) {
				t.Fatalf("%s: value %d = %v, want %v", name, i, got, v)
			}
		}
	}
}
