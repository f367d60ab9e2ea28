package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/ggufcraft"
	"github.com/shrink-llm/shrink/internal/testshared"
)

// writeGGUF writes a small GGUF file with the given metadata and one F32
// token_embd tensor.
func writeGGUF(t *testing.T, path string, kv map[string]gguf.Value) {
	t.Helper()
	w := gguf.NewWriter()
	for k, v := range kv {
		if err := w.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.AddTensor("token_embd.weight", gguf.TypeF32, []int64{8, 4}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf, func(_ int, tn *gguf.Tensor, dst io.Writer) error {
		_, err := dst.Write(make([]byte, tn.Size))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGGUFHostileFiles runs convert and inspect on crafted GGUF files (huge
// counts, lengths past the end, overlapping or misaligned tensor data,
// unknown types, ...): each must fail with exit 1 and one line naming the
// file and the problem, and leave no output behind.
func TestGGUFHostileFiles(t *testing.T) {
	dir := t.TempDir()
	outDir := t.TempDir()
	var cases []cliCase
	for _, c := range ggufcraft.Cases() {
		name := strings.ReplaceAll(c.Name, " ", "-") + ".gguf"
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, c.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		want := name
		if gguf.IsGGUF(c.Data) {
			want = c.WantErr
		}
		cases = append(cases,
			cliCase{"convert " + c.Name, []string{"convert", p, "-o", filepath.Join(outDir, name+".shrink")}, exitFail, want},
			cliCase{"inspect " + c.Name, []string{"inspect", p}, exitFail, want},
		)
	}
	// Well-formed files shrink cannot convert.
	falcon := filepath.Join(dir, "falcon.gguf")
	writeGGUF(t, falcon, map[string]gguf.Value{"general.architecture": gguf.StringValue("falcon")})
	noBlocks := filepath.Join(dir, "no-blocks.gguf")
	writeGGUF(t, noBlocks, map[string]gguf.Value{"general.architecture": gguf.StringValue("llama"), "llama.context_length": gguf.Uint32Value(8),
		"llama.embedding_length": gguf.Uint32Value(8)})
	hugeBlocks := filepath.Join(dir, "huge-blocks.gguf")
	writeGGUF(t, hugeBlocks, map[string]gguf.Value{"general.architecture": gguf.StringValue("llama"), "llama.context_length": gguf.Uint32Value(8),
		"llama.embedding_length": gguf.Uint32Value(8), "llama.block_count": gguf.Uint32Value(1 << 31), "llama.feed_forward_length": gguf.Uint32Value(8),
		"llama.attention.head_count": gguf.Uint32Value(2), "llama.attention.layer_norm_rms_epsilon": gguf.Float32Value(1e-5)})
	cases = append(cases,
		cliCase{"block count beyond the tensors", []string{"convert", hugeBlocks, "-o", filepath.Join(outDir, "h.shrink")}, exitFail, "llama.block_count = 2147483648, but the file has only 1 tensors"},
		cliCase{"unsupported architecture", []string{"convert", falcon, "-o", filepath.Join(outDir, "f.shrink")}, exitFail, `architecture "falcon" is not supported`},
		cliCase{"missing metadata key", []string{"convert", noBlocks, "-o", filepath.Join(outDir, "n.shrink")}, exitFail, `"llama.block_count": key not found`},
	)
	if root := testshared.Root(); root != "" {
		iq := filepath.Join(root, "models", "gguf-quants", "iq4_nl.gguf")
		cases = append(cases, cliCase{"type shrink cannot dequantize", []string{"convert", iq, "-o", filepath.Join(outDir, "iq.shrink")}, exitFail, "IQ4_NL, which shrink cannot dequantize"})
	}
	checkCLIErrors(t, cases)
	if left, _ := filepath.Glob(filepath.Join(outDir, "*")); len(left) != 0 {
		t.Errorf("failed conversions left files: %v", left)
	}
}

// TestExportCLI converts the demo model, exports it to GGUF, inspects the
// GGUF, converts it back, and checks --exact on a low-rank file.
func TestExportCLI(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "m.shrink")
	if code, _, stderr := shrink(t, "convert", demoModel, "-o", m, "--quant", "q8"); code != 0 {
		t.Fatal(stderr)
	}
	g := filepath.Join(dir, "m.gguf")
	code, stdout, stderr := shrink(t, "export", m, "-o", g)
	if code != 0 || !strings.Contains(stdout, "every tensor carried with the same numbers") || stderr != "" {
		t.Fatalf("export: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = shrink(t, "inspect", g)
	if code != 0 || !strings.Contains(stdout, "GGUF v3") || !strings.Contains(stdout, "Q8_0") || !strings.Contains(stdout, "tokenizer.ggml.tokens") {
		t.Fatalf("inspect: exit %d\n%s\n%s", code, stdout, stderr)
	}
	back := filepath.Join(dir, "back.shrink")
	if code, _, stderr := shrink(t, "convert", g, "-o", back, "--quant", "q8"); code != 0 {
		t.Fatal(stderr)
	}

	direct := filepath.Join(dir, "direct.gguf")
	code, stdout, stderr = shrink(t, "convert", demoModel, "-o", direct, "--quant", "q8", "--format", "gguf")
	if code != 0 || !strings.Contains(stdout, "wrote "+direct+": GGUF v3") {
		t.Fatalf("convert --format gguf: exit %d\n%s\n%s", code, stdout, stderr)
	}
	ga, gb := testshared.Open(t, gguf.Open, g), testshared.Open(t, gguf.Open, direct)
	if len(ga.Tensors) != len(gb.Tensors) || len(ga.KV) != len(gb.KV) {
		t.Fatalf("convert --format gguf: %d tensors %d keys, convert + export: %d and %d", len(gb.Tensors), len(gb.KV), len(ga.Tensors), len(ga.KV))
	}
	for i := range ga.Tensors {
		x, _ := ga.ReadTensor(&ga.Tensors[i])
		y, _ := gb.ReadTensor(&gb.Tensors[i])
		if ga.Tensors[i].Name != gb.Tensors[i].Name || !bytes.Equal(x, y) {
			t.Fatalf("tensor %d (%s) differs between convert --format gguf and convert + export", i, ga.Tensors[i].Name)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".shrink-convert-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	lr := filepath.Join(dir, "lr.shrink")
	if code, _, stderr := shrink(t, "convert", demoModel, "-o", lr, "--lowrank", "svd", "--rank-ratio", "0.5"); code != 0 {
		t.Fatal(stderr)
	}
	checkCLIErrors(t, []cliCase{
		{"exact refuses low-rank", []string{"export", lr, "-o", filepath.Join(dir, "lr-exact.gguf"), "--exact"}, exitFail, "lowrank tensor cannot be exported exactly"},
		{"export needs -o", []string{"export", lr}, exitUsage, "-o FILE"},
		{"unknown format", []string{"convert", demoModel, "-o", filepath.Join(dir, "x"), "--format", "ggml"}, exitUsage, `--format "ggml"`},
	})
	if _, err := os.Stat(filepath.Join(dir, "lr-exact.gguf")); err == nil {
		t.Error("a refused export left its output")
	}
	code, stdout, stderr = shrink(t, "export", lr, "-o", filepath.Join(dir, "lr.gguf"))
	if code != 0 || !strings.Contains(stderr, "(blk.0.attn_q.weight ... blk.3.ffn_down.weight): lowrank factors multiplied out and re-encoded as F16") {
		t.Fatalf("low-rank export: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
