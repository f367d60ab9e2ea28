package demo_test

import (
	"io/fs"
	"math"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/internal/demo"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// maxEmbedded bounds what the demo adds to every binary that links it; the
// model is float32 with tied embeddings and a 32000-entry tokenizer.
const maxEmbedded = 6 << 20

func TestFilesAndSize(t *testing.T) {
	var total int64
	seen := map[string]bool{}
	err := fs.WalkDir(demo.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		seen[path] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		if !seen[f] {
			t.Errorf("embedded model lacks %s", f)
		}
	}
	if total+int64(len(demo.Stories)) > maxEmbedded {
		t.Errorf("embedded demo is %d bytes, budget %d", total+int64(len(demo.Stories)), maxEmbedded)
	}
	t.Logf("embedded demo: %d bytes of model, %d of text", total, len(demo.Stories))
}

func TestStories(t *testing.T) {
	docs := eval.SplitDocuments(demo.Stories, eval.DefaultDocSep)
	if len(docs) != 8 {
		t.Fatalf("%d stories, want 8", len(docs))
	}
	for i, d := range docs {
		if len(d) < 200 {
			t.Errorf("story %d is %d bytes", i, len(d))
		}
	}
}

// TestConvertAndRun unpacks the embedded model, converts it and runs the
// first story through it: the path `shrink demo` takes.
func TestConvertAndRun(t *testing.T) {
	rm := demotest.Open(t, demotest.Convert(t, demotest.Unpack(t), convert.Policy{Quant: quant.F32}), runtime.Options{Threads: 1})
	ids, logits := demotest.Prefill(t, rm, eval.SplitDocuments(demo.Stories, eval.DefaultDocSep)[0], 64, true)
	// A trained model predicts its own kind of text far better than
	// chance: the mean negative log-likelihood must sit well below
	// log(vocab).
	nll := 0.0
	for i := 0; i+1 < len(ids); i++ {
		nll += eval.NLL(logits[i], ids[i+1])
	}
	nll /= float64(len(ids) - 1)
	if chance := math.Log(float64(rm.Config().VocabSize)); !(nll < chance/2) {
		t.Errorf("mean NLL %.3f on a story, chance is %.3f", nll, chance)
	}
}
