package chart

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	xfont "golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot size and resolution: wide enough for a README, sharp on HiDPI.
const (
	plotWidth  = 9 * vg.Inch
	plotHeight = 5.5 * vg.Inch
	plotDPI    = 144
)

// Point is one compressed variant of the model as the charts show it.
type Point struct {
	Name   string // label beside the marker, e.g. "whiten r0.8 + q8"
	Series string // colour and glyph: "dense", "svd", "whiten", "asvd", "lorc", "lorc-whiten", "preset"
	// BitsPerWeight is the x coordinate.
	BitsPerWeight float64
	KLD           float64 // mean KLD from the reference (nats/token)
	// PPLRatio is PPL(compressed)/PPL(reference), PPLRatioErr its standard error.
	PPLRatio, PPLRatioErr float64
	Pareto                bool // on the bits-vs-KLD Pareto front: drawn filled
}

// Sweep is the grid the charts show and what its subtitle says about it.
type Sweep struct {
	Model  string // title
	Text   string // evaluation text (its base name is shown)
	Ctx    int    // tokens per chunk
	Chunks int
	Tokens int // scored predictions
	Points []Point
	// XLabel, when set, replaces the x axis label (the x values are then
	// what it says, e.g. projection bits per weight).
	XLabel string
}

// chart is one of the sweep's plots.
type chart struct {
	file   string
	title  string
	ylabel string
	y, err func(Point) float64 // value and its ± uncertainty (nil: none)
	logY   bool
	// label, when set, prints the value after a point's name: points that
	// crowd around one value (every near-lossless encoding at PPL ratio
	// ≈ 1 beside low-rank points at 1.2) stay readable from the labels.
	label string
	unity bool // draw the "no change" line at y = 1
	front bool // draw the Pareto front (it is a front only against KLD)
}

// Plot draws bits per weight against mean KLD (log scale) and against the
// PPL ratio (with its uncertainty), one colour and glyph per series,
// Pareto-optimal points filled and dominated ones hollow, the Pareto front
// dashed, and writes each as PNG and SVG.
func (s *Sweep) Plot(dir string) error {
	charts := []chart{
		{file: "bpw_vs_kld", title: "size vs divergence from the original",
			ylabel: "mean KLD from the f32 reference (nats/token, log scale)",
			y:      func(p Point) float64 { return p.KLD }, logY: true, front: true},
		{file: "bpw_vs_ppl_ratio", title: "size vs perplexity",
			ylabel: "PPL(compressed) / PPL(f32 reference), ± 1 s.e.",
			y:      func(p Point) float64 { return p.PPLRatio },
			err:    func(p Point) float64 { return p.PPLRatioErr }, label: " (%.4f)", unity: true},
	}
	fonts, err := plotFonts()
	if err != nil {
		return err
	}
	st := newPlotStyles(text.Plain{Fonts: fonts})
	for _, c := range charts {
		d := s.chartData(c)
		if err := savePlot(filepath.Join(dir, c.file), func(dc draw.Canvas) { d.render(dc, st) }); err != nil {
			return fmt.Errorf("plot %s: %w", c.file, err)
		}
	}
	return nil
}

// plotFonts parses the Go fonts (regular and bold) into a cache of its own,
// so that nothing is parsed until a chart is drawn.
func plotFonts() (*font.Cache, error) {
	reg, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("parsing Go Regular font: %w", err)
	}
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("parsing Go Bold font: %w", err)
	}
	return font.NewCache(font.Collection{
		{Font: font.Font{Typeface: "Go"}, Face: reg},
		{Font: font.Font{Typeface: "Go", Weight: xfont.WeightBold}, Face: bold},
	}), nil
}

// savePlot renders the same drawing into a PNG and an SVG canvas and writes
// base.png and base.svg.
func savePlot(base string, render func(draw.Canvas)) error {
	png := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	render(draw.New(png))
	svg := vgsvg.New(plotWidth, plotHeight)
	render(draw.New(svg))
	write := func(name string, wt func(f *os.File) error) error {
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		if err := wt(f); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", name, err)
		}
		return f.Close()
	}
	if err := write(base+".png", func(f *os.File) error { _, err := vgimg.PngCanvas{Canvas: png}.WriteTo(f); return err }); err != nil {
		return err
	}
	return write(base+".svg", func(f *os.File) error {
		var b bytes.Buffer
		if _, err := svg.WriteTo(&b); err != nil {
			return err
		}
		// Viewers without the Go font should fall back to a sans-serif
		// one, whose widths are closer than a serif's to those the layout
		// was measured with.
		_, err := f.Write(bytes.ReplaceAll(b.Bytes(), []byte("font-family:Go;"), []byte("font-family:Go,sans-serif;")))
		return err
	})
}

// plotStyles are the text styles of one chart.
type plotStyles struct {
	title, subtitle, axisLabel, tick, point, legend text.Style
}

func newPlotStyles(h text.Handler) plotStyles {
	sty := func(size float64, w xfont.Weight) text.Style {
		return text.Style{Color: color.Black, Font: font.Font{Typeface: "Go", Weight: w, Size: vg.Points(size)}, Handler: h}
	}
	return plotStyles{
		title:     sty(13, xfont.WeightBold),
		subtitle:  sty(10, xfont.WeightNormal),
		axisLabel: sty(10.5, xfont.WeightNormal),
		tick:      sty(9.5, xfont.WeightNormal),
		point:     sty(8.5, xfont.WeightNormal),
		legend:    sty(9.5, xfont.WeightNormal),
	}
}

