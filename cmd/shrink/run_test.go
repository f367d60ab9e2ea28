package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// demoShrink converts the built-in model once per test at enc.
func demoShrink(t *testing.T, enc string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "demo-"+enc+".shrink")
	if code, _, stderr := shrink(t, "convert", demoModel, "-o", out, "--quant", enc); code != 0 {
		t.Fatalf("convert: %s", stderr)
	}
	return out
}

func TestRunGenerates(t *testing.T) {
	f := demoShrink(t, "q8")
	code, stdout, stderr := shrink(t, "run", f, "-p", "Once upon a time", "-n", "12")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "Once upon a time") || len(stdout) < len("Once upon a time")+10 {
		t.Errorf("stdout %q", stdout)
	}
	for _, want := range []string{"prompt:", "tok/s", "generation: 12 tokens", "model in memory"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %q", want, stderr)
		}
	}
	// Sampling with a seed is reproducible.
	_, a, _ := shrink(t, "run", f, "-p", "Once upon a time", "-n", "12", "--temp", "0.8", "--top-p", "0.95", "--seed", "7")
	_, b, _ := shrink(t, "run", f, "-p", "Once upon a time", "-n", "12", "--temp", "0.8", "--top-p", "0.95", "--seed", "7")
	if a != b {
		t.Errorf("same seed, different text:\n%q\n%q", a, b)
	}
}

func TestRunBadInput(t *testing.T) {
	f := demoShrink(t, "q8")
	badArch := rewriteHeader(t, f, func(h []byte) []byte {
		return bytes.Replace(h, []byte(`"arch":"llama"`), []byte(`"arch":"gemma"`), 1)
	})
	badEnc := rewriteHeader(t, f, func(h []byte) []byte {
		return bytes.Replace(h, []byte(`"encoding":"q8"`), []byte(`"encoding":"q7"`), 1)
	})
	checkCLIErrors(t, []cliCase{
		{"top-p 2", []string{"run", f, "-p", "hi", "--top-p", "2"}, exitUsage, "--top-p"},
		{"negative temperature", []string{"run", f, "-p", "hi", "--temp", "-1"}, exitUsage, "temperature"},
		{"id outside vocabulary", []string{"run", f, "--ids", "1,5000"}, exitFail, "outside the vocabulary"},
		{"not an id", []string{"run", f, "--ids", "1,x"}, exitUsage, "not a token id"},
		{"longer than context", []string{"run", f, "-p", "Once upon a time", "-n", "600"}, exitFail, "exceeds the model context of 512"},
		{"prompt longer than context", []string{"run", f, "-p", strings.Repeat("the cat sat. ", 300), "-n", "1"}, exitFail, "exceeds the model context of 512"},
		{"unknown architecture", []string{"run", badArch, "-p", "hi"}, exitFail, "gemma"},
		{"unknown encoding", []string{"run", badEnc, "-p", "hi"}, exitFail, "q7"},
		{"no prompt", []string{"run", f}, exitUsage, "-p TEXT"},
		{"missing file", []string{"run", filepath.Join(t.TempDir(), "x.shrink"), "-p", "hi"}, exitFail, "x.shrink"},
	})
}
