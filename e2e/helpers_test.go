package e2e

import (
	"context"
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

// openCheckpoint opens the checkpoint at src with convert; the caller
// closes it.
func openCheckpoint(t testing.TB, src string) *convert.Model {
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
	return m
}

// convertTo converts the model at src into a temp .shrink with the given
// projection encoding and returns its path.
func convertTo(t testing.TB, src string, enc quant.Encoding) string {
	t.Helper()
	m := openCheckpoint(t, src)
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

// stTensor is a tensor read by the tests' own minimal safetensors reader,
// independent of convert/.
type stTensor = testshared.Tensor

func readSafetensors(t testing.TB, path string) map[string]stTensor {
	return testshared.ReadSafetensors(t, path)
}

func modelPath(t testing.TB, rel string) string {
	return testshared.Path(t, "models", rel)
}

func modelPathShared(t testing.TB, rel ...string) string {
	return testshared.Path(t, rel...)
}
