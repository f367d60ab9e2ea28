package convert

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// withChatTemplate copies the GGUF at src to a new file with
// tokenizer.chat_template set to tmpl.
func withChatTemplate(t *testing.T, src, tmpl string) string {
	t.Helper()
	gf := openGGUFFile(t, src)
	w := gguf.NewWriter()
	if gf.Has(gguf.KeyAlignment) {
		v, _ := gf.Lookup(gguf.KeyAlignment)
		if err := w.Set(gguf.KeyAlignment, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range gf.KV {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Set(ggufKeyChat, gguf.StringValue(tmpl)); err != nil {
		t.Fatal(err)
	}
	for _, tn := range gf.Tensors {
		if _, err := w.AddTensor(tn.Name, tn.Type, tn.Dims); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "chat.gguf")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WriteTo(f, func(i int, _ *gguf.Tensor, dst io.Writer) error {
		_, err := io.Copy(dst, gf.Data(&gf.Tensors[i]))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGGUFChatTemplateCarried checks that a GGUF's tokenizer.chat_template
// reaches the .shrink's tokenizer_config.json (with the BOS and EOS strings
// templates use), where the server reads it, that export writes it back
// unchanged, and that the exported file is world-readable like convert's.
func TestGGUFChatTemplateCarried(t *testing.T) {
	const tmpl = "{% for m in messages %}{{ bos_token }}[{{ m['role'] }}] {{ m['content'] }}{{ eos_token }}{% endfor %}"
	src := withChatTemplate(t, testshared.Path(t, "models", "stories260K", "stories260K.gguf"), tmpl)
	out := convertFile(t, src, OpenOptions{}, Policy{Quant: quant.Q8})

	m, err := runtime.Open(out, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok, err := m.Blob(format.BlobTokenizerConfig)
	m.Close()
	if err != nil || !ok {
		t.Fatalf("no %s in the converted file (%v)", format.BlobTokenizerConfig, err)
	}
	var tc map[string]string
	if err := json.Unmarshal(raw, &tc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"chat_template": tmpl, "bos_token": "<s>", "eos_token": "</s>"}
	for k, v := range want {
		if tc[k] != v {
			t.Errorf("%s = %q, want %q", k, tc[k], v)
		}
	}

	g, _ := exportFile(t, out, ExportOptions{})
	gf := openGGUFFile(t, g)
	if got, err := gf.String(ggufKeyChat); err != nil || got != tmpl {
		t.Errorf("exported %s = %q (%v), want %q", ggufKeyChat, got, err, tmpl)
	}
	st, err := os.Stat(g)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("exported file mode %v, want -rw-r--r--", st.Mode().Perm())
	}
}

// TestGGUFWithoutChatTemplateAddsNoConfig checks that nothing is invented
// for a GGUF without a template.
func TestGGUFWithoutChatTemplateAddsNoConfig(t *testing.T) {
	m := openModel(t, testshared.Path(t, "models", "stories260K", "stories260K.gguf"), OpenOptions{})
	if _, ok := m.TokenizerFiles[format.BlobTokenizerConfig]; ok {
		t.Errorf("%s added for a GGUF without %s", format.BlobTokenizerConfig, ggufKeyChat)
	}
}
