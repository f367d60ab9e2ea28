package convert

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
)

// lrModel is a descriptor list shaped like a 1-layer SwiGLU Llama: hidden
// 64, 2 KV heads of 16, FFN 160, untied head.
func lrModel() []*TensorDesc {
	return []*TensorDesc{
		desc("token_embd.weight", "F32", 50, 64),
		desc("blk.0.attn_norm.weight", "F32", 64),
		desc("blk.0.attn_q.weight", "F32", 64, 64),
		desc("blk.0.attn_k.weight", "F32", 32, 64),
		desc("blk.0.attn_v.weight", "F32", 32, 64),
		desc("blk.0.attn_output.weight", "F32", 64, 64),
		desc("blk.0.ffn_norm.weight", "F32", 64),
		desc("blk.0.ffn_gate.weight", "F32", 160, 64),
		desc("blk.0.ffn_up.weight", "F32", 160, 64),
		desc("blk.0.ffn_down.weight", "F32", 64, 160),
		desc("output_norm.weight", "F32", 64),
		desc("output.weight", "F32", 50, 64),
	}
}

func planByName(t *testing.T, pol Policy) (*Plan, map[string]PlanEntry) {
	t.Helper()
	p, err := MakePlan(format.ModelConfig{}, lrModel(), pol)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]PlanEntry{}
	for _, e := range p.Entries {
		m[e.Name] = e
	}
	return p, m
}

func TestLowRankPlanRatio(t *testing.T) {
	p, e := planByName(t, Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 0.5}}})
	tests := []struct {
		name  string
		kind  format.Kind
		rank  int
		stats string
	}{
		{"token_embd.weight", format.KindDense, 0, ""},
		{"blk.0.attn_norm.weight", format.KindDense, 0, ""},
		{"blk.0.attn_q.weight", format.KindLowRank, 16, "0/attn_in"}, // floor(0.5·64·64/128)
		{"blk.0.attn_k.weight", format.KindLowRank, 10, "0/attn_in"}, // floor(0.5·32·64/96) = 10
		{"blk.0.attn_output.weight", format.KindLowRank, 16, "0/attn_out_in"},
		{"blk.0.ffn_gate.weight", format.KindLowRank, 22, "0/ffn_in"}, // floor(0.5·160·64/224) = 22
		{"blk.0.ffn_down.weight", format.KindLowRank, 22, "0/ffn_down_in"},
		{"output.weight", format.KindDense, 0, ""},
	}
	for _, tt := range tests {
		got := e[tt.name]
		if got.Kind != tt.kind || got.Rank != tt.rank || got.StatsKey != tt.stats {
			t.Errorf("%s: kind %s rank %d stats %q, want %s %d %q (rule %q)", tt.name, got.Kind, got.Rank, got.StatsKey, tt.kind, tt.rank, tt.stats, got.Rule)
		}
		if tt.kind != format.KindLowRank {
			continue
		}
		rows, cols := got.Shape[0], got.Shape[1]
		k := int64(tt.rank)
		want := []PlanPart{
			{Role: "a", Shape: []int64{rows, k}, Encoding: quant.F16, Bytes: 2 * rows * k},
			{Role: "b", Shape: []int64{k, cols}, Encoding: quant.F16, Bytes: 2 * k * cols},
		}
		if len(got.Parts) != 2 || got.Bytes != want[0].Bytes+want[1].Bytes {
			t.Fatalf("%s: parts %+v, bytes %d", tt.name, got.Parts, got.Bytes)
		}
		for i, w := range want {
			g := got.Parts[i]
			if g.Role != w.Role || g.Encoding != w.Encoding || g.Bytes != w.Bytes || g.Shape[0] != w.Shape[0] || g.Shape[1] != w.Shape[1] {
				t.Errorf("%s part %d: %+v, want %+v", tt.name, i, g, w)
			}
		}
	}
	s := p.LowRank
	if s == nil || s.Matrices != 7 || s.Factored != 7 {
		t.Fatalf("summary %+v", s)
	}
	var sum int64
	for _, en := range p.Entries {
		sum += en.Bytes
	}
	if sum != p.TotalBytes {
		t.Errorf("TotalBytes %d, entries sum to %d", p.TotalBytes, sum)
	}
	if r := float64(s.StoredParams) / float64(s.Params); r > 0.5 || r < 0.45 {
		t.Errorf("ratio 0.5 kept %.3f of the parameters", r)
	}
	if !strings.Contains(p.Policy, "lowrank=whiten rank-ratio=0.5") {
		t.Errorf("policy string %q", p.Policy)
	}
}