// plotPoint is one marker in data coordinates (y is log10 on a log chart).
type plotPoint struct {
	x, y   float64
	lo, hi float64 // error bar; present when lo < hi
	label  string
	series int
	pareto bool
}

// chartData is a chart reduced to what is drawn, before any layout.
type chartData struct {
	title, subtitle string
	xlabel, ylabel  string
	logY            bool
	floor           float64 // log chart: log10 of where exact zeros sit; NaN when none is needed
	unity           bool
	series          []string
	points          []plotPoint
	front           []plotPoint // Pareto points sorted by x
}

// chartData gathers the points of one chart. On a log chart, values the
// axis cannot show (a KLD of exactly 0: the encoding reproduces the
// reference) sit on a floor one decade below the smallest positive value,
// where the axis reads "0".
func (s *Sweep) chartData(c chart) chartData {
	d := chartData{
		title:    fmt.Sprintf("%s: %s", s.Model, c.title),
		subtitle: fmt.Sprintf("%s, %d chunks × %d tokens, %d scored predictions", filepath.Base(s.Text), s.Chunks, s.Ctx, s.Tokens),
		xlabel:   cmp.Or(s.XLabel, "bits per weight (all tensors; q8 includes its scales and 16-bit embeddings)"),
		ylabel:   c.ylabel,
		logY:     c.logY,
		floor:    math.NaN(),
		unity:    c.unity,
	}
	if c.logY {
		minPos, zeros := math.Inf(1), false
		for _, pt := range s.Points {
			switch v := c.y(pt); {
			case v > 0:
				minPos = min(minPos, v)
			case v == 0:
				zeros = true
			}
		}
		if zeros {
			if math.IsInf(minPos, 1) {
				minPos = 1e-6
			}
			d.floor = math.Floor(math.Log10(minPos)) - 1
		}
	}
	index := map[string]int{}
	for _, pt := range s.Points {
		si, ok := index[pt.Series]
		if !ok {
			si = len(d.series)
			index[pt.Series] = si
			d.series = append(d.series, pt.Series)
		}
		v := c.y(pt)
		p := plotPoint{x: pt.BitsPerWeight, y: v, label: pt.Name, series: si, pareto: pt.Pareto}
		if c.logY {
			switch {
			case v > 0:
				p.y = math.Log10(v)
				// Decades are far apart on this axis: print the value.
				p.label += fmt.Sprintf(" (%.1e)", v)
			case v == 0:
				p.y = d.floor
				p.label += " (KLD 0, exact)"
			default:
				p.y = math.NaN()
			}
		}
		if c.label != "" && isFinite(v) {
			p.label += fmt.Sprintf(c.label, v)
		}
		if c.err != nil {
			if e := c.err(pt); e > 0 && !math.IsInf(e, 0) {
				p.lo, p.hi = p.y-e, p.y+e
			}
		}
		// A value that cannot be placed (NaN, ±Inf, a negative KLD) is
		// left out rather than drawn somewhere misleading.
		if isFinite(p.x) && isFinite(p.y) {
			d.points = append(d.points, p)
		}
	}
	for _, p := range d.points {
		if p.pareto && c.front {
			d.front = append(d.front, p)
		}
	}
	slices.SortStableFunc(d.front, func(a, b plotPoint) int {
		if a.x != b.x {
			return cmpFloat(a.x, b.x)
		}
		return cmpFloat(a.y, b.y)
	})
	return d
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// seriesLegend explains a series name in the legend.
func seriesLegend(name string) string {
	switch name {
	case "dense":
		return "dense: one encoding for all projections"
	case "svd":
		return "svd: truncated SVD"
	case "whiten":
		return "whiten: SVD of whitened weights (SVD-LLM)"
	case "asvd":
		return "asvd: activation-scaled SVD"
	case "lorc":
		return "lorc: quantized + low-rank error correction"
	case "lorc-whiten":
		return "lorc-whiten: lorc with whitened correction"
	case "preset":
		return "preset: a mix of encodings per tensor"
	}
	return name
}

// seriesColor is a colour of a colour-blind-safe set.
func seriesColor(i int) color.RGBA {
	cols := [...]color.RGBA{
		{R: 0, G: 114, B: 178, A: 255},   // blue
		{R: 213, G: 94, B: 0, A: 255},    // vermilion
		{R: 0, G: 158, B: 115, A: 255},   // green
		{R: 204, G: 121, B: 167, A: 255}, // purple
		{R: 230, G: 159, B: 0, A: 255},   // orange
		{R: 86, G: 180, B: 233, A: 255},  // sky blue
		{R: 120, G: 120, B: 120, A: 255}, // grey
	}
	return cols[i%len(cols)]
}

type markerShape int

const (
	shapeCircle markerShape = iota
	shapeTriangle
	shapeSquare
	shapeDiamond
	shapeTriangleDown
	numMarkerShapes
)

// knownSeries fixes the colour and glyph of the series a sweep makes, so
// that a method looks the same in every chart and every sweep and no two
// of them look alike.
func knownSeries(name string) (int, bool) {
	i := slices.Index([]string{"dense", "svd", "whiten", "asvd", "lorc", "lorc-whiten", "preset"}, name)
	return i, i >= 0
}

// seriesStyle is the colour and glyph of series name; other is its place
// among the chart's series that knownSeries does not know. Those take the
// colours after the known ones and shapes in order; the two cycle
// independently, so that they stay distinct beyond the number of either.
func seriesStyle(name string, other int) (color.RGBA, markerShape) {
	if k, ok := knownSeries(name); ok {
		return seriesColor(k), markerShape(k % int(numMarkerShapes))
	}
	return seriesColor(other + 6), markerShape(other % int(numMarkerShapes))
}

// style is the colour and glyph of the chart's i-th series.
func (d *chartData) style(i int) (color.RGBA, markerShape) {
	other := 0
	for _, n := range d.series[:i] {
		if _, ok := knownSeries(n); !ok {
			other++
		}
	}
	return seriesStyle(d.series[i], other)
}

const glyphRadius = 4.5 // points

// drawMarker draws a glyph centred on pt: filled with a thin white rim so
// that touching markers stay apart, or hollow with a white inside so that
// lines beneath do not show through.
func drawMarker(c draw.Canvas, sh markerShape, col color.Color, filled bool, pt vg.Point, r vg.Length) {
	var p vg.Path
	switch sh {
	case shapeCircle:
		p.Move(vg.Point{X: pt.X + r, Y: pt.Y})
		p.Arc(pt, r, 0, 2*math.Pi)
	case shapeTriangle, shapeTriangleDown:
		r *= 1.2 // the same visual weight as the circle
		up := vg.Length(1)
		if sh == shapeTriangleDown {
			up = -1
		}
		for k := range 3 {
			a := math.Pi/2 + float64(k)*2*math.Pi/3
			q := vg.Point{X: pt.X + r*vg.Length(math.Cos(a)), Y: pt.Y + up*(r*vg.Length(math.Sin(a))-r*0.15)}
			if k == 0 {
				p.Move(q)
			} else {
				p.Line(q)
			}
		}
	case shapeSquare:
		h := r * 0.85
		p.Move(vg.Point{X: pt.X - h, Y: pt.Y - h})
		p.Line(vg.Point{X: pt.X + h, Y: pt.Y - h})
		p.Line(vg.Point{X: pt.X + h, Y: pt.Y + h})
		p.Line(vg.Point{X: pt.X - h, Y: pt.Y + h})
	default: // diamond
		h := r * 1.15
		p.Move(vg.Point{X: pt.X, Y: pt.Y - h})
		p.Line(vg.Point{X: pt.X + h, Y: pt.Y})
		p.Line(vg.Point{X: pt.X, Y: pt.Y + h})
		p.Line(vg.Point{X: pt.X - h, Y: pt.Y})
	}
	p.Close()
	if filled {
		c.SetColor(col)
		c.Fill(p)
		c.SetLineStyle(draw.LineStyle{Color: color.White, Width: vg.Points(0.6)})
		c.Stroke(p)
		return
	}
	c.SetColor(color.White)
	c.Fill(p)
	c.SetLineStyle(draw.LineStyle{Color: col, Width: vg.Points(1.4)})
	c.Stroke(p)
}

// Line styles; functions rather than package variables so that nothing
// shared can be mutated.
func gridStyle() draw.LineStyle {
	return draw.LineStyle{Color: color.Gray{Y: 228}, Width: vg.Points(0.6)}
}
func axisStyle() draw.LineStyle {
	return draw.LineStyle{Color: color.Gray{Y: 60}, Width: vg.Points(0.8)}
}
func frontStyle() draw.LineStyle {
	return draw.LineStyle{Width: vg.Points(1.2), Color: color.Gray{Y: 120}, Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
}
func unityStyle() draw.LineStyle {
	return draw.LineStyle{Width: vg.Points(1), Color: color.RGBA{R: 200, G: 60, B: 60, A: 255}, Dashes: []vg.Length{vg.Points(1.5), vg.Points(2.5)}}
}
func errorBarStyle() draw.LineStyle {
	return draw.LineStyle{Width: vg.Points(0.9), Color: color.Gray{Y: 90}}
}
func leaderStyle() draw.LineStyle {
	return draw.LineStyle{Width: vg.Points(0.6), Color: color.Gray{Y: 130}}
}

// tick is one axis tick; an empty label makes it a minor tick.
type tick struct {
	Value float64
	Label string
}

// niceTicks marks a linear axis (linearTicks with about six intervals).
type niceTicks struct{}

func (niceTicks) Ticks(lo, hi float64) []tick { return linearTicks(lo, hi, 6) }

// decadeTicks marks a log10 axis (logTicks). When hasFloor, exact zeros are
// drawn at floor: its tick reads "0", and the decade above it, where no
// value can be, gets no minor ticks.
type decadeTicks struct {
	floor    float64
	hasFloor bool
}

func (t decadeTicks) Ticks(lo, hi float64) []tick {
	ts := logTicks(lo, hi, 8)
	if !t.hasFloor {
		return ts
	}
	out := ts[:0]
	for _, k := range ts {
		switch {
		case k.Value < t.floor, k.Value > t.floor && k.Value < t.floor+1:
			continue
		case k.Value == t.floor:
			k.Label = "0"
		case k.Value == t.floor+1 && k.Label == "":
			// The first real decade is always labelled, next to the "0".
			k.Label = decadeLabel(int(k.Value), false)
		}
		out = append(out, k)
	}
	return out
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, f := range []float64{1, 2, 5} {
		if f*mag >= raw*(1-1e-9) {
			return f * mag
		}
	}
	return 10 * mag
}

// linearTicks labels multiples of a 1-2-5 step that cut [lo, hi] into
// about n intervals, with just enough decimals to tell the labels apart
// (0.99975 and 1.00025 must not both read "1"), and puts unlabelled minor
// ticks halfway between them.
func linearTicks(lo, hi float64, n int) []tick {
	if !(hi > lo) || n < 1 {
		return []tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', 6, 64)}}
	}
	step := niceStep((hi - lo) / float64(n))
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	eps := step * 1e-9
	var ticks []tick
	first := math.Ceil(lo/step - 1e-9)
	if m := (first - 0.5) * step; m >= lo-eps {
		ticks = append(ticks, tick{Value: m})
	}
	for i := first; i*step <= hi+eps; i++ {
		v := i * step
		if math.Abs(v) < eps {
			v = 0 // not "-0"
		}
		ticks = append(ticks, tick{Value: v, Label: strconv.FormatFloat(v, 'f', dec, 64)})
		if m := v + step/2; m <= hi+eps {
			ticks = append(ticks, tick{Value: m})
		}
	}
	return ticks
}

// logTicks marks a log10 axis spanning [lo, hi] (in decades): a major tick
// at every power of ten, labelled at most about maxLabels times (every
// decade, or every 2nd, 3rd… when the axis spans many), and, when it spans
// few decades, minor ticks at 2…9 times each power of ten.
func logTicks(lo, hi float64, maxLabels int) []tick {
	a, b := int(math.Ceil(lo-1e-9)), int(math.Floor(hi+1e-9))
	every := 1
	for (b-a)/every+1 > max(maxLabels, 2) {
		every++
	}
	// Plain numbers read best near 1; one notation per axis.
	plain := a >= -2 && b <= 3
	var ticks []tick
	for e := a; e <= b; e++ {
		t := tick{Value: float64(e)}
		if (e-a)%every == 0 {
			t.Label = decadeLabel(e, plain)
		}
		ticks = append(ticks, t)
	}
	if b-a <= 4 {
		for e := a - 1; e <= b; e++ {
			for k := 2; k < 10; k++ {
				if v := float64(e) + math.Log10(float64(k)); v >= lo-1e-9 && v <= hi+1e-9 {
					ticks = append(ticks, tick{Value: v})
				}
			}
		}
	}
	return ticks
}

// decadeLabel prints 10^e as 1e-5 and so on, or plainly (0.01, 100).
func decadeLabel(e int, plain bool) string {
	if plain {
		return strconv.FormatFloat(math.Pow(10, float64(e)), 'f', -1, 64)
	}
	return fmt.Sprintf("1e%d", e)
}

// axis maps data values onto one dimension of the plot area.
type axis struct {
	lo, hi float64
	ticks  []tick
}

func (a axis) at(v float64, from, to vg.Length) vg.Length {
	return from + vg.Length((v-a.lo)/(a.hi-a.lo))*(to-from)
}

// dataRange is the extent of the points, error bars included.
func (d *chartData) dataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, p := range d.points {
		xmin, xmax = min(xmin, p.x), max(xmax, p.x)
		lo, hi := p.y, p.y
		if p.lo < p.hi {
			lo, hi = p.lo, p.hi
		}
		ymin, ymax = min(ymin, lo), max(ymax, hi)
	}
	if d.unity {
		ymin, ymax = min(ymin, 1), max(ymax, 1)
	}
	if math.IsInf(xmin, 1) { // no points
		xmin, xmax = 0, 1
		ymin, ymax = 0, 1
		if d.logY {
			ymin, ymax = -2, 0
		}
	}
	return
}

// axes frames the data with some room around it.
func (d *chartData) axes() (x, y axis) {
	xmin, xmax, ymin, ymax := d.dataRange()
	xs := xmax - xmin
	if xs <= 0 {
		xs = max(math.Abs(xmin)*0.2, 1)
	}
	x = axis{lo: xmin - 0.09*xs, hi: xmax + 0.09*xs}
	x.ticks = niceTicks{}.Ticks(x.lo, x.hi)
	if d.logY {
		ys := max(ymax-ymin, 1)
		y = axis{lo: ymin - 0.08*ys, hi: ymax + 0.1*ys}
		// Show at least two powers of ten, so that the axis can be read.
		if math.Floor(y.hi)-math.Ceil(y.lo) < 1 {
			y.lo, y.hi = min(y.lo, math.Floor(ymin)), max(y.hi, math.Ceil(ymax))
		}
		y.ticks = decadeTicks{floor: d.floor, hasFloor: !math.IsNaN(d.floor)}.Ticks(y.lo, y.hi)
		return x, y
	}
	ys := ymax - ymin
	if ys <= 0 {
		ys = max(math.Abs(ymin)*1e-3, 1e-6)
	}
	y = axis{lo: ymin - 0.1*ys, hi: ymax + 0.1*ys}
	y.ticks = niceTicks{}.Ticks(y.lo, y.hi)
	return x, y
}

// textLine measures single-line text: width and the font's ascent and
// descent around the baseline.
type textLine struct {
	w, asc, desc vg.Length
}

func measure(sty text.Style, s string) textLine {
	e := sty.FontExtents()
	return textLine{w: sty.Width(s), asc: e.Ascent, desc: e.Descent}
}

func (t textLine) h() vg.Length { return t.asc + t.desc }

// fillLine draws single-line text with its baseline at y, its left edge
// (xa = XLeft), centre or right edge at x. text.Plain puts the baseline
// font-size minus ascent above the anchor of bottom-aligned text.
func fillLine(c draw.Canvas, sty text.Style, s string, x, baseline vg.Length, xa text.XAlignment) {
	sty.XAlign, sty.YAlign = xa, text.YBottom
	e := sty.FontExtents()
	c.FillText(sty, vg.Point{X: x, Y: baseline + e.Ascent - sty.Font.Size}, s)
}

// fillIn draws single-line text whose box (as measure gives it) is r.
func fillIn(c draw.Canvas, sty text.Style, s string, r vg.Rectangle) {
	e := sty.FontExtents()
	fillLine(c, sty, s, r.Min.X, r.Min.Y+e.Descent, text.XLeft)
}

// legendEntry is one row of the legend.
type legendEntry struct {
	label string
	thumb func(c draw.Canvas, mid vg.Point, w vg.Length)
}

func (d *chartData) legendEntries() []legendEntry {
	var es []legendEntry
	for i, name := range d.series {
		col, sh := d.style(i)
		es = append(es, legendEntry{seriesLegend(name), func(c draw.Canvas, mid vg.Point, _ vg.Length) {
			drawMarker(c, sh, col, true, mid, vg.Points(glyphRadius))
		}})
	}
	hollow := false
	for _, p := range d.points {
		hollow = hollow || !p.pareto
	}
	if hollow {
		es = append(es, legendEntry{"hollow: not on the Pareto front", func(c draw.Canvas, mid vg.Point, _ vg.Length) {
			drawMarker(c, shapeCircle, color.Gray{Y: 90}, false, mid, vg.Points(glyphRadius))
		}})
	}
	if len(d.front) > 1 {
		es = append(es, legendEntry{"Pareto front (bits vs KLD)", func(c draw.Canvas, mid vg.Point, w vg.Length) {
			c.StrokeLine2(frontStyle(), mid.X-w/2, mid.Y, mid.X+w/2, mid.Y)
		}})
	}
	if d.unity {
		es = append(es, legendEntry{"no change (ratio 1)", func(c draw.Canvas, mid vg.Point, w vg.Length) {
			c.StrokeLine2(unityStyle(), mid.X-w/2, mid.Y, mid.X+w/2, mid.Y)
		}})
	}
	return es
}

// layout is where everything of one chart goes on the canvas.
type layout struct {
	area vg.Rectangle // the plot area
	x, y axis
	pos  []vg.Point // of d.points
	// legend is the strip above the plot area; legendX and legendRow
	// place each entry in it (see legendFlow).
	legend    vg.Rectangle
	legendX   []vg.Length
	legendRow []int
	labels    []placement // of d.points
}

func (l *layout) px(v float64) vg.Length { return l.x.at(v, l.area.Min.X, l.area.Max.X) }
func (l *layout) py(v float64) vg.Length { return l.y.at(v, l.area.Min.Y, l.area.Max.Y) }

const (
	pad      = 10  // canvas margin, points
	tickLen  = 4.5 // major tick length, points
	minorLen = 2.5
)

// legend geometry, in points.
const (
	legendThumb = 22 // width of an entry's glyph or line sample
	legendGap   = 5  // between the sample and its text
	legendColSp = 16 // between entries of a row
	legendRowSp = 3
	legendBelow = 8 // between the legend and the plot area
)

// legendFlow lays the legend out as a strip of rows across width w, so that
// it never hides data however many series a sweep has: for each entry its
// x offset from the strip's left edge and its row, and the strip's height.
// Each row is centred.
func legendFlow(st plotStyles, es []legendEntry, w vg.Length) (xs []vg.Length, rows []int, h vg.Length) {
	if len(es) == 0 {
		return nil, nil, 0
	}
	widths := make([]vg.Length, len(es))
	for i, e := range es {
		widths[i] = legendThumb + legendGap + measure(st.legend, e.label).w
	}
	xs, rows = make([]vg.Length, len(es)), make([]int, len(es))
	var rowW []vg.Length
	var x vg.Length
	row := 0
	for i := range es {
		if x > 0 && x+legendColSp+widths[i] > w {
			rowW = append(rowW, x)
			x, row = 0, row+1
		}
		if x > 0 {
			x += legendColSp
		}
		xs[i], rows[i] = x, row
		x += widths[i]
	}
	rowW = append(rowW, x)
	for i := range xs {
		xs[i] += max(0, (w-rowW[rows[i]])/2)
	}
	rh := measure(st.legend, "Ag").h()
	return xs, rows, vg.Length(row+1)*rh + vg.Length(row)*legendRowSp
}

// plan lays the chart out on a canvas of the given bounds: margins from
// the text it must hold, the legend as a strip between the titles and the
// plot area, then the point labels.
func (d *chartData) plan(bounds vg.Rectangle, st plotStyles) layout {
	title, sub := measure(st.title, d.title), measure(st.subtitle, d.subtitle)
	axl, tk := measure(st.axisLabel, d.xlabel), measure(st.tick, "0")

	var l layout
	l.x, l.y = d.axes()
	var tickW vg.Length
	for _, t := range l.y.ticks {
		if t.Label != "" {
			tickW = max(tickW, measure(st.tick, t.Label).w)
		}
	}
	l.area = vg.Rectangle{
		Min: vg.Point{
			X: bounds.Min.X + pad + axl.h() + 8 + tickW + 4 + tickLen,
			Y: bounds.Min.Y + pad + axl.h() + 6 + tk.h() + 3 + tickLen,
		},
		Max: vg.Point{
			X: bounds.Max.X - pad - 8,
			Y: bounds.Max.Y - pad - title.h() - 2 - sub.h() - 10,
		},
	}
	es := d.legendEntries()
	xs, rows, lh := legendFlow(st, es, l.area.Max.X-l.area.Min.X)
	if lh > 0 {
		l.legend = vg.Rectangle{Min: vg.Point{X: l.area.Min.X, Y: l.area.Max.Y - lh}, Max: l.area.Max}
		l.legendX, l.legendRow = xs, rows
		l.area.Max.Y -= lh + legendBelow
	}
	l.pos = make([]vg.Point, len(d.points))
	for i, p := range d.points {
		l.pos[i] = vg.Point{X: l.px(p.x), Y: l.py(p.y)}
	}
	specs := make([]labelSpec, len(d.points))
	for i, p := range d.points {
		lb := measure(st.point, p.label)
		specs[i] = labelSpec{at: l.pos[i], radius: vg.Points(glyphRadius), w: lb.w, h: lb.h()}
	}
	l.labels = placeLabels(specs, l.area, d.obstacles(&l, false))
	return l
}

// obstacles are what labels and the legend must keep off: error bars, the
// lines (the Pareto front as a row of small boxes along it), and, when
// markers is set, the markers.
func (d *chartData) obstacles(l *layout, markers bool) []vg.Rectangle {
	var obst []vg.Rectangle
	r := vg.Points(glyphRadius) + 1
	for i, p := range d.points {
		q := l.pos[i]
		if markers {
			obst = append(obst, vg.Rectangle{Min: vg.Point{X: q.X - r, Y: q.Y - r}, Max: vg.Point{X: q.X + r, Y: q.Y + r}})
		}
		if p.lo < p.hi {
			obst = append(obst, vg.Rectangle{Min: vg.Point{X: q.X - 3, Y: l.py(p.lo)}, Max: vg.Point{X: q.X + 3, Y: l.py(p.hi)}})
		}
	}
	if d.unity {
		y := l.py(1)
		obst = append(obst, vg.Rectangle{Min: vg.Point{X: l.area.Min.X, Y: y - 1}, Max: vg.Point{X: l.area.Max.X, Y: y + 1}})
	}
	if len(d.front) > 1 {
		line := d.frontLine(l)
		for i := 1; i < len(line); i++ {
			a, b := line[i-1], line[i]
			n := int(math.Hypot(float64(b.X-a.X), float64(b.Y-a.Y))/4) + 1
			for j := 0; j <= n; j++ {
				t := vg.Length(float64(j) / float64(n))
				q := vg.Point{X: a.X + t*(b.X-a.X), Y: a.Y + t*(b.Y-a.Y)}
				obst = append(obst, vg.Rectangle{Min: vg.Point{X: q.X - 3, Y: q.Y - 3}, Max: vg.Point{X: q.X + 3, Y: q.Y + 3}})
			}
		}
	}
	return obst
}

func (d *chartData) frontLine(l *layout) []vg.Point {
	line := make([]vg.Point, len(d.front))
	for i, p := range d.front {
		line[i] = vg.Point{X: l.px(p.x), Y: l.py(p.y)}
	}
	return line
}

// render draws the chart onto c.
func (d *chartData) render(c draw.Canvas, st plotStyles) {
	l := d.plan(c.Rectangle, st)
	a := l.area
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())

	// Title and subtitle, centred over the plot area.
	title, sub := measure(st.title, d.title), measure(st.subtitle, d.subtitle)
	mid := (a.Min.X + a.Max.X) / 2
	top := c.Max.Y - pad
	fillLine(c, st.title, d.title, mid, top-title.asc, text.XCenter)
	fillLine(c, st.subtitle, d.subtitle, mid, top-title.h()-2-sub.asc, text.XCenter)

	// Grid at the labelled ticks (and every decade), then the ticks.
	tk := measure(st.tick, "0")
	for _, t := range l.x.ticks {
		x := l.px(t.Value)
		if x < a.Min.X-0.01 || x > a.Max.X+0.01 {
			continue
		}
		n := vg.Length(minorLen)
		if t.Label != "" {
			n = tickLen
			c.StrokeLine2(gridStyle(), x, a.Min.Y, x, a.Max.Y)
			fillLine(c, st.tick, t.Label, x, a.Min.Y-tickLen-3-tk.asc, text.XCenter)
		}
		c.StrokeLine2(axisStyle(), x, a.Min.Y, x, a.Min.Y-n)
	}
	for _, t := range l.y.ticks {
		y := l.py(t.Value)
		if y < a.Min.Y-0.01 || y > a.Max.Y+0.01 {
			continue
		}
		n := vg.Length(minorLen)
		decade := d.logY && t.Value == math.Trunc(t.Value)
		if t.Label != "" || decade {
			n = tickLen
			c.StrokeLine2(gridStyle(), a.Min.X, y, a.Max.X, y)
		}
		if t.Label != "" {
			// Centre the digits (about 0.7 em tall) on the tick.
			fillLine(c, st.tick, t.Label, a.Min.X-tickLen-4, y-0.35*st.tick.Font.Size, text.XRight)
		}
		c.StrokeLine2(axisStyle(), a.Min.X, y, a.Min.X-n, y)
	}
	c.StrokeLine2(axisStyle(), a.Min.X, a.Min.Y, a.Max.X, a.Min.Y)
	c.StrokeLine2(axisStyle(), a.Min.X, a.Min.Y, a.Min.X, a.Max.Y)
	if d.logY && !math.IsNaN(d.floor) {
		// Break the axis between "0" and the first decade: zero is not on
		// a log scale.
		y := l.py(d.floor + 0.5)
		if y > a.Min.Y && y < a.Max.Y {
			gap := vg.Points(3)
			c.FillPolygon(color.White, []vg.Point{{X: a.Min.X - 5, Y: y - gap}, {X: a.Min.X + 5, Y: y - gap}, {X: a.Min.X + 5, Y: y + gap}, {X: a.Min.X - 5, Y: y + gap}})
			for _, dy := range []vg.Length{-gap, gap} {
				c.StrokeLine2(axisStyle(), a.Min.X-4, y+dy-2, a.Min.X+4, y+dy+2)
			}
		}
	}

	// Axis labels.
	axl := measure(st.axisLabel, d.xlabel)
	fillLine(c, st.axisLabel, d.xlabel, (a.Min.X+a.Max.X)/2, c.Min.Y+pad+axl.desc, text.XCenter)
	ysty := st.axisLabel
	ysty.Rotation = math.Pi / 2
	ysty.XAlign, ysty.YAlign = text.XCenter, text.YBottom
	// Rotated a quarter turn, bottom-aligned text put at x spans
	// [x - size, x - size + ascent + descent]: see text.Plain.Draw.
	c.FillText(ysty, vg.Point{X: c.Min.X + pad + ysty.Font.Size, Y: (a.Min.Y + a.Max.Y) / 2}, d.ylabel)

	// Data, clipped to the plot area.
	da := draw.Crop(c, a.Min.X-c.Min.X, a.Max.X-c.Max.X, a.Min.Y-c.Min.Y, a.Max.Y-c.Max.Y)
	if d.unity {
		y := l.py(1)
		da.StrokeLines(unityStyle(), da.ClipLinesXY([]vg.Point{{X: a.Min.X, Y: y}, {X: a.Max.X, Y: y}})...)
	}
	if len(d.front) > 1 {
		da.StrokeLines(frontStyle(), da.ClipLinesXY(d.frontLine(&l))...)
	}
	// Labels get a white ground over the lines (not over the markers,
	// drawn later), so that a line crossing one does not garble it.
	for _, pl := range l.labels {
		r := pl.rect
		da.FillPolygon(color.White, []vg.Point{{X: r.Min.X - 1, Y: r.Min.Y}, {X: r.Max.X + 1, Y: r.Min.Y}, {X: r.Max.X + 1, Y: r.Max.Y}, {X: r.Min.X - 1, Y: r.Max.Y}})
	}
	for i, p := range d.points {
		if p.lo < p.hi {
			x, y0, y1 := l.pos[i].X, l.py(p.lo), l.py(p.hi)
			cp := vg.Points(3)
			da.StrokeLines(errorBarStyle(), da.ClipLinesXY(
				[]vg.Point{{X: x, Y: y0}, {X: x, Y: y1}},
				[]vg.Point{{X: x - cp, Y: y0}, {X: x + cp, Y: y0}},
				[]vg.Point{{X: x - cp, Y: y1}, {X: x + cp, Y: y1}})...)
		}
	}
	// Dominated points first, so that Pareto points stay on top.
	for _, pareto := range []bool{false, true} {
		for i, p := range d.points {
			if p.pareto == pareto {
				col, sh := d.style(p.series)
				drawMarker(c, sh, col, p.pareto, l.pos[i], vg.Points(glyphRadius))
			}
		}
	}

	// Point labels, with a leader line when they had to move away.
	for i, p := range d.points {
		pl := l.labels[i]
		if pl.leader {
			from, to := l.pos[i], nearestOn(pl.rect, l.pos[i])
			dx, dy := float64(to.X-from.X), float64(to.Y-from.Y)
			if dist := math.Hypot(dx, dy); dist > glyphRadius+2 {
				k := vg.Length((glyphRadius + 1) / dist)
				c.StrokeLine2(leaderStyle(), from.X+k*vg.Length(dx), from.Y+k*vg.Length(dy), to.X, to.Y)
			}
		}
		fillIn(c, st.point, p.label, pl.rect)
	}

	// Legend.
	row := measure(st.legend, "Ag")
	for i, e := range d.legendEntries() {
		x := l.legend.Min.X + l.legendX[i]
		top := l.legend.Max.Y - vg.Length(l.legendRow[i])*(row.h()+legendRowSp)
		e.thumb(c, vg.Point{X: x + legendThumb/2, Y: top - row.h()/2}, legendThumb)
		fillLine(c, st.legend, e.label, x+legendThumb+legendGap, top-row.asc, text.XLeft)
	}
}

