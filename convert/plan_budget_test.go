package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
)

// choices builds a candidate list from (bits, cost) pairs for a tensor of
// n weights, bytes = bits·n/8.
func choices(n int64, bc ...float64) []Choice {
	var cs []Choice
	for i := 0; i < len(bc); i += 2 {
		cs = append(cs, Choice{Encoding: quant.QK(int(bc[i]), 32), Bytes: int64(bc[i] * float64(n) / 8), Cost: bc[i+1]})
	}
	return cs
}

func TestAllocate(t *testing.T) {
	const n = 800
	// a is sensitive (its cost falls steeply with bits), b is not.
	a := BudgetTensor{Name: "a", Params: n, Choices: choices(n, 3, 8, 4, 4, 5, 2, 6, 1)}
	b := BudgetTensor{Name: "b", Params: n, Choices: choices(n, 3, 0.8, 4, 0.4, 5, 0.2, 6, 0.1)}
	// c has a choice off the convex hull: 5 bits buys almost nothing over
	// 4, 6 bits a lot.
	c := BudgetTensor{Name: "c", Params: n, Choices: choices(n, 4, 5, 5, 4.9, 6, 1)}
	tests := []struct {
		name   string
		ts     []BudgetTensor
		budget int64
		want   []int
		err    string
	}{
		{"everything at the cheapest", []BudgetTensor{a, b}, 2 * 300, []int{0, 0}, ""},
		{"one step goes to the sensitive tensor", []BudgetTensor{a, b}, 300 + 400, []int{1, 0}, ""},
		{"4.5 bits on average: sensitive 6, insensitive 3", []BudgetTensor{a, b}, 2 * 450, []int{3, 0}, ""},
		{"plenty: both at the top", []BudgetTensor{a, b}, 10000, []int{3, 3}, ""},
		{"a hull step over a useless one", []BudgetTensor{c}, 600, []int{2}, ""},
		{"what the hull step cannot reach, a smaller step fills", []BudgetTensor{c}, 599, []int{1}, ""},
		{"below the smallest", []BudgetTensor{a, b}, 599, nil, "below the smallest"},
		{"no candidates", []BudgetTensor{{Name: "x"}}, 100, nil, "no candidate"},
		{"negative cost", []BudgetTensor{{Name: "x", Choices: []Choice{{Encoding: quant.Q8, Bytes: 10, Cost: -1}}}}, 100, nil, "want bytes > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allocate(tt.ts, tt.budget)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var used int64
			for i, j := range got {
				used += tt.ts[i].Choices[j].Bytes
			}
			if used > tt.budget {
				t.Errorf("spends %d of %d bytes", used, tt.budget)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("picked %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestAllocateBeatsUniform: on tensors of unequal sensitivity, the plan at
// a uniform encoding's size predicts less damage than that encoding, and
// never more at any budget between the encodings' sizes.
func TestAllocateBeatsUniform(t *testing.T) {
	const n = 1024
	var ts []BudgetTensor
	for i := range 12 {
		s := float64(1 + i*i) // sensitivities 1 … 122
		ts = append(ts, BudgetTensor{Name: string(rune('a' + i)), Params: n,
			Choices: choices(n, 3, 4*s, 4, 2*s, 5, s, 6, s/2, 8, s/8)})
	}
	for k, bits := range []float64{4, 5, 6} {
		pick, err := Allocate(ts, BitsBudget(bits, 12*n))
		if err != nil {
			t.Fatal(err)
		}
		var plan, uniform float64
		for i, j := range pick {
			plan += ts[i].Choices[j].Cost
			uniform += ts[i].Choices[k+1].Cost
		}
		if plan >= uniform {
			t.Errorf("%v bits: plan cost %v, uniform %v", bits, plan, uniform)
		}
	}
}

// TestApplyBudget rewrites a descriptor-only plan as data and keeps its
// totals consistent.
func TestApplyBudget(t *testing.T) {
	plan, err := MakePlan(format.ModelConfig{}, tinyLlama(), Policy{Quant: quant.F16})
	if err != nil {
		t.Fatal(err)
	}
	var ts []BudgetTensor
	for _, e := range plan.Entries {
		if _, _, ok := projection(e.Name); !ok {
			continue
		}
		rows, cols, _ := matrixShape(e.Shape)
		var cs []Choice
		for i, enc := range []quant.Encoding{quant.QK(3, 32), quant.QK(5, 32), quant.Q8} {
			size, err := enc.Size(rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, Choice{Encoding: enc, Bytes: size, Cost: float64(3 - i)})
		}
		ts = append(ts, BudgetTensor{Name: e.Name, Params: int64(rows * cols), Choices: cs})
	}
	if len(ts) != 2 {
		t.Fatalf("%d projections, want 2", len(ts))
	}
	before := plan.TotalBytes
	pick := []int{0, 2}
	if err := plan.ApplyBudget(ts, pick, "5 bits/weight", "test", 1<<20); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range plan.Entries {
		total += e.Bytes
	}
	if total != plan.TotalBytes || total >= before {
		t.Errorf("total %d, plan says %d (before %d)", total, plan.TotalBytes, before)
	}
	q := plan.Entries[2]
	if q.Name != "blk.0.attn_q.weight" || q.Encoding != quant.QK(3, 32) || q.Cost == nil || *q.Cost != 3 || q.Parts[0].Encoding != q.Encoding {
		t.Errorf("attn_q: %+v", q)
	}
	d := plan.Entries[3]
	if d.Encoding != quant.Q8 || !d.ShortGroup {
		t.Errorf("ffn_down (100 columns) as q8: %+v", d)
	}
	if b := plan.Budget; b == nil || b.Cost != 4 || b.Params != 64*64+64*100 {
		t.Errorf("summary %+v", b)
	}
	if _, err := json.Marshal(plan); err != nil {
		t.Fatal(err)
	}
	if err := plan.ApplyBudget(ts, []int{0}, "x", "test", 1); err == nil {
		t.Error("a choice list of the wrong length was accepted")
	}
	ts[0].Name = "blk.9.attn_q.weight"
	if err := plan.ApplyBudget(ts, pick, "x", "test", 1); err == nil || !strings.Contains(err.Error(), "not in the plan") {
		t.Errorf("unknown tensor: %v", err)
	}
}