func TestLowRankPlanSkipsWhenNotWorthIt(t *testing.T) {
	tests := []struct {
		name     string
		low      LowRank
		quant    quant.Encoding
		tensor   string
		wantKind format.Kind
		wantRule string
	}{
		// k(m+n) = 1.0·m·n/(m+n)·(m+n) = m·n: never smaller.
		{"ratio 1", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Ratio: 1}}, quant.F16, "blk.0.attn_q.weight", format.KindDense, "not worth it"},
		// f32 factors against q8 dense: rank 16 of 64×64 is 8 KiB > 4.6 KiB.
		{"factors dearer than dense", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Rank: 16}, FactorEncoding: &quant.F32}, quant.Q8, "blk.0.attn_q.weight", format.KindDense, "not worth it"},
		{"full rank", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Rank: 64}}, quant.F16, "blk.0.attn_q.weight", format.KindDense, "keeps full rank 64"},
		{"rank table dense", LowRank{Method: lowrank.MethodSVD, TargetRatio: 0.5, Ranks: map[string]int{"blk.0.attn_q.weight": 64}}, quant.F16, "blk.0.attn_q.weight", format.KindDense, "keeps full rank"},
		{"rank table factored", LowRank{Method: lowrank.MethodSVD, TargetRatio: 0.5, Ranks: map[string]int{"blk.0.attn_q.weight": 5}}, quant.F16, "blk.0.attn_q.weight", format.KindLowRank, "svd rank 5"},
		{"lorc on float stays dense", LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 4}}, quant.F16, "blk.0.attn_q.weight", format.KindDense, "lorc skipped"},
		{"include excludes", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Rank: 4}, Include: regexp.MustCompile(`ffn_`)}, quant.F16, "blk.0.attn_q.weight", format.KindDense, "projection (--quant)"},
		{"include includes", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Rank: 4}, Include: regexp.MustCompile(`ffn_`)}, quant.F16, "blk.0.ffn_up.weight", format.KindLowRank, "svd rank 4"},
		{"include never reaches embeddings", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Rank: 4}, Include: regexp.MustCompile(`.`)}, quant.F16, "token_embd.weight", format.KindDense, "embedding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest := map[string]int{}
			for _, d := range lrModel() {
				if _, _, ok := projection(d.Name); ok {
					rest[d.Name] = 3
				}
			}
			if tt.low.Ranks != nil {
				for k, v := range tt.low.Ranks {
					rest[k] = v
				}
				tt.low.Ranks = rest
			}
			_, e := planByName(t, Policy{Quant: tt.quant, LowRank: tt.low})
			got := e[tt.tensor]
			if got.Kind != tt.wantKind || !strings.Contains(got.Rule, tt.wantRule) {
				t.Errorf("kind %s rule %q; want %s and %q", got.Kind, got.Rule, tt.wantKind, tt.wantRule)
			}
			if got.Kind == format.KindDense && (len(got.Parts) != 1 || got.Parts[0].Role != "w" || got.Rank != 0) {
				t.Errorf("dense entry has parts %+v rank %d", got.Parts, got.Rank)
			}
		})
	}
}

func TestLowRankPlanLoRC(t *testing.T) {
	p, e := planByName(t, Policy{Quant: quant.Q8, LowRank: LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 8}, LoRCWhiten: true}})
	q := e["blk.0.ffn_down.weight"] // 64×160
	if q.Kind != format.KindLoRC || q.Rank != 8 || !q.Whiten || q.Encoding != quant.Q8 || len(q.Parts) != 3 {
		t.Fatalf("lorc entry %+v", q)
	}
	wq, _ := quant.Q8.Size(64, 160)
	want := []PlanPart{
		{Role: "w", Encoding: quant.Q8, Bytes: wq},
		{Role: "a", Encoding: quant.F16, Bytes: 2 * 64 * 8},
		{Role: "b", Encoding: quant.F16, Bytes: 2 * 8 * 160},
	}
	for i, w := range want {
		g := q.Parts[i]
		if g.Role != w.Role || g.Encoding != w.Encoding || g.Bytes != w.Bytes {
			t.Errorf("part %d: %+v, want %+v", i, g, w)
		}
	}
	if q.Bytes != wq+2*64*8+2*8*160 {
		t.Errorf("bytes %d", q.Bytes)
	}
	if s := p.LowRank; s.StoredParams != s.Params+8*(64+64+64+64+96+96+224*3) {
		t.Errorf("lorc stored params %d of %d", s.StoredParams, s.Params)
	}
	// The JSON plan carries kind, rank and parts.
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, be := range back.Entries {
		if be.Name == q.Name && (be.Kind != format.KindLoRC || be.Rank != 8 || len(be.Parts) != 3 || be.Parts[2].Encoding != quant.F16) {
			t.Errorf("JSON round trip: %+v", be)
		}
	}
}

