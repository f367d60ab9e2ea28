package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/crafted"
	"github.com/shrink-llm/shrink/runtime"
)

// TestCraftedHeaderSizes: a header declaring huge sizes with valid
// checksums is refused in one line by `inspect --verify` and by `run`
// alike (run used to allocate until the Go runtime died).
func TestCraftedHeaderSizes(t *testing.T) {
	f := demoShrink(t, "q8")
	cases := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"num_layers 1e9", crafted.SetConfig("num_layers", 1_000_000_000), "num_layers"},
		{"num_layers 5", crafted.SetConfig("num_layers", 5), "blk.4"},
		{"head_dim 2^40", crafted.SetConfig("head_dim", int64(1)<<40), "head_dim"},
		{"head_dim 64", crafted.SetConfig("head_dim", 64), "head_dim"},
		{"context 1e12", crafted.SetConfig("context_length", int64(1e12)), "context_length"},
		{"vocab 2^31", crafted.SetConfig("vocab_size", int64(1)<<31), "vocab_size"},
	}
	for _, c := range cases {
		p := editHeader(t, f, c.edit)
		checkCLIErrors(t, []cliCase{
			{c.name + "/inspect", []string{"inspect", "--verify", p}, exitFail, c.want},
			{c.name + "/run", []string{"run", p, "-p", "hi", "-n", "1"}, exitFail, c.want},
		})
	}
}

// TestVerifyLoadsTokenizer: inspect --verify refuses a file whose
// tokenizer `run` cannot load (it used to report "all checksums verified").
func TestVerifyLoadsTokenizer(t *testing.T) {
	f := demoShrink(t, "q8")
	for _, kind := range []string{"llama2c", "frobnicate"} {
		p := editHeader(t, f, func(h map[string]any) { h["tokenizer_kind"] = kind })
		checkCLIErrors(t, []cliCase{
			{kind + "/verify", []string{"inspect", "--verify", p}, exitFail, "tokenizer"},
			{kind + "/run", []string{"run", p, "-p", "hi"}, exitFail, "tokenizer"},
		})
	}
}

// TestCraftedEncodedValues: NaN or Inf q8 scales and NaN norms, with valid
// checksums, are caught when the model loads, by run and inspect --verify
// (run used to print nothing and succeed).
func TestCraftedEncodedValues(t *testing.T) {
	f := demoShrink(t, "q8")
	h := readHeader(t, f)
	nanScale := patchPart(t, f, h, "blk.0.attn_q.weight", func(b []byte, rows, cols int) {
		// The scales plane follows the 64-aligned quants; set the first
		// scale to a float16 NaN.
		q := (rows*cols + 63) / 64 * 64
		binary.LittleEndian.PutUint16(b[q:], 0x7e00)
	})
	infScale := patchPart(t, f, h, "blk.1.ffn_down.weight", func(b []byte, rows, cols int) {
		q := (rows*cols + 63) / 64 * 64
		binary.LittleEndian.PutUint16(b[q+2*5:], 0x7c00)
	})
	nanNorm := patchPart(t, f, h, "blk.2.ffn_norm.weight", func(b []byte, rows, cols int) {
		binary.LittleEndian.PutUint32(b[4*7:], 0x7fc00000)
	})
	checkCLIErrors(t, []cliCase{
		{"nan scale/run", []string{"run", nanScale, "-p", "hi", "-n", "1"}, exitFail, "blk.0.attn_q.weight"},
		{"nan scale/verify", []string{"inspect", "--verify", nanScale}, exitFail, "not finite"},
		{"inf scale/verify", []string{"inspect", "--verify", infScale}, exitFail, "blk.1.ffn_down.weight"},
		{"nan norm/run", []string{"run", nanNorm, "-p", "hi", "-n", "1"}, exitFail, "blk.2.ffn_norm.weight"},
		{"nan norm/verify", []string{"inspect", "--verify", nanNorm}, exitFail, "NaN"},
	})
}

func readHeader(t *testing.T, path string) *format.Header {
	t.Helper()
	r, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Header()
}

// TestUsageErrorsExit2: every malformed invocation exits 2 with one line,
// on every command alike.
func TestUsageErrorsExit2(t *testing.T) {
	f := demoShrink(t, "q8")
	checkCLIErrors(t, []cliCase{
		{"unknown command", []string{"frobnicate"}, exitUsage, "frobnicate"},
		{"help on an unknown command", []string{"help", "frobnicate"}, exitUsage, "frobnicate"},
		{"unknown command, long", []string{strings.Repeat("x", 100000)}, exitUsage, "unknown command"},
		{"run -n -1", []string{"run", f, "-p", "hi", "-n", "-1"}, exitUsage, "-n -1"},
		{"run --threads -1", []string{"run", f, "-p", "hi", "--threads", "-1"}, exitUsage, "--threads"},
		{"run --threads 2^31-1", []string{"run", f, "-p", "hi", "--threads", "2147483647"}, exitUsage, "--threads"},
		{"eval --threads -1", []string{"eval", "--ref", f, "--model", f, "--text", "x", "--threads", "-1"}, exitUsage, "--threads"},
		{"eval --threads 1e6", []string{"eval", "--ref", f, "--model", f, "--text", "x", "--threads", "1000000"}, exitUsage, "--threads"},
		{"eval --ctx 0", []string{"eval", "--ref", f, "--model", f, "--text", "x", "--ctx", "0"}, exitUsage, "--ctx"},
		{"convert --threads huge", []string{"convert", demoModel, "-o", filepath.Join(t.TempDir(), "o.shrink"), "--threads", "2147483647"}, exitUsage, "--threads"},
		{"bad flag value", []string{"run", f, "-p", "hi", "-n", "many"}, exitUsage, "many"},
		{"bench --threads huge", []string{"bench", f, "--threads", "1,100000"}, exitUsage, "--threads"},
	})
}

