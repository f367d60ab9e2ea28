package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const demoModel = "../../internal/demo/llama-stories-tiny"

// shrink runs the CLI in-process and returns exit code, stdout and stderr.
func shrink(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"shrink"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// shrinkJSON runs shrink, which must succeed, and decodes its stdout into v.
func shrinkJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, stdout, stderr := shrink(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
}

// cliCase is one invocation that must fail with the given exit code and a
// one-line error containing wantErr (or, with code 0, succeed).
type cliCase struct {
	name    string
	args    []string
	code    int
	wantErr string
}

// checkCLIErrors runs every case as a subtest.
func checkCLIErrors(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := shrink(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.wantErr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); tt.code != 0 && n != 0 {
				t.Errorf("error is %d lines, want one: %q", n+1, stderr)
			}
		})
	}
}

// copyDir makes a writable copy of a model folder for corruption tests.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestConvertInspectRoundTrip(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.shrink")
	code, stdout, stderr := shrink(t, "convert", demoModel, "-o", out, "--quant", "q8")
	if code != 0 {
		t.Fatalf("convert exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("convert output: %q", stdout)
	}
	code, stdout, stderr = shrink(t, "inspect", "--verify", out)
	if code != 0 {
		t.Fatalf("inspect exit %d: %s", code, stderr)
	}
	for _, want := range []string{"all checksums verified", "blk.0.attn_q.weight", "q8", "token_embd.weight", "tokenizer: hf, 4096 tokens"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = shrink(t, "inspect", "--json", out)
	var rep inspectReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || rep.Params != 1_262_208 && rep.Params == 0 {
		t.Fatalf("inspect --json: code %d, %q", code, stdout)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.shrink")
	var plan planJSON
	shrinkJSON(t, &plan, "convert", demoModel, "-o", out, "--quant", "f16", "--dry-run", "--json")
	if len(plan.Tensors) == 0 {
		t.Fatal("plan JSON lists no tensors")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("dry run wrote %s", out)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	noArch := copyDir(t, demoModel)
	cfg, _ := os.ReadFile(filepath.Join(noArch, "config.json"))
	os.WriteFile(filepath.Join(noArch, "config.json"), bytes.Replace(cfg, []byte(`"architectures"`), []byte(`"archs"`), 1), 0o644)
	badArch := copyDir(t, demoModel)
	os.WriteFile(filepath.Join(badArch, "config.json"), bytes.Replace(cfg, []byte(`LlamaForCausalLM`), []byte(`FalconForCausalLM`), 1), 0o644)
	truncated := copyDir(t, demoModel)
	st, _ := os.Stat(filepath.Join(truncated, "model.safetensors"))
	os.Truncate(filepath.Join(truncated, "model.safetensors"), st.Size()-100)

	tests := []cliCase{
		{"no args", []string{"convert"}, exitUsage, "want one model path"},
		{"no output", []string{"convert", demoModel}, exitUsage, "-o FILE"},
		{"bad quant", []string{"convert", demoModel, "-o", filepath.Join(dir, "a.shrink"), "--quant", "q7"}, exitUsage, "unknown encoding"},
		{"unknown preset", []string{"convert", demoModel, "-o", filepath.Join(dir, "a.shrink"), "--preset", "q4_k_x"}, exitUsage, "unknown preset"},
		{"preset with quant", []string{"convert", demoModel, "-o", filepath.Join(dir, "a.shrink"), "--preset", "q4_k_m", "-q", "q5"}, exitUsage, "drop --quant"},
		{"group with float", []string{"convert", demoModel, "-o", filepath.Join(dir, "a.shrink"), "-q", "f16", "--group", "64"}, exitUsage, "--group"},
		{"unknown flag", []string{"convert", "--bogus", demoModel}, exitUsage, "bogus"},
		{"missing dir", []string{"convert", filepath.Join(dir, "nope"), "-o", filepath.Join(dir, "b.shrink")}, exitFail, "nope"},
		{"no architectures", []string{"convert", noArch, "-o", filepath.Join(dir, "c.shrink")}, exitFail, "architectures"},
		{"unsupported architecture", []string{"convert", badArch, "-o", filepath.Join(dir, "d.shrink")}, exitFail, "FalconForCausalLM"},
		{"truncated safetensors", []string{"convert", truncated, "-o", filepath.Join(dir, "e.shrink")}, exitFail, "model.safetensors"},
		{"inspect missing", []string{"inspect", filepath.Join(dir, "nope.shrink")}, exitFail, "nope.shrink"},
	}
	checkCLIErrors(t, tests)
	// No output (and no temp file) may be left behind by a failed conversion.
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 0 {
		t.Errorf("failed conversions left files: %v", left)
	}
}

func TestCorruptFileRejected(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.shrink")
	if code, _, stderr := shrink(t, "convert", demoModel, "-o", out, "--quant", "q8"); code != 0 {
		t.Fatalf("convert: %s", stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	flipped := filepath.Join(t.TempDir(), "flipped.shrink")
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0x40 // inside the tensor data
	os.WriteFile(flipped, c, 0o644)
	code, _, stderr := shrink(t, "inspect", "--verify", flipped)
	if code != exitFail || !strings.Contains(stderr, "tensor") || !strings.Contains(stderr, "flipped.shrink") {
		t.Errorf("flipped byte: exit %d, %q", code, stderr)
	}
	trunc := filepath.Join(t.TempDir(), "trunc.shrink")
	os.WriteFile(trunc, b[:len(b)-10], 0o644)
	if code, _, stderr := shrink(t, "inspect", trunc); code != exitFail || !strings.Contains(stderr, "trunc.shrink") {
		t.Errorf("truncated: exit %d, %q", code, stderr)
	}
}
