package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SweepPoint is one compressed variant of the model and what it cost.
type SweepPoint struct {
	Name          string  `json:"name"`   // e.g. "q8", "whiten r0.8 + q8"
	Series        string  `json:"series"` // plot series: "dense", "svd", "whiten", "asvd", "lorc"
	Quant         string  `json:"quant"`
	RankRatio     float64 `json:"rank_ratio,omitempty"`
	FileBytes     int64   `json:"file_bytes"`
	BitsPerWeight float64 `json:"bits_per_weight"` // tensor bytes·8 / parameters of the original model
	Summary       Summary `json:"summary"`
	Pareto        bool    `json:"pareto"` // on the bits-vs-KLD Pareto front
}

// Sweep is the whole grid.
type Sweep struct {
	Model      string       `json:"model"`
	Text       string       `json:"text"`
	Ctx        int          `json:"ctx"`
	Chunks     int          `json:"chunks"`
	Tokens     int          `json:"scored_tokens"`
	Convention Convention   `json:"convention"`
	RefPPL     ValueErr     `json:"ref_ppl"`
	Points     []SweepPoint `json:"points"`
}

// MarkPareto flags the points no other point beats on both size and KLD.
func (s *Sweep) MarkPareto() {
	for i := range s.Points {
		p := &s.Points[i]
		p.Pareto = true
		for j, q := range s.Points {
			if j == i {
				continue
			}
			le := q.BitsPerWeight <= p.BitsPerWeight && q.Summary.KLD.Value <= p.Summary.KLD.Value
			lt := q.BitsPerWeight < p.BitsPerWeight || q.Summary.KLD.Value < p.Summary.KLD.Value
			if le && lt {
				p.Pareto = false
				break
			}
		}
	}
}

// Markdown renders the sweep as a table, smallest first.
func (s *Sweep) Markdown() string {
	pts := append([]SweepPoint(nil), s.Points...)
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].BitsPerWeight < pts[j].BitsPerWeight })
	var b strings.Builder
	fmt.Fprintf(&b, "Model `%s`, text `%s`: %d chunks of %d tokens (%d scored predictions, convention %q). Reference PPL %.4f ± %.4f.\n\n",
		s.Model, s.Text, s.Chunks, s.Ctx, s.Tokens, s.Convention, s.RefPPL.Value, s.RefPPL.Err)
	b.WriteString("| variant | bits/weight | file | PPL | PPL ratio | mean KLD | 99% KLD | same top | Pareto |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |\n")
	for _, p := range pts {
		mark := ""
		if p.Pareto {
			mark = "★"
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f MiB | %.4f | %.4f ± %.4f | %.6f ± %.6f | %.6f | %.2f%% | %s |\n",
			p.Name, p.BitsPerWeight, float64(p.FileBytes)/(1<<20), p.Summary.PPL.Value,
			p.Summary.PPLRatio.Value, p.Summary.PPLRatio.Err, p.Summary.KLD.Value, p.Summary.KLD.Err,
			p.Summary.KLDDist.P99, 100*p.Summary.SameTop.Value, mark)
	}
	return b.String()
}

// Write stores sweep.json, sweep.md and the plots in dir.
func (s *Sweep) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sweep.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sweep.md"), []byte(s.Markdown()), 0o644); err != nil {
		return err
	}
	return s.Plot(dir)
}

// kldFloor keeps exact (KLD 0) points on a log axis.
const kldFloor = 1e-7

func plotKLD(p SweepPoint) float64 { return math.Max(p.Summary.KLD.Value, kldFloor) }
