package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSafetensorsHeaderValidation(t *testing.T) {
	data16 := make([]byte, 16)
	tests := []struct {
		name    string
		file    []byte
		wantErr string // "" means valid
		count   int
	}{
		{"valid", rawHeaderFile(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, data16), "", 1},
		{"valid unsorted and metadata", rawHeaderFile(`{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[4],"data_offsets":[8,16]},"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}  `, data16), "", 2},
		{"valid zero-size tensor", rawHeaderFile(`{"z":{"dtype":"F32","shape":[0,5],"data_offsets":[16,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data16), "", 2},
		{"valid scalar", rawHeaderFile(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, data16[:4]), "", 1},
		{"valid empty", rawHeaderFile(`{}`, nil), "", 0},
		{"too short", []byte{1, 2, 3}, "shorter than the 8-byte header length", 0},
		{"length beyond file", binary.LittleEndian.AppendUint64(nil, 100), "exceeds the file size", 0},
		{"length beyond cap", binary.LittleEndian.AppendUint64(nil, 1<<40), "exceeds the 104857600-byte limit", 0},
		{"length near 2^64", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "limit", 0},
		{"not json", rawHeaderFile(`{"a":`, nil), "JSON", 0},
		{"not an object", rawHeaderFile(`[1,2]`, nil), "not a JSON object", 0},
		{"trailing data", rawHeaderFile(`{} {}`, nil), "trailing data", 0},
		{"duplicate key", rawHeaderFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data16), "duplicate key", 0},
		{"metadata not strings", rawHeaderFile(`{"__metadata__":{"x":1}}`, nil), "__metadata__", 0},
		{"unknown field", rawHeaderFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, data16), "bad entry", 0},
		{"missing field", rawHeaderFile(`{"a":{"dtype":"F32","shape":[1]}}`, data16), "needs dtype, shape and data_offsets", 0},
		{"null entry", rawHeaderFile(`{"a":null}`, data16), "bad entry", 0},
		{"unknown dtype", rawHeaderFile(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}`, data16), `tensor a: unknown dtype "Q4"`, 0},
		{"negative dim", rawHeaderFile(`{"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}`, data16), "negative dimension", 0},
		{"fractional dim", rawHeaderFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, data16), "bad entry", 0},
		{"shape product overflow", rawHeaderFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, data16), "overflows", 0},
		{"shape times dtype overflow", rawHeaderFile(`{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}`, data16), "overflows", 0},
		{"dim beyond int64", rawHeaderFile(`{"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]}}`, data16), "bad entry", 0},
		{"offsets near 2^64", rawHeaderFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}}`, data16), "exceed the 16-byte data section", 0},
		{"offset wraps", rawHeaderFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[18446744073709551608,8]}}`, data16), "run backwards", 0},
		{"offset beyond uint64", rawHeaderFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}`, data16), "bad entry", 0},
		{"negative offset", rawHeaderFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, data16), "bad entry", 0},
		{"three offsets", rawHeaderFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, data16), "data_offsets has 3 values", 0},
		{"size mismatch", rawHeaderFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`, data16), "hold 16 bytes, but F32 [3] needs 12", 0},
		{"past data", rawHeaderFile(`{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}}`, data16), "exceed the 16-byte data section", 0},
		{"overlap", rawHeaderFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data16), "overlap", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, _, err := readSafetensors(bytes.NewReader(tc.file), int64(len(tc.file)), "x.safetensors")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(ts) != tc.count {
					t.Fatalf("got %d tensors, want %d", len(ts), tc.count)
				}
				return
			}
			wantErr(t, err, "x.safetensors", tc.wantErr)
		})
	}
}

