package testshared

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// Tensor is one tensor of a safetensors file as tests read it: a minimal,
// trusting reader, independent of convert/ (whose reader is under test).
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

// ReadSafetensors reads every tensor of a (trusted) safetensors file.
func ReadSafetensors(tb testing.TB, path string) map[string]Tensor {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	out := map[string]Tensor{}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			tb.Fatalf("%s: %s: %v", path, name, err)
		}
		base := 8 + int64(n)
		out[name] = Tensor{e.DType, e.Shape, b[base+e.Offsets[0] : base+e.Offsets[1]]}
	}
	return out
}

// Floats widens an F32, F16 or BF16 tensor exactly.
func (t Tensor) Floats() []float32 {
	switch t.DType {
	case "F32":
		v := make([]float32, len(t.Data)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return v
	case "F16", "BF16":
		h := make([]uint16, len(t.Data)/2)
		for i := range h {
			h[i] = binary.LittleEndian.Uint16(t.Data[2*i:])
		}
		v := make([]float32, len(h))
		if t.DType == "F16" {
			quant.F16ToF32(v, h)
		} else {
			quant.BF16ToF32(v, h)
		}
		return v
	}
	panic("testshared: Floats of dtype " + t.DType)
}

// Ints reads an I32 tensor.
func (t Tensor) Ints() []int {
	if t.DType != "I32" {
		panic("testshared: Ints of dtype " + t.DType)
	}
	v := make([]int, len(t.Data)/4)
	for i := range v {
		v[i] = int(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
	}
	return v
}

// Float64s reads an F64 tensor.
func (t Tensor) Float64s() []float64 {
	if t.DType != "F64" {
		panic("testshared: Float64s of dtype " + t.DType)
	}
	v := make([]float64, len(t.Data)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return v
}
