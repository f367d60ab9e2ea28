package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
)

func desc(name string, dtype DType, shape ...int64) *TensorDesc {
	return &TensorDesc{Name: name, DType: dtype, Shape: shape}
}

// tinyLlama is a descriptor list shaped like a 1-layer untied Llama with an
// input width (100) that does not divide into q8 groups.
func tinyLlama() []*TensorDesc {
	return []*TensorDesc{
		desc("token_embd.weight", "BF16", 50, 64),
		desc("blk.0.attn_norm.weight", "BF16", 64),
		desc("blk.0.attn_q.weight", "BF16", 64, 64),
		desc("blk.0.ffn_down.weight", "BF16", 64, 100),
		desc("output_norm.weight", "BF16", 64),
		desc("output.weight", "BF16", 50, 64),
	}
}

func mustEnc(t *testing.T, s string) *quant.Encoding {
	t.Helper()
	e, err := quant.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestMakePlanEncodings(t *testing.T) {
	ov := func(s string) Override {
		o, err := ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name string
		pol  Policy
		want map[string]string // tensor → encoding
	}{
		{"f16 everywhere but vectors", Policy{Quant: quant.F16}, map[string]string{
			"token_embd.weight": "f16", "blk.0.attn_norm.weight": "f32", "blk.0.attn_q.weight": "f16",
			"blk.0.ffn_down.weight": "f16", "output_norm.weight": "f32", "output.weight": "f16"}},
		{"q8 keeps head and embeddings f16", Policy{Quant: quant.Q8}, map[string]string{
			"token_embd.weight": "f16", "blk.0.attn_norm.weight": "f32", "blk.0.attn_q.weight": "q8",
			"blk.0.ffn_down.weight": "q8", "output.weight": "f16"}},
		{"explicit embed and output", Policy{Quant: quant.Q8, Embed: mustEnc(t, "q8"), Output: mustEnc(t, "bf16")}, map[string]string{
			"token_embd.weight": "q8", "output.weight": "bf16", "blk.0.attn_q.weight": "q8"}},
		{"override first match wins", Policy{Quant: quant.Q8, Overrides: []Override{ov("ffn_down=f16"), ov("blk\\.0\\..*=bf16")}}, map[string]string{
			"blk.0.ffn_down.weight": "f16", "blk.0.attn_q.weight": "bf16", "blk.0.attn_norm.weight": "bf16"}},
		{"integer override skips vectors", Policy{Quant: quant.F16, Overrides: []Override{ov("blk\\.0\\.=q8g64")}}, map[string]string{
			"blk.0.attn_norm.weight": "f32", "blk.0.attn_q.weight": "q8g64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := MakePlan(format.ModelConfig{}, tinyLlama(), tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]PlanEntry{}
			var total int64
			for _, e := range p.Entries {
				got[e.Name] = e
				total += e.Bytes
			}
			for name, enc := range tt.want {
				if g := got[name].Encoding.String(); g != enc {
					t.Errorf("%s: %s, want %s (rule %q)", name, g, enc, got[name].Rule)
				}
			}
			if total != p.TotalBytes {
				t.Errorf("TotalBytes %d, entries sum to %d", p.TotalBytes, total)
			}
		})
	}
}

func TestMakePlanSizes(t *testing.T) {
	p, err := MakePlan(format.ModelConfig{}, tinyLlama(), Policy{Quant: quant.Q8})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]PlanEntry{}
	for _, e := range p.Entries {
		byName[e.Name] = e
	}
	// 64×100 at q8/32: quants 6400 (already 64-aligned), 4 groups per row
	// (the last has 4 weights) → 64·4 f16 scales.
	down := byName["blk.0.ffn_down.weight"]
	if down.Bytes != 6400+64*4*2 || !down.ShortGroup {
		t.Errorf("ffn_down: %d bytes short=%v, want %d true", down.Bytes, down.ShortGroup, 6400+64*4*2)
	}
	if q := byName["blk.0.attn_q.weight"]; q.Bytes != 4096+64*2*2 || q.ShortGroup {
		t.Errorf("attn_q: %d bytes short=%v", q.Bytes, q.ShortGroup)
	}
	if n := byName["blk.0.attn_norm.weight"]; n.Bytes != 256 || n.SourceBytes != 128 {
		t.Errorf("norm: %d bytes from %d", n.Bytes, n.SourceBytes)
	}
	if p.Params != 50*64*2+64*64+64*100+64*2 {
		t.Errorf("params %d", p.Params)
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("plan JSON does not read back: %v", err)
	}
	if len(back.Entries) != len(p.Entries) || back.Entries[3].Encoding != quant.Q8 {
		t.Errorf("plan JSON round trip lost data: %+v", back.Entries)
	}
}

func TestMakePlanErrors(t *testing.T) {
	ov, err := ParseOverride("nomatch=f16")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tensors []*TensorDesc
		pol     Policy
		wantErr string
	}{
		{"invalid quant", tinyLlama(), Policy{}, "--quant"},
		{"unused override", tinyLlama(), Policy{Quant: quant.F16, Overrides: []Override{ov}}, "matches no tensor"},
		{"3-D tensor", []*TensorDesc{desc("x.weight", "F32", 2, 2, 2)}, Policy{Quant: quant.F16}, `tensor "x.weight"`},
		{"zero dim", []*TensorDesc{desc("x.weight", "F32", 0, 4)}, Policy{Quant: quant.F16}, "bad dimension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MakePlan(format.ModelConfig{}, tt.tensors, tt.pol)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseOverride(t *testing.T) {
	for _, s := range []string{"", "=f16", "ffn=", "ffn=q7", "(=f16"} {
		if _, err := ParseOverride(s); err == nil {
			t.Errorf("ParseOverride(%q) accepted", s)
		}
	}
	o, err := ParseOverride("attn_(q|k)=q8g128")
	if err != nil || o.Encoding != quant.Q8Group(128) || !o.Pattern.MatchString("blk.3.attn_k.weight") {
		t.Fatalf("got %+v, %v", o, err)
	}
}
