package eval

import (
	"fmt"
	"image/color"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot draws bits per weight against mean KLD (log scale) and against the
// PPL ratio, one series per method, the Pareto front as a line, and writes
// each as PNG and SVG.
func (s *Sweep) Plot(dir string) error {
	charts := []struct {
		file, ylabel string
		y            func(SweepPoint) float64
		logY         bool
	}{
		{"bpw_vs_kld", "mean KL divergence vs reference (nats/token, log scale)", plotKLD, true},
		{"bpw_vs_ppl_ratio", "PPL(candidate) / PPL(reference)", func(p SweepPoint) float64 { return p.Summary.PPLRatio.Value }, false},
	}
	for _, c := range charts {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: size vs accuracy (ctx %d, %d scored tokens)", s.Model, s.Ctx, s.Tokens)
		p.X.Label.Text = "bits per weight (all tensors, incl. scales)"
		p.Y.Label.Text = c.ylabel
		if c.logY {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		p.Legend.Top = true
		p.Add(plotter.NewGrid())

		series := map[string][]SweepPoint{}
		var names []string
		for _, pt := range s.Points {
			if _, ok := series[pt.Series]; !ok {
				names = append(names, pt.Series)
			}
			series[pt.Series] = append(series[pt.Series], pt)
		}
		for i, name := range names {
			pts := series[name]
			xy := make(plotter.XYs, len(pts))
			labels := make([]string, len(pts))
			for j, pt := range pts {
				xy[j] = plotter.XY{X: pt.BitsPerWeight, Y: c.y(pt)}
				labels[j] = pt.Name
			}
			sc, err := plotter.NewScatter(xy)
			if err != nil {
				return err
			}
			sc.GlyphStyle.Color = palette[i%len(palette)]
			sc.GlyphStyle.Shape = shapes[i%len(shapes)]
			sc.GlyphStyle.Radius = vg.Points(4)
			p.Add(sc)
			p.Legend.Add(name, sc)
			lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: labels})
			if err != nil {
				return err
			}
			for k := range lab.TextStyle {
				lab.TextStyle[k].Font.Size = vg.Points(8)
				lab.TextStyle[k].XAlign = draw.XLeft
			}
			lab.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(2)}
			p.Add(lab)
		}
		var front plotter.XYs
		for _, pt := range s.Points {
			if pt.Pareto {
				front = append(front, plotter.XY{X: pt.BitsPerWeight, Y: c.y(pt)})
			}
		}
		sort.Slice(front, func(i, j int) bool { return front[i].X < front[j].X })
		if len(front) > 1 {
			l, err := plotter.NewLine(front)
			if err != nil {
				return err
			}
			l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			l.LineStyle.Color = color.Gray{Y: 90}
			p.Add(l)
			p.Legend.Add("Pareto front (bits vs KLD)", l)
		}
		for _, ext := range []string{"png", "svg"} {
			if err := p.Save(8*vg.Inch, 5*vg.Inch, filepath.Join(dir, c.file+"."+ext)); err != nil {
				return fmt.Errorf("saving %s.%s: %w", c.file, ext, err)
			}
		}
	}
	return nil
}

var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255},
	color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255},
	color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 23, G: 190, B: 207, A: 255},
}

var shapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}
