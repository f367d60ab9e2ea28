package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

// writeShrink stores src as a .shrink file.
func writeShrink(tb testing.TB, src *MemSource, path, tokKind string, blobs map[string][]byte) {
	tb.Helper()
	w, err := format.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Abort()
	for name, data := range blobs {
		if err := w.WriteBlob(name, data, false); err != nil {
			tb.Fatal(err)
		}
	}
	for _, name := range src.Names() {
		wt := src.Weights[name]
		t := format.Tensor{Name: name, Shape: wt.Shape, Kind: wt.Kind}
		var data [][]byte
		for _, p := range wt.Parts {
			t.Parts = append(t.Parts, format.Part{Role: p.Role, Shape: p.Shape, Encoding: p.Encoding})
			data = append(data, p.Data)
		}
		if err := w.WriteTensor(t, data...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Commit(format.Header{Config: src.Cfg, TokenizerKind: tokKind}); err != nil {
		tb.Fatal(err)
	}
}

// TestOpenMatchesInMemory: a model read from a file (zero-copy over the
// mapping) computes exactly what the in-memory model computes.
func TestOpenMatchesInMemory(t *testing.T) {
	for _, enc := range []quant.Encoding{quant.F32, quant.BF16, quant.Q8Group(64)} {
		t.Run(enc.String(), func(t *testing.T) {
			spec := tinySpecs[1]
			spec.lowRank = true
			src := buildTiny(t, spec, enc, 17)
			path := filepath.Join(t.TempDir(), "m.shrink")
			writeShrink(t, src, path, format.TokenizerNone, nil)
			m, err := Open(path, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Tokenizer() != nil {
				t.Fatal("tokenizer without a tokenizer blob")
			}
			tokens := randTokens(newRand(17), 9, spec.vocab)
			got := prefillT(t, m, tokens)
			want := prefillT(t, newModelT(t, src, Options{Threads: 2}), tokens)
			for i := range want {
				for j := range want[i] {
					if got[i][j] != want[i][j] {
						t.Fatalf("position %d logit %d: file %v, memory %v", i, j, got[i][j], want[i][j])
					}
				}
			}
			st, _ := os.Stat(path)
			if rb := m.ResidentBytes(); rb > st.Size()*2 {
				t.Fatalf("resident %d bytes for a %d-byte file", rb, st.Size())
			}
		})
	}
}

func TestOpenWithLlama2cTokenizer(t *testing.T) {
	bin, err := os.ReadFile(testshared.Path(t, "models", "stories260K", "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	spec := tinySpecs[0]
	spec.vocab = 512
	src := buildTiny(t, spec, quant.F16, 3)
	path := filepath.Join(t.TempDir(), "m.shrink")
	writeShrink(t, src, path, format.TokenizerLlama2c, map[string][]byte{format.BlobTokenizerBin: bin})
	m, err := Open(path, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	if tok == nil || tok.VocabSize() != 512 {
		t.Fatalf("tokenizer %v", tok)
	}
	ids, err := tok.Encode("Once upon a time", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(context.Background(), ids, 4, SamplerConfig{TopP: 1}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMissingFile(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "none.shrink"), Options{}); err == nil {
		t.Fatal("no error")
	}
}