func TestLowRankPlanErrors(t *testing.T) {
	r := func(k int) lowrank.RankSpec { return lowrank.RankSpec{Rank: k} }
	tests := []struct {
		name string
		low  LowRank
		want string
	}{
		{"settings without method", LowRank{Spec: r(4)}, "without a low-rank method"},
		{"unknown method", LowRank{Method: "pca", Spec: r(4)}, "want svd, whiten, asvd or lorc"},
		{"no rank", LowRank{Method: lowrank.MethodSVD}, "exactly one"},
		{"two ranks", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Rank: 4, Ratio: 0.5}}, "exactly one"},
		{"ratio above 1", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Ratio: 1.5}}, "(0, 1]"},
		{"negative ratio", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Ratio: -0.5}}, "(0, 1]"},
		{"energy above 1", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Energy: 2}}, "(0, 1]"},
		{"target above 1", LowRank{Method: lowrank.MethodSVD, TargetRatio: 1.2}, "(0, 1]"},
		{"negative rank", LowRank{Method: lowrank.MethodSVD, Spec: r(-3)}, "positive rank"},
		{"lorc with ratio", LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Ratio: 0.5}}, "fixed --rank"},
		{"lorc-whiten without lorc", LowRank{Method: lowrank.MethodSVD, Spec: r(4), LoRCWhiten: true}, "--lorc-whiten"},
		{"energy without table", LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Energy: 0.9}}, "no rank in the rank table"},
		{"target without table", LowRank{Method: lowrank.MethodWhiten, TargetRatio: 0.5}, "spectrum pass"},
		{"include matches nothing", LowRank{Method: lowrank.MethodSVD, Spec: r(4), Include: regexp.MustCompile(`nothing`)}, "match no projection"},
		{"bad factor encoding", LowRank{Method: lowrank.MethodSVD, Spec: r(4), FactorEncoding: &quant.Encoding{Kind: quant.KindQ8, Group: 7}}, "--factor-encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MakePlan(format.ModelConfig{}, lrModel(), Policy{Quant: quant.F16, LowRank: tt.low})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestProjectionPoints(t *testing.T) {
	tests := []struct {
		name  string
		layer int
		point string
		ok    bool
	}{
		{"blk.0.attn_q.weight", 0, "attn_in", true},
		{"blk.12.attn_v.weight", 12, "attn_in", true},
		{"blk.3.attn_output.weight", 3, "attn_out_in", true},
		{"blk.3.ffn_up.weight", 3, "ffn_in", true},
		{"blk.3.ffn_gate.weight", 3, "ffn_in", true},
		{"blk.3.ffn_down.weight", 3, "ffn_down_in", true},
		{"blk.3.attn_q.bias", 0, "", false},
		{"blk.3.attn_norm.weight", 0, "", false},
		{"token_embd.weight", 0, "", false},
		{"output.weight", 0, "", false},
		{"xblk.3.ffn_down.weight", 0, "", false},
	}
	for _, tt := range tests {
		l, p, ok := projection(tt.name)
		if l != tt.layer || p != tt.point || ok != tt.ok {
			t.Errorf("%s: %d %q %v, want %d %q %v", tt.name, l, p, ok, tt.layer, tt.point, tt.ok)
		}
	}
}

// TestUnitEnergyAllocation: the global allocation must not depend on the
// scale of each matrix's outputs, only on the shape of its spectrum.
func TestUnitEnergyAllocation(t *testing.T) {
	decay := func(scale float64) []float64 {
		s := make([]float64, 32)
		for i := range s {
			s[i] = scale / float64(i+1)
		}
		return s
	}
	same := []lowrank.Spectrum{{M: 32, N: 32, Sigma: decay(1)}, {M: 32, N: 32, Sigma: decay(1)}}
	scaled := []lowrank.Spectrum{{M: 32, N: 32, Sigma: decay(1e-3)}, {M: 32, N: 32, Sigma: decay(1e3)}}
	a := lowrank.AllocateRanks(unitEnergy(same), 0.5)
	b := lowrank.AllocateRanks(unitEnergy(scaled), 0.5)
	if a[0] != b[0] || a[1] != b[1] || b[0] < 2 {
		t.Errorf("ranks %v for equal scales, %v for scales 1e-3 and 1e3", a, b)
	}
	// Without normalisation the small-scale matrix is starved; this is what
	// the test guards against.
	if raw := lowrank.AllocateRanks(scaled, 0.5); raw[0] >= b[0] {
		t.Errorf("unnormalised allocation %v does not starve the small matrix; the test proves nothing", raw)
	}
	if scaled[1].Sigma[0] != 1e3 {
		t.Error("unitEnergy modified its input")
	}
}
