package eval

import (
	"math"

	"github.com/shrink-llm/shrink/internal/chart"
)

// Plot draws bits per weight against mean KLD (log scale) and against the
// PPL ratio (with its uncertainty) into dir as bpw_vs_kld.{png,svg} and
// bpw_vs_ppl_ratio.{png,svg}: one colour and glyph per series,
// Pareto-optimal points filled and dominated ones hollow, the Pareto front
// dashed.
func (s *Sweep) Plot(dir string) error {
	c := chart.Sweep{Model: s.Model, Text: s.Text, Ctx: s.Ctx, Chunks: s.Chunks, Tokens: s.Tokens,
		Points: make([]chart.Point, len(s.Points))}
	for i, p := range s.Points {
		c.Points[i] = chart.Point{Name: p.Name, Series: p.Series, BitsPerWeight: p.BitsPerWeight,
			KLD: p.Summary.KLD.Value, PPLRatio: p.Summary.PPLRatio.Value, PPLRatioErr: p.Summary.PPLRatio.Err,
			Pareto: p.Pareto}
		if s.References != nil {
			c.Points[i].BitsPerWeight = p.ProjectionBits
		}
	}
	if r := s.References; r != nil {
		// Another tool's figures are given per projection weight: both
		// fronts share that axis. They have no PPL ratio here, so they
		// appear on the KLD chart only.
		c.XLabel = "bits per weight of the projection matrices (embeddings, head and norms not counted)"
		for _, p := range r.Points {
			c.Points = append(c.Points, chart.Point{Name: r.Label + " " + p.Name, Series: r.Label,
				BitsPerWeight: p.ProjectionBits, KLD: p.KLD, PPLRatio: math.NaN()})
		}
	}
	return c.Plot(dir)
}