// TestHugeTokenCount: -n near the int range reports the context, not an
// overflowed negative session size.
func TestHugeTokenCount(t *testing.T) {
	f := demoShrink(t, "q8")
	checkCLIErrors(t, []cliCase{
		{"n max int64", []string{"run", f, "-p", "hi", "-n", "9223372036854775807"}, exitFail, "exceeds the model context of 512"},
	})
}

// demoWithConfig copies the demo checkpoint with its config.json changed
// by edit.
func demoWithConfig(t *testing.T, edit func(cfg map[string]any)) string {
	t.Helper()
	dir := copyDir(t, demoModel)
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if b, err = json.Marshal(cfg); err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLongInputEchoCut: an error quoting a huge input stays short.
func TestLongInputEchoCut(t *testing.T) {
	dir := demoWithConfig(t, func(cfg map[string]any) { cfg["architectures"] = []string{strings.Repeat("A", 1<<20)} })
	code, _, stderr := shrink(t, "convert", dir, "-o", filepath.Join(t.TempDir(), "o.shrink"))
	if code != exitFail || len(stderr) > 1000 || !strings.Contains(stderr, "not supported") {
		t.Fatalf("exit %d, %d-byte error: %.300s", code, len(stderr), stderr)
	}
}

// TestOneLineErrors: errors that wrap several causes print as one line.
func TestOneLineErrors(t *testing.T) {
	dir := demoWithConfig(t, func(cfg map[string]any) { cfg["rope_scaling"] = map[string]any{"rope_type": "llama3"} })
	checkCLIErrors(t, []cliCase{
		{"llama3 rope_scaling without keys", []string{"convert", dir, "-o", filepath.Join(t.TempDir(), "o.shrink")}, exitFail, "low_freq_factor"},
	})
}

// TestConvertSameBytesAnyThreads: the same checkpoint and flags give a
// byte-identical file with 1 and 2 threads.
func TestConvertSameBytesAnyThreads(t *testing.T) {
	for _, q := range []string{"q8", "f16", "bf16"} {
		var files [][]byte
		for _, threads := range []string{"1", "2", "1", "2"} {
			out := filepath.Join(t.TempDir(), "m.shrink")
			if code, _, stderr := shrink(t, "convert", demoModel, "-o", out, "--quant", q, "--threads", threads); code != 0 {
				t.Fatal(stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, b)
		}
		for i := 1; i < len(files); i++ {
			if !bytes.Equal(files[0], files[i]) {
				t.Errorf("--quant %s: conversion %d differs from the first", q, i+1)
			}
		}
	}
}

// TestNoTokenizerFile: --no-tokenizer makes a weights-only file that runs
// on ids.
func TestNoTokenizerFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.shrink")
	if code, _, stderr := shrink(t, "convert", demoModel, "-o", out, "--no-tokenizer"); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := shrink(t, "run", out, "--ids", "1,2,3", "-n", "2"); code != 0 {
		t.Fatal(stderr)
	}
	checkCLIErrors(t, []cliCase{{"text prompt", []string{"run", out, "-p", "hi"}, exitFail, "no tokenizer"}})
}

// TestBrokenTokenizerNotEmbedded: convert refuses a tokenizer the runtime
// cannot load, instead of writing a file only `run` finds broken.
func TestBrokenTokenizerNotEmbedded(t *testing.T) {
	dir := copyDir(t, demoModel)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"BPE","vocab":{"a":-1}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.shrink")
	checkCLIErrors(t, []cliCase{{"broken tokenizer", []string{"convert", dir, "-o", out}, exitFail, "tokenizer"}})
	if _, err := os.Stat(out); err == nil {
		t.Error("output written")
	}
}

// TestNonFiniteConvert: a NaN weight is refused at --quant f32 (it used to
// be copied with metrics claiming an exact copy); --allow-nonfinite keeps it.
func TestNonFiniteConvert(t *testing.T) {
	dir := copyDir(t, demoModel)
	p := filepath.Join(dir, "model.safetensors")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// The last 4 bytes are the last float of the last tensor in the file.
	binary.LittleEndian.PutUint32(b[len(b)-4:], 0x7fc00000)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"f32", "f16", "bf16", "q8"} {
		out := filepath.Join(t.TempDir(), "m.shrink")
		checkCLIErrors(t, []cliCase{{"nan/" + q, []string{"convert", dir, "-o", out, "--quant", q, "--embed", q}, exitFail, "row"}})
	}
	out := filepath.Join(t.TempDir(), "m.shrink")
	if code, _, stderr := shrink(t, "convert", dir, "-o", out, "--quant", "f32", "--allow-nonfinite"); code != 0 {
		t.Fatalf("--allow-nonfinite: %s", stderr)
	}
}

// TestTruncatedWhileMapped: a model file cut short in place while a model
// has it mapped (cp over it does this) makes generation fail with an error
// instead of killing the process with SIGBUS.
func TestTruncatedWhileMapped(t *testing.T) {
	f := demoShrink(t, "f32")
	m, err := runtime.Open(f, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := os.Truncate(f, 4096); err != nil {
		t.Fatal(err)
	}
	_, err = m.Generate(context.Background(), []int{1, 2, 3}, 4, runtime.SamplerConfig{}, nil)
	if !errors.Is(err, runtime.ErrFileChanged) {
		t.Fatalf("generate on a truncated file: %v, want ErrFileChanged", err)
	}
}
