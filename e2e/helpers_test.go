package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

// sharedModels are the checkpoints in ../shared/models and how to open them.
var sharedModels = []struct {
	name string // folder under models/
	path string // what convert.Open takes, relative to models/
}{
	{"llama-stories-12m", "llama-stories-12m"},
	{"llama-stories-tiny", "llama-stories-tiny"},
	{"gpt2-stories-4m", "gpt2-stories-4m"},
	{"tinystories-656k", "tinystories-656k"},
	{"stories260K-hf", "stories260K/hf"},
	{"stories260K-bin", "stories260K/stories260K.bin"},
}

// convertTo converts the model at src into a temp .shrink with the given
// projection encoding and returns its path.
func convertTo(t testing.TB, src string, enc quant.Encoding) string {
	t.Helper()
	var opts convert.OpenOptions
	if strings.HasSuffix(filepath.ToSlash(src), "stories260K/hf") {
		// The HF export of stories260K ships no tokenizer.json; its
		// vocabulary is llama2.c's tok512.bin.
		opts.Tokenizer = filepath.Join(src, "..", "tok512.bin")
	}
	m, err := convert.Open(src, opts)
	if err != nil {
		t.Fatalf("open %s: %v", src, err)
	}
	defer m.Close()
	plan, err := convert.MakePlan(m.Config, m.Tensors, convert.Policy{Quant: enc})
	if err != nil {
		t.Fatalf("plan %s: %v", src, err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(src)+"-"+enc.String()+".shrink")
	if _, err := convert.Convert(context.Background(), m, plan, out, convert.Options{}); err != nil {
		t.Fatalf("convert %s: %v", src, err)
	}
	return out
}

// stTensor is a tensor read from a safetensors file by the test's own
// minimal reader, independent of convert/.
type stTensor struct {
	dtype string
	shape []int64
	data  []byte
}

func readSafetensors(t testing.TB, path string) map[string]stTensor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]stTensor{}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		out[name] = stTensor{e.DType, e.Shape, b[8+int64(n)+e.Offsets[0] : 8+int64(n)+e.Offsets[1]]}
	}
	return out
}

// floats widens a safetensors tensor exactly.
func (s stTensor) floats() []float32 {
	switch s.dtype {
	case "F32":
		v := make([]float32, len(s.data)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(s.data[4*i:]))
		}
		return v
	case "F16", "BF16":
		h := make([]uint16, len(s.data)/2)
		for i := range h {
			h[i] = binary.LittleEndian.Uint16(s.data[2*i:])
		}
		v := make([]float32, len(h))
		if s.dtype == "F16" {
			quant.F16ToF32(v, h)
		} else {
			quant.BF16ToF32(v, h)
		}
		return v
	}
	panic(fmt.Sprintf("dtype %s", s.dtype))
}

func modelPath(t testing.TB, rel string) string {
	return testshared.Path(t, "models", rel)
}

func modelPathShared(t testing.TB, rel ...string) string {
	return testshared.Path(t, rel...)
}
