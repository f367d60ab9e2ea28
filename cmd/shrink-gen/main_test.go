package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// TestTinyConvertsAndRuns writes the tiny shape in every dtype, with shards
// small enough to split it, and checks that the converter reads it and the
// runtime runs the result.
func TestTinyConvertsAndRuns(t *testing.T) {
	for _, dtype := range []string{"f32", "f16", "bf16"} {
		t.Run(dtype, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tiny")
			if err := run("tiny", dtype, dir, 64<<10, 7, ""); err != nil {
				t.Fatal(err)
			}
			shards, _ := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))
			if len(shards) < 2 {
				t.Errorf("%d shards, want the 64 KiB limit to split the model", len(shards))
			}
			m, err := convert.Open(dir, convert.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			s := shapes["tiny"]
			if c := m.Config; c.HiddenSize != s.hidden || c.NumLayers != s.layers || c.NumKVHeads != s.kvHeads || c.VocabSize != s.vocab {
				t.Fatalf("config %+v, want shape %+v", c, s)
			}
			if want := 1 + 9*s.layers + 2; len(m.Tensors) != want {
				t.Fatalf("%d tensors, want %d", len(m.Tensors), want)
			}
			rm := demotest.Open(t, demotest.Convert(t, dir, convert.Policy{Quant: quant.Q8}), runtime.Options{Threads: 1})
			_, logits := demotest.Prefill(t, rm, "Once upon a time", 0, false)
			if n := len(logits[len(logits)-1]); n != s.vocab {
				t.Fatalf("%d logits, want %d", n, s.vocab)
			}
		})
	}
}

// TestDeterministic: the same seed gives byte-identical shards.
func TestDeterministic(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if err := run("tiny", "bf16", d, 1<<30, 3, ""); err != nil {
			t.Fatal(err)
		}
	}
	x, err := os.ReadFile(filepath.Join(a, "model-00001-of-00001.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(filepath.Join(b, "model-00001-of-00001.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if string(x) != string(y) {
		t.Error("same seed, different weights")
	}
}

func TestBadFlags(t *testing.T) {
	for _, tt := range []struct{ shape, dtype, out string }{
		{"nope", "f32", t.TempDir()},
		{"tiny", "f64", t.TempDir()},
		{"tiny", "f32", ""},
	} {
		if err := run(tt.shape, tt.dtype, tt.out, 1<<30, 1, ""); err == nil {
			t.Errorf("run(%q, %q, %q) succeeded", tt.shape, tt.dtype, tt.out)
		}
	}
}

// TestTokenizerFlag: -tokenizer copies a tokenizer.json of the shape's size
// byte for byte, and refuses one whose vocabulary does not fit the shape
// before writing anything.
func TestTokenizerFlag(t *testing.T) {
	tmp := t.TempDir()
	write := func(name string, vocab int) string {
		p := filepath.Join(tmp, name)
		if err := writeJSON(p, syntheticTokenizer(vocab)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, small, big := write("good.json", 300), write("small.json", 280), write("big.json", 400)

	dir := filepath.Join(tmp, "ok")
	if err := run("tiny", "f32", dir, 1<<30, 1, good); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(good)
	got, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("tokenizer.json not copied verbatim (err %v)", err)
	}
	rm := demotest.Open(t, demotest.Convert(t, dir, convert.Policy{Quant: quant.Q8}), runtime.Options{Threads: 1})
	if _, logits := demotest.Prefill(t, rm, "Once upon a time", 0, false); len(logits) == 0 {
		t.Fatal("no logits")
	}

	for _, bad := range []string{small, big, filepath.Join(tmp, "missing.json")} {
		out := filepath.Join(tmp, "bad-"+filepath.Base(bad))
		if err := run("tiny", "f32", out, 1<<30, 1, bad); err == nil {
			t.Errorf("-tokenizer %s accepted for a 300-token shape", filepath.Base(bad))
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("-tokenizer %s: output folder written before the check", filepath.Base(bad))
		}
	}
}