// TestWidenMatchesReference checks the fast Load path (direct read for F32,
// chunked quant widening for F16/BF16) against the portable byte decoder on
// random bit patterns, odd sizes, offsets and sizes crossing chunk borders.
func TestWidenMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dt := range []DType{DTypeF32, DTypeF16, DTypeBF16} {
		es := int(dt.Size())
		chunk := loadChunkBytes / es
		for _, n := range []int{1, 3, 17, 1023, chunk - 1, chunk + 5, 2*chunk + 1} {
			for _, off := range []int{0, 1, 7} {
				total := n + off + 2
				raw := randBytes(rng, total*es)
				src := &SourceTensor{Name: "t", DType: dt, Shape: []int64{int64(total)}, r: bytes.NewReader(raw), size: int64(len(raw))}
				got := make([]float32, n)
				if err := readWidened(context.Background(), src, int64(off), got); err != nil {
					t.Fatal(err)
				}
				want := make([]float32, n)
				decodeLE(want, raw[off*es:], dt)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s n=%d off=%d: element %d = %08x, want %08x", dt, n, off, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	raw := make([]byte, 16)
	src := &SourceTensor{Name: "t", DType: "F32", Shape: []int64{4}, File: "f.safetensors", r: bytes.NewReader(raw[:8]), size: 16}
	d := whole("blk.0.attn_norm.weight", src)
	wantErr(t, d.Load(context.Background(), make([]float32, 3)), "dst has 3 elements")
	wantErr(t, d.Load(context.Background(), make([]float32, 4)), "blk.0.attn_norm.weight", "f.safetensors", "EOF")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src.r = bytes.NewReader(raw)
	wantErr(t, d.Load(ctx, make([]float32, 4)), "canceled")
	src.DType = "I32"
	wantErr(t, d.Load(context.Background(), make([]float32, 4)), "unsupported dtype I32")
}

func TestShardedErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cfg, ts := tinyLlamaCkpt(rng)
	tests := []struct {
		name  string
		setup func(dir string)
		want  []string
	}{
		{"missing shard", func(dir string) {
			writeFile(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), encodeSafetensors(ts[:6], nil))
			wm := map[string]string{}
			for i, x := range ts {
				wm[x.name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[min(i/6, 1)]
			}
			writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"weight_map": wm})
		}, []string{"model-00002-of-00002.safetensors", "missing"}},
		{"tensor not in its shard", func(dir string) {
			writeFile(t, filepath.Join(dir, "a.safetensors"), encodeSafetensors(ts[:len(ts)-1], nil))
			wm := map[string]string{}
			for _, x := range ts {
				wm[x.name] = "a.safetensors"
			}
			writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"weight_map": wm})
		}, []string{"lm_head.weight", "a.safetensors", "not stored there"}},
		{"shard path escapes folder", func(dir string) {
			writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"weight_map": map[string]string{"x": "../evil.safetensors"}})
		}, []string{"../evil.safetensors", "not a plain file name"}},
		{"tensor in two shards", func(dir string) {
			writeFile(t, filepath.Join(dir, "a.safetensors"), encodeSafetensors(ts, nil))
			writeFile(t, filepath.Join(dir, "b.safetensors"), encodeSafetensors(ts[:1], nil))
			wm := map[string]string{}
			for _, x := range ts {
				wm[x.name] = "a.safetensors"
			}
			wm["extra"] = "b.safetensors"
			writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"weight_map": wm})
		}, []string{"model.embed_tokens.weight", "a.safetensors", "b.safetensors"}},
		{"no weights", func(dir string) {}, []string{"no model.safetensors"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeJSON(t, filepath.Join(dir, "config.json"), cfg)
			writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"BPE"}}`))
			tc.setup(dir)
			m, err := Open(dir, OpenOptions{})
			if err == nil {
				m.Close()
			}
			wantErr(t, err, tc.want...)
		})
	}
}

func TestShardedOpen(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cfg, ts := tinyLlamaCkpt(rng)
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"BPE"}}`))
	wm := map[string]string{}
	shards := [][]testTensor{ts[:5], ts[5:]}
	var total int64
	for i, sh := range shards {
		name := []string{"s1.safetensors", "s2.safetensors"}[i]
		b := encodeSafetensors(sh, nil)
		total += int64(len(b))
		writeFile(t, filepath.Join(dir, name), b)
		for _, x := range sh {
			wm[x.name] = name
		}
	}
	writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"weight_map": wm})
	m := openModel(t, dir, OpenOptions{})
	if m.SourceBytes != total {
		t.Errorf("SourceBytes = %d, want %d", m.SourceBytes, total)
	}
	for _, x := range ts {
		var d *TensorDesc
		for _, c := range m.Tensors {
			if c.SourceName == x.name {
				d = c
			}
		}
		if d == nil {
			t.Fatalf("%s not mapped", x.name)
		}
		if got := loadDesc(t, d); !bytes.Equal(f32Bytes(got), x.data) {
			t.Errorf("%s: loaded values differ from the written ones", x.name)
		}
		sr, ok := d.Raw()
		if !ok {
			t.Fatalf("%s: no raw path", d.Name)
		}
		rb, err := io.ReadAll(sr)
		if err != nil || !bytes.Equal(rb, x.data) {
			t.Errorf("%s: raw bytes differ (err %v)", d.Name, err)
		}
	}
}

