package demotest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/internal/demo"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/runtime"
)

// Unpack writes the embedded demo model into a temporary folder and
// returns the folder's path.
func Unpack(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), demo.Name)
	if err := os.CopyFS(dir, demo.FS()); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Convert converts the checkpoint at src with policy pol into a .shrink
// file in a temporary folder and returns the file's path.
func Convert(tb testing.TB, src string, pol convert.Policy) string {
	tb.Helper()
	m, err := convert.Open(src, convert.OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	plan, err := convert.MakePlan(m.Config, m.Tensors, pol)
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), filepath.Base(src)+".shrink")
	if _, err := convert.Convert(context.Background(), m, plan, out, convert.Options{}); err != nil {
		tb.Fatal(err)
	}
	return out
}

// Open opens a .shrink file with the runtime until the test ends.
func Open(tb testing.TB, path string, opts runtime.Options) *runtime.Model {
	tb.Helper()
	return testshared.Open(tb, func(p string) (*runtime.Model, error) { return runtime.Open(p, opts) }, path)
}

// Prefill encodes text (with BOS), keeps at most maxTokens of it (0: all)
// and runs it through m in a fresh session; it returns the ids and the
// logits of every position (all) or of the last one.
func Prefill(tb testing.TB, m *runtime.Model, text string, maxTokens int, all bool) ([]int, [][]float32) {
	tb.Helper()
	ids, err := m.Tokenizer().Encode(text, true)
	if err != nil {
		tb.Fatal(err)
	}
	if maxTokens > 0 {
		ids = ids[:min(len(ids), maxTokens)]
	}
	s, err := m.NewSession(len(ids))
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	logits, err := s.Prefill(context.Background(), ids, all)
	if err != nil {
		tb.Fatal(err)
	}
	return ids, logits
}

// Greedy returns the ids m generates after prompt with the zero
// SamplerConfig (greedy decoding): at most n, fewer where one of the
// model's EOS ids stops it (the EOS itself is not returned).
func Greedy(tb testing.TB, m *runtime.Model, prompt []int, n int) []int {
	tb.Helper()
	var ids []int
	if _, err := m.Generate(context.Background(), prompt, n, runtime.SamplerConfig{}, func(id int) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// Story is a short text of three documents in the demo model's domain,
// separated by <|endoftext|>: enough for a few chunks of 64 tokens with its
// tokenizer, so that evaluation tests need no ../shared corpus.
const Story = `Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball.
One day, she saw a big dog under a tree. The dog was sad because it had lost its bone.
Lily wanted to help the dog. She looked behind the bench and found the bone. The dog was very happy.
<|endoftext|>
Tom had a small boat. Every morning he took it to the lake and watched it float on the water.
One day the wind was strong and the boat went far away. Tom was scared, but his dad helped him get it back.
They laughed and went home to eat warm soup together. Tom said thank you to his dad and gave him a big hug.
<|endoftext|>
Sara and Ben found a shiny key in the garden. They wondered what it could open.
They tried the shed, the box and the old door, but nothing opened. At last they tried the little chest under the bed.
Inside were many colorful stones. Sara and Ben shared them with all their friends.
`