// nearestOn is the point of r closest to p.
func nearestOn(r vg.Rectangle, p vg.Point) vg.Point {
	return vg.Point{X: min(max(p.X, r.Min.X), r.Max.X), Y: min(max(p.Y, r.Min.Y), r.Max.Y)}
}

// labelSpec is a label to place: the marker it belongs to and its size.
type labelSpec struct {
	at     vg.Point
	radius vg.Length
	w, h   vg.Length
}

// placement is where a label went and whether it is far enough from its
// marker to need a leader line.
type placement struct {
	rect   vg.Rectangle
	leader bool
}

// placeLabels puts each label beside its marker, in order from left to
// right, trying right, left, above, below and the diagonals, first close to
// the marker and then further out, and takes the candidate that overlaps
// the labels placed so far, the markers, the obstacles, and the outside of
// area least
// (nearer and earlier-tried positions win ties). No two labels ever get
// the same box, even for coincident markers.
func placeLabels(specs []labelSpec, area vg.Rectangle, obstacles []vg.Rectangle) []placement {
	order := make([]int, len(specs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmpFloat(float64(specs[a].at.X), float64(specs[b].at.X)); c != 0 {
			return c
		}
		return cmpFloat(float64(specs[b].at.Y), float64(specs[a].at.Y))
	})
	dirs := [][2]float64{{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {1, -1}, {-1, 1}, {-1, -1}}
	gaps := []vg.Length{2.5, 10, 20, 32, 48}
	const leaderFrom = 1 // index into gaps

	// Every marker is an obstacle, its cost the share of it a label hides.
	markers := make([]vg.Rectangle, len(specs))
	for i, sp := range specs {
		r := sp.radius + 1
		markers[i] = vg.Rectangle{Min: vg.Point{X: sp.at.X - r, Y: sp.at.Y - r}, Max: vg.Point{X: sp.at.X + r, Y: sp.at.Y + r}}
	}

	out := make([]placement, len(specs))
	var placed []vg.Rectangle
	for _, i := range order {
		sp := specs[i]
		best, bestScore := placement{}, math.Inf(1)
		// Past the listed gaps, only labels of many coincident markers
		// remain unplaced: they keep moving out until each finds a free box.
		for gi := 0; gi < len(gaps) || math.IsInf(bestScore, 1); gi++ {
			g := gaps[len(gaps)-1] + vg.Length(16*max(0, gi-len(gaps)+1))
			if gi < len(gaps) {
				g = gaps[gi]
			}
			for di, dir := range dirs {
				r := labelRect(sp, dir, g)
				if slices.ContainsFunc(placed, func(o vg.Rectangle) bool { return sameRect(o, r) }) {
					continue
				}
				area2 := float64(sp.w * sp.h)
				if area2 <= 0 {
					area2 = 1
				}
				var hidden float64
				for _, m := range markers {
					if a := overlapArea(r, []vg.Rectangle{m}); a > 0 {
						hidden += float64(a / ((m.Max.X - m.Min.X) * (m.Max.Y - m.Min.Y)))
					}
				}
				score := 6*float64(overlapArea(r, placed))/area2 +
					4*float64(overlapArea(r, obstacles))/area2 +
					3*hidden +
					10*float64(outsideArea(r, area))/area2 +
					0.35*float64(gi) + 0.01*float64(di)
				if score < bestScore {
					best, bestScore = placement{rect: r, leader: gi >= leaderFrom}, score
				}
			}
		}
		out[i] = best
		placed = append(placed, best.rect)
	}
	return out
}

// labelRect is the box of a label placed in direction dir (each component
// -1, 0 or 1) at gap g from the edge of its marker.
func labelRect(sp labelSpec, dir [2]float64, g vg.Length) vg.Rectangle {
	off := sp.radius + g
	if dir[0] != 0 && dir[1] != 0 {
		off = (sp.radius + g) * 0.75
	}
	x0 := labelStart(dir[0], sp.at.X, off, sp.w)
	y0 := labelStart(dir[1], sp.at.Y, off, sp.h)
	return vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x0 + sp.w, Y: y0 + sp.h}}
}