func FuzzSafetensorsHeader(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	_, ts := tinyLlamaCkpt(rng)
	f.Add(encodeSafetensors(ts[:3], map[string]string{"format": "pt"}))
	f.Add(encodeSafetensors([]testTensor{{"h", "F16", []int64{3}, randBytes(rng, 6)}, {"b", "BF16", []int64{1, 2}, randBytes(rng, 4)}}, nil))
	f.Add(rawHeaderFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, make([]byte, 16)))
	f.Add(rawHeaderFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}}`, nil))
	f.Add(binary.LittleEndian.AppendUint64(nil, math.MaxUint64))
	f.Fuzz(func(t *testing.T, file []byte) {
		ts, _, err := readSafetensors(bytes.NewReader(file), int64(len(file)), "fuzz")
		if err != nil {
			return
		}
		hlen := int64(binary.LittleEndian.Uint64(file))
		var prevEnd int64
		for _, s := range ts {
			n, ok := checkedMul(append(append([]int64(nil), s.Shape...), s.DType.Size())...)
			if !ok || n != s.size {
				t.Fatalf("%s: size %d does not match %s %v", s.Name, s.size, s.DType, s.Shape)
			}
			if s.off < 8+hlen || s.off+s.size > int64(len(file)) || s.off < prevEnd {
				t.Fatalf("%s: bytes [%d, %d) out of bounds or overlapping", s.Name, s.off, s.off+s.size)
			}
			prevEnd = s.off + s.size
			if s.DType.Float() {
				dst := make([]float32, s.NumElements())
				if err := whole(s.Name, s).Load(context.Background(), dst); err != nil {
					t.Fatalf("%s: load of a validated tensor failed: %v", s.Name, err)
				}
			}
		}
	})
}

// BenchmarkLoadBF16 measures Load of a TinyLlama-sized bf16 FFN matrix
// [5632, 2048] from a file (page cache warm after the first run).
func BenchmarkLoadBF16(b *testing.B) {
	const rows, cols = 5632, 2048
	rng := rand.New(rand.NewPCG(9, 10))
	path := filepath.Join(b.TempDir(), "model.safetensors")
	writeFile(b, path, encodeSafetensors([]testTensor{{"w", "BF16", []int64{rows, cols}, randBytes(rng, rows*cols*2)}}, nil))
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	ts, _, err := readSafetensors(f, st.Size(), path)
	if err != nil {
		b.Fatal(err)
	}
	d := whole("blk.0.ffn_up.weight", ts[0])
	dst := make([]float32, rows*cols)
	b.SetBytes(rows * cols * 2) // source bytes per op
	b.ResetTimer()
	for b.Loop() {
		if err := d.Load(context.Background(), dst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// TestSafetensorsErrorsNameFile checks a reader error names the file once.
func TestSafetensorsErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	writeFile(t, p, rawHeaderFile(`{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}}`, nil))
	s := &safetensorsSet{tensors: map[string]*SourceTensor{}}
	defer s.close()
	_, err := s.addFile(p)
	wantErr(t, err, p, "tensor a")
	if strings.Count(err.Error(), p) != 1 {
		t.Errorf("file named more than once: %v", err)
	}
}
