package convert

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
)

// eightLayers is a descriptor list of an 8-layer untied Llama.
func eightLayers() []*TensorDesc {
	ts := []*TensorDesc{desc("token_embd.weight", "BF16", 50, 64)}
	for i := range 8 {
		for _, n := range []string{"attn_q", "attn_v", "attn_output", "ffn_down"} {
			ts = append(ts, desc(fmt.Sprintf("blk.%d.%s.weight", i, n), "BF16", 64, 96))
		}
		ts = append(ts, desc(fmt.Sprintf("blk.%d.ffn_norm.weight", i), "BF16", 64))
	}
	return append(ts, desc("output.weight", "BF16", 50, 64))
}

func TestMoreBitsLayers(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		// llama.cpp's rule: first and last eighth, every third between.
		{8, []int{0, 3, 6, 7}},
		{6, []int{2, 5}},
		{32, []int{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}},
	} {
		var got []int
		for i := range tc.n {
			if MoreBitsLayer(i, tc.n) {
				got = append(got, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("n=%d: more-bits layers %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestPresetPlans(t *testing.T) {
	cfg := format.ModelConfig{NumLayers: 8}
	for _, tc := range []struct {
		preset string
		pol    func(p *Preset) Policy
		want   map[string]string
	}{
		{"q4_k_m", func(p *Preset) Policy { return Policy{Quant: p.Base, Preset: p} }, map[string]string{
			"token_embd.weight": "q4", "output.weight": "q6", "blk.0.attn_v.weight": "q6", "blk.1.attn_v.weight": "q4",
			"blk.3.ffn_down.weight": "q6", "blk.4.ffn_down.weight": "q4", "blk.7.attn_v.weight": "q6",
			"blk.3.attn_q.weight": "q4", "blk.0.attn_output.weight": "q4", "blk.0.ffn_norm.weight": "f32"}},
		{"q3_k_m", func(p *Preset) Policy { return Policy{Quant: p.Base, Preset: p} }, map[string]string{
			"blk.0.attn_v.weight": "q5", "blk.1.attn_v.weight": "q4", "blk.1.attn_output.weight": "q4",
			"blk.1.attn_q.weight": "q3", "blk.6.ffn_down.weight": "q5", "output.weight": "q6"}},
		// Explicit --output and --tensor-type still win over the preset.
		{"q4_k_m", func(p *Preset) Policy {
			o, err := ParseOverride(`blk\.0\.attn_v=q8`)
			if err != nil {
				t.Fatal(err)
			}
			return Policy{Quant: p.Base, Preset: p, Output: mustEnc(t, "f16"), Overrides: []Override{o}}
		}, map[string]string{"output.weight": "f16", "blk.0.attn_v.weight": "q8", "blk.7.attn_v.weight": "q6"}},
	} {
		p, err := LookupPreset(strings.ToUpper(tc.preset))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := MakePlan(cfg, eightLayers(), tc.pol(&p))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range plan.Entries {
			got[e.Name] = e.Encoding.String()
			if e.Encoding.IsPacked() && e.Shape[len(e.Shape)-1]%int64(e.Encoding.Group) != 0 != e.ShortGroup {
				t.Errorf("%s: ShortGroup %v", e.Name, e.ShortGroup)
			}
		}
		for name, want := range tc.want {
			if got[name] != want {
				t.Errorf("%s: %s is %s, want %s", tc.preset, name, got[name], want)
			}
		}
		if !strings.Contains(plan.Policy, "preset="+tc.preset) {
			t.Errorf("policy %q does not name the preset", plan.Policy)
		}
		if b := plan.ProjectionBits(); b < 4 || b > 6 {
			t.Errorf("%s: projection bits %v", tc.preset, b)
		}
	}
	if _, err := LookupPreset("q4_k_x"); err == nil || !strings.Contains(err.Error(), "q4_k_m") {
		t.Errorf("unknown preset: %v", err)
	}
}

func TestPresetEncodingsValid(t *testing.T) {
	for _, p := range Presets {
		for _, e := range p.Encodings() {
			if err := e.Validate(); err != nil {
				t.Errorf("%s: %v", p.Name, err)
			}
		}
		if !p.Base.IsPacked() || p.Doc == "" {
			t.Errorf("%s: base %v, doc %q", p.Name, p.Base, p.Doc)
		}
	}
	if e, _ := quant.Parse("q4"); e != quant.Q4 {
		t.Fatal("q4 does not parse to quant.Q4")
	}
}