// labelStart is where, along one axis, a label of extent w begins when it
// is placed in direction d (-1, 0 or 1) at distance off from a marker
// centred at c; with d 0 the label is centred on the marker.
func labelStart(d float64, c, off, w vg.Length) vg.Length {
	switch d {
	case 1:
		return c + off
	case -1:
		return c - off - w
	}
	return c - w/2
}

func sameRect(a, b vg.Rectangle) bool {
	const eps = 1e-6
	return math.Abs(float64(a.Min.X-b.Min.X)) < eps && math.Abs(float64(a.Min.Y-b.Min.Y)) < eps &&
		math.Abs(float64(a.Max.X-b.Max.X)) < eps && math.Abs(float64(a.Max.Y-b.Max.Y)) < eps
}

// overlapArea sums the areas r shares with each of rs.
func overlapArea(r vg.Rectangle, rs []vg.Rectangle) vg.Length {
	var sum vg.Length
	for _, o := range rs {
		w := min(r.Max.X, o.Max.X) - max(r.Min.X, o.Min.X)
		h := min(r.Max.Y, o.Max.Y) - max(r.Min.Y, o.Min.Y)
		if w > 0 && h > 0 {
			sum += w * h
		}
	}
	return sum
}

// outsideArea is the part of r outside area.
func outsideArea(r, area vg.Rectangle) vg.Length {
	in := overlapArea(r, []vg.Rectangle{area})
	return (r.Max.X-r.Min.X)*(r.Max.Y-r.Min.Y) - in
}
