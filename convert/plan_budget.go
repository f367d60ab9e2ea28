package convert

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/shrink-llm/shrink/quant"
)

// Choice is one way to store a tensor under a byte budget: an encoding,
// what it costs in bytes, and the damage it is predicted to do (Cost, in
// the units of the measurement; lower is better).
type Choice struct {
	Encoding quant.Encoding `json:"encoding"`
	Bytes    int64          `json:"bytes"`
	Cost     float64        `json:"cost"`
}

// BudgetTensor is a tensor whose encoding the planner chooses, with every
// candidate it may take.
type BudgetTensor struct {
	Name    string   `json:"name"`
	Params  int64    `json:"params"`
	Choices []Choice `json:"choices"`
}

// Allocate chooses one Choice per tensor (its index in Choices) so that the
// bytes add up to at most budget and the summed cost is small. It is a pure
// function of its arguments, so a plan can be tested as data.
//
// Every tensor starts at its cheapest choice in bytes; then, repeatedly, the
// upgrade (to any choice that is larger and predicted to do less damage)
// with the largest cost saved per extra byte that still fits is taken,
// until none fits. This is the greedy on the lower convex hull of each
// tensor's (bytes, cost) curve that rate-allocation uses, extended to
// non-hull steps once the hull steps no longer fit, so that the budget is
// filled as far as the encodings' granularity allows.
func Allocate(ts []BudgetTensor, budget int64) ([]int, error) {
	pick := make([]int, len(ts))
	var used int64
	for i, t := range ts {
		if len(t.Choices) == 0 {
			return nil, fmt.Errorf("tensor %q: no candidate encodings", t.Name)
		}
		best := 0
		for j, c := range t.Choices {
			if c.Bytes <= 0 || math.IsNaN(c.Cost) || c.Cost < 0 {
				return nil, fmt.Errorf("tensor %q: candidate %v has %d bytes and cost %v (want bytes > 0, cost ≥ 0)", t.Name, c.Encoding, c.Bytes, c.Cost)
			}
			b := t.Choices[best]
			if c.Bytes < b.Bytes || (c.Bytes == b.Bytes && c.Cost < b.Cost) {
				best = j
			}
		}
		pick[i] = best
		used += t.Choices[best].Bytes
	}
	if used > budget {
		return nil, fmt.Errorf("the budget of %d bytes is below the smallest choice of every tensor (%d bytes)", budget, used)
	}
	for {
		bi, bj := -1, -1
		var bestRate float64
		for i, t := range ts {
			cur := t.Choices[pick[i]]
			for j, c := range t.Choices {
				extra := c.Bytes - cur.Bytes
				if extra <= 0 || c.Cost >= cur.Cost || used+extra > budget {
					continue
				}
				rate := (cur.Cost - c.Cost) / float64(extra)
				// Ties go to the first found (earlier tensor, earlier
				// choice): the result depends on the data alone.
				if bi < 0 || rate > bestRate {
					bi, bj, bestRate = i, j, rate
				}
			}
		}
		if bi < 0 {
			return pick, nil
		}
		used += ts[bi].Choices[bj].Bytes - ts[bi].Choices[pick[bi]].Bytes
		pick[bi] = bj
	}
}

// BudgetSummary records how a plan met its byte budget.
type BudgetSummary struct {
	// Target is what the user asked for: "4.5 bits/weight" or "5 MiB".
	Target string `json:"target"`
	// Budget is the byte budget of the planned tensors, Bytes what the
	// plan spends of it.
	Budget int64 `json:"budget_bytes"`
	Bytes  int64 `json:"bytes"`
	// Params are the planned tensors' weights; Bits = Bytes·8/Params.
	Params int64   `json:"params"`
	Bits   float64 `json:"bits_per_weight"`
	// Cost is the summed predicted damage of the choices, Measure how it
	// was predicted.
	Cost    float64 `json:"predicted_cost"`
	Measure string  `json:"measure"`
	// Tensors is every planned tensor with every candidate: the data the
	// choice was made from.
	Tensors []BudgetTensor `json:"candidates,omitempty"`
}

// ApplyBudget rewrites the plan's entries named in ts to their chosen
// encodings (pick from Allocate) and records the outcome in p.Budget.
func (p *Plan) ApplyBudget(ts []BudgetTensor, pick []int, target, measure string, budget int64) error {
	if len(pick) != len(ts) {
		return fmt.Errorf("%d choices for %d tensors", len(pick), len(ts))
	}
	idx := make(map[string]int, len(p.Entries))
	for i, e := range p.Entries {
		idx[e.Name] = i
	}
	sum := &BudgetSummary{Target: target, Budget: budget, Measure: measure, Tensors: ts}
	for i, t := range ts {
		k, ok := idx[t.Name]
		if !ok {
			return fmt.Errorf("tensor %q is not in the plan", t.Name)
		}
		e := &p.Entries[k]
		if !e.Kind.Dense() {
			return fmt.Errorf("tensor %q is %s; the planner chooses dense encodings only", t.Name, e.Kind)
		}
		c := t.Choices[pick[i]]
		rows, cols, err := matrixShape(e.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		size, err := c.Encoding.Size(rows, cols)
		if err != nil || size != c.Bytes {
			return fmt.Errorf("tensor %q: %v is %d bytes, the candidate says %d (%v)", t.Name, c.Encoding, size, c.Bytes, err)
		}
		p.TotalBytes += c.Bytes - e.Bytes
		e.Encoding, e.Bytes = c.Encoding, c.Bytes
		e.Parts = []PlanPart{{Role: e.Parts[0].Role, Shape: e.Parts[0].Shape, Encoding: c.Encoding, Bytes: c.Bytes}}
		e.ShortGroup = (c.Encoding.Kind == quant.KindQ8 || c.Encoding.IsPacked()) && cols%c.Encoding.Group != 0
		e.Rule = fmt.Sprintf("planner (%s): predicted cost %.4g", target, c.Cost)
		cost := c.Cost
		e.Cost = &cost
		sum.Bytes += c.Bytes
		sum.Params += t.Params
		sum.Cost += c.Cost
	}
	sum.Bits = float64(sum.Bytes) * 8 / float64(max(sum.Params, 1))
	p.Budget = sum
	return nil
}

// BitsBudget is the byte budget of bits bits per weight over params
// weights, rounded down.
func BitsBudget(bits float64, params int64) int64 {
	return int64(math.Floor(bits * float64(params) / 8))
}

// DefaultCandidates are the encodings the planner chooses among: the
// packed family and q8, from about 2.6 to 8.5 bits per weight.
var DefaultCandidates = []quant.Encoding{quant.QK(2, 32), quant.QK(3, 32), quant.QK(4, 32), quant.QK(5, 32), quant.QK(6, 32), quant.Q8}

// sortChoices orders a tensor's candidates by bytes (then cost), the order
// --dry-run shows them in.
func sortChoices(cs []Choice) {
	slices.SortStableFunc(cs, func(a, b Choice) int {
		return cmp.Or(cmp.Compare(a.Bytes, b.Bytes), cmp.Compare(a.Cost, b.Cost))
	})
}
