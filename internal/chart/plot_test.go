package chart

import (
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
)

// plotTestSweep has three series, a KLD of exactly 0, two coincident
// points and an error bar on every PPL ratio.
func plotTestSweep() *Sweep {
	mk := func(name, series string, bpw, kld, ratio float64, pareto bool) Point {
		return Point{Name: name, Series: series, BitsPerWeight: bpw, KLD: kld, PPLRatio: ratio, PPLRatioErr: 2e-4, Pareto: pareto}
	}
	s := &Sweep{Model: "toy", Text: "/x/valid.txt", Ctx: 64, Chunks: 3, Tokens: 189, Points: []Point{
		mk("f32", "dense", 32, 0, 1, true),
		mk("f16", "dense", 16, 3e-9, 1.00001, true),
		mk("bf16", "dense", 16, 3e-9, 1.00001, true), // coincident with f16
		mk("q8", "dense", 8.5, 2e-4, 1.002, true),
		mk("svd r0.5", "svd", 6, 0.05, 1.2, true),
		mk("svd r0.8", "svd", 9, 0.01, 1.05, false), // q8 is smaller and closer
		mk("lorc r16", "lorc", 9.2, 1e-4, 1.001, true),
	}}
	return s
}

func TestPlotWritesFiles(t *testing.T) {
	s := plotTestSweep()
	dir := t.TempDir()
	if err := s.Plot(dir); err != nil {
		t.Fatal(err)
	}
	kldLabels := []string{"f32 (KLD 0, exact)", "f16 (3.0e-09)", "bf16 (3.0e-09)", "q8 (2.0e-04)",
		"svd r0.5 (5.0e-02)", "svd r0.8 (1.0e-02)", "lorc r16 (1.0e-04)"}
	var names []string
	for _, p := range s.Points {
		names = append(names, p.Name+" ("+strconv.FormatFloat(p.PPLRatio, 'f', 4, 64)+")")
	}
	for _, tc := range []struct {
		base   string
		labels []string
	}{
		{"bpw_vs_kld", append([]string{"mean KLD from the f32 reference (nats/token, log scale)", "0",
			"Pareto front (bits vs KLD)", "svd: truncated SVD", "lorc: quantized + low-rank error correction"}, kldLabels...)},
		{"bpw_vs_ppl_ratio", append([]string{"PPL(compressed) / PPL(f32 reference), ± 1 s.e.", "no change (ratio 1)"}, names...)},
	} {
		t.Run(tc.base, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tc.base+".png"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("decoding PNG: %v", err)
			}
			wantW, wantH := int(math.Round(float64(plotWidth/vg.Inch*plotDPI))), int(math.Round(float64(plotHeight/vg.Inch*plotDPI)))
			if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
				t.Errorf("PNG is %dx%d, want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
			}

			raw, err := os.ReadFile(filepath.Join(dir, tc.base+".svg"))
			if err != nil {
				t.Fatal(err)
			}
			texts := svgTexts(t, raw)
			want := append([]string{"bits per weight (all tensors; q8 includes its scales and 16-bit embeddings)",
				"toy: " + map[string]string{"bpw_vs_kld": "size vs divergence from the original", "bpw_vs_ppl_ratio": "size vs perplexity"}[tc.base],
				"valid.txt, 3 chunks × 64 tokens, 189 scored predictions",
				"dense: one encoding for all projections"}, tc.labels...)
			for _, w := range want {
				if !slices.Contains(texts, w) {
					t.Errorf("SVG has no text %q; texts: %q", w, texts)
				}
			}
			if strings.Contains(string(raw), "NaN") || strings.Contains(string(raw), "Inf") {
				t.Error("SVG holds a NaN or Inf coordinate")
			}
		})
	}
}

// svgTexts parses an SVG document and returns the content of its text
// elements.
func svgTexts(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(raw)))
	var texts []string
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			inText = tok.Name.Local == "text"
			if inText {
				texts = append(texts, "")
			}
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				texts[len(texts)-1] += string(tok)
			}
		}
	}
	if len(texts) == 0 {
		t.Fatal("SVG has no text")
	}
	return texts
}

func TestChartDataZeroSitsOnFloor(t *testing.T) {
	s := plotTestSweep()
	d := s.chartData(chart{logY: true, front: true, y: func(p Point) float64 { return p.KLD }})
	if len(d.points) != len(s.Points) {
		t.Fatalf("%d of %d points kept", len(d.points), len(s.Points))
	}
	// The smallest positive KLD is 3e-9: the floor is a decade below 1e-9.
	if d.floor != -10 {
		t.Fatalf("floor %v, want -10", d.floor)
	}
	zero := d.points[0]
	if zero.label != "f32 (KLD 0, exact)" || zero.y != d.floor {
		t.Errorf("zero KLD drawn as %+v, want at y = %v", zero, d.floor)
	}
	_, y := d.axes()
	if !(y.lo < d.floor && y.hi > math.Log10(0.05)) {
		t.Errorf("y axis [%v, %v] does not hold the floor and the largest KLD", y.lo, y.hi)
	}
	var floorLabel string
	for _, tk := range y.ticks {
		if tk.Value == d.floor {
			floorLabel = tk.Label
		}
		if tk.Value > d.floor && tk.Value < d.floor+1 {
			t.Errorf("tick %v between the floor and the first decade", tk.Value)
		}
	}
	if floorLabel != "0" {
		t.Errorf("floor tick reads %q, want 0", floorLabel)
	}
	// Only on a chart that asks for it is the front drawn.
	if len(d.front) < 2 || !slices.IsSortedFunc(d.front, func(a, b plotPoint) int { return cmpFloat(a.x, b.x) }) {
		t.Errorf("front %+v: want the Pareto points sorted by x", d.front)
	}
	if d2 := s.chartData(chart{y: func(p Point) float64 { return p.PPLRatio }}); len(d2.front) != 0 || !math.IsNaN(d2.floor) {
		t.Errorf("linear chart: front %v, floor %v", d2.front, d2.floor)
	}
}

func TestLinearTicks(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{
		{0.9985, 1.0021}, {8.1, 33.9}, {-3, 7}, {0, 1e-6}, {123456, 123789}, {-0.37, -0.02}, {0.99966, 1.00003},
	} {
		ticks := linearTicks(tc.lo, tc.hi, 6)
		var major []float64
		var labels []string
		for _, tk := range ticks {
			if tk.Value < tc.lo-1e-12*math.Abs(tc.lo) || tk.Value > tc.hi+1e-12*math.Abs(tc.hi) {
				t.Errorf("[%v, %v]: tick %v outside", tc.lo, tc.hi, tk.Value)
			}
			if tk.Label != "" {
				major = append(major, tk.Value)
				labels = append(labels, tk.Label)
			}
		}
		if len(major) < 3 || len(major) > 13 {
			t.Errorf("[%v, %v]: %d labelled ticks %v", tc.lo, tc.hi, len(major), labels)
			continue
		}
		step := major[1] - major[0]
		mant := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
		if !slices.ContainsFunc([]float64{1, 2, 5}, func(m float64) bool { return math.Abs(mant-m) < 1e-6 }) {
			t.Errorf("[%v, %v]: step %v is not 1, 2 or 5 times a power of ten", tc.lo, tc.hi, step)
		}
		for i := 1; i < len(major); i++ {
			if d := major[i] - major[i-1]; math.Abs(d-step) > 1e-9*step {
				t.Errorf("[%v, %v]: uneven steps %v", tc.lo, tc.hi, major)
			}
		}
		// Covering the range: no gap of a whole step at either end.
		if major[0]-tc.lo >= step || tc.hi-major[len(major)-1] >= step {
			t.Errorf("[%v, %v]: ticks %v leave an end uncovered", tc.lo, tc.hi, major)
		}
		for i, l := range labels {
			v, err := strconv.ParseFloat(l, 64)
			if err != nil || math.Abs(v-major[i]) > step/2 {
				t.Errorf("[%v, %v]: label %q for %v", tc.lo, tc.hi, l, major[i])
			}
			if i > 0 && l == labels[i-1] {
				t.Errorf("[%v, %v]: labels %v repeat", tc.lo, tc.hi, labels)
			}
			if l == "-0" || strings.HasPrefix(l, "-0.") && v == 0 {
				t.Errorf("[%v, %v]: label %q", tc.lo, tc.hi, l)
			}
		}
	}
}

func TestLogTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi     float64
		minorTicks bool
	}{
		{-4.3, -2.9, true}, {-14.2, -2.5, false}, {-1.5, 2.2, true}, {-30, 5, false},
	} {
		ticks := logTicks(tc.lo, tc.hi, 8)
		var labels, minors int
		for _, tk := range ticks {
			if tk.Value < tc.lo-1e-9 || tk.Value > tc.hi+1e-9 {
				t.Errorf("[%v, %v]: tick %v outside", tc.lo, tc.hi, tk.Value)
			}
			whole := tk.Value == math.Round(tk.Value)
			if tk.Label != "" {
				labels++
				if !whole {
					t.Errorf("[%v, %v]: labelled tick %v is not a power of ten", tc.lo, tc.hi, tk.Value)
				}
				v, err := strconv.ParseFloat(tk.Label, 64)
				if err != nil || math.Abs(v/math.Pow(10, tk.Value)-1) > 1e-12 {
					t.Errorf("[%v, %v]: label %q for 10^%v", tc.lo, tc.hi, tk.Label, tk.Value)
				}
			}
			if !whole {
				minors++
				k := math.Pow(10, tk.Value-math.Floor(tk.Value))
				if math.Abs(k-math.Round(k)) > 1e-9 {
					t.Errorf("[%v, %v]: minor tick at %v × a power of ten", tc.lo, tc.hi, k)
				}
			}
		}
		if labels < 2 || labels > 9 {
			t.Errorf("[%v, %v]: %d labels", tc.lo, tc.hi, labels)
		}
		if (minors > 0) != tc.minorTicks {
			t.Errorf("[%v, %v]: %d minor ticks", tc.lo, tc.hi, minors)
		}
	}
}

func TestPlaceLabels(t *testing.T) {
	area := vg.Rectangle{Max: vg.Point{X: 600, Y: 400}}
	at := vg.Point{X: 300, Y: 200}
	spec := labelSpec{at: at, radius: 4.5, w: 40, h: 10}

	// A lone label sits right of its marker, or left of it at the right
	// edge, close enough to need no leader.
	pl := placeLabels([]labelSpec{spec}, area, nil)[0]
	if pl.rect.Min.X <= at.X || pl.leader {
		t.Errorf("lone label at %+v", pl)
	}
	edge := spec
	edge.at.X = 590
	if pl := placeLabels([]labelSpec{edge}, area, nil)[0]; pl.rect.Max.X >= edge.at.X || pl.rect.Max.X > area.Max.X {
		t.Errorf("label at the right edge at %+v", pl)
	}

	// Coincident markers never share a spot; with room around them the
	// first four do not even touch.
	for _, n := range []int{2, 4, 9, 50} {
		specs := make([]labelSpec, n)
		for i := range specs {
			specs[i] = spec
		}
		got := placeLabels(specs, area, nil)
		for i := range got {
			for j := range i {
				if sameRect(got[i].rect, got[j].rect) {
					t.Errorf("%d coincident: labels %d and %d both at %v", n, i, j, got[i].rect)
				}
				if n <= 4 && overlapArea(got[i].rect, []vg.Rectangle{got[j].rect}) > 0 {
					t.Errorf("%d coincident: labels %d and %d overlap: %v, %v", n, i, j, got[i].rect, got[j].rect)
				}
			}
		}
	}

	// An obstacle on the right sends the label elsewhere.
	block := vg.Rectangle{Min: vg.Point{X: 305, Y: 180}, Max: vg.Point{X: 400, Y: 220}}
	if pl := placeLabels([]labelSpec{spec}, area, []vg.Rectangle{block})[0]; overlapArea(pl.rect, []vg.Rectangle{block}) > 0 {
		t.Errorf("label %v overlaps the obstacle %v", pl.rect, block)
	}
}

// TestSeriesStyles: the series a sweep makes never share a colour, the
// first five never share a glyph, and the legend is a strip above the plot
// area however many series there are.
func TestSeriesStyles(t *testing.T) {
	names := []string{"dense", "svd", "whiten", "asvd", "lorc", "lorc-whiten", "other"}
	colors := map[[4]uint8]string{}
	shapes := map[markerShape]string{}
	for i, n := range names {
		c, sh := seriesStyle(n, max(0, i-6))
		if o, ok := colors[[4]uint8{c.R, c.G, c.B, c.A}]; ok {
			t.Errorf("%s and %s share colour %v", n, o, c)
		}
		colors[[4]uint8{c.R, c.G, c.B, c.A}] = n
		if i < int(numMarkerShapes) {
			if o, ok := shapes[sh]; ok {
				t.Errorf("%s and %s share glyph %d", n, o, sh)
			}
			shapes[sh] = n
		}
	}
	// The same series looks the same whatever its place in the chart.
	if c1, s1 := seriesStyle("whiten", 0); true {
		if c2, s2 := seriesStyle("whiten", 5); c1 != c2 || s1 != s2 {
			t.Errorf("whiten drawn differently by position")
		}
	}

	s := plotTestSweep()
	for i, n := range names {
		s.Points = append(s.Points, Point{Name: n + " x", Series: n, BitsPerWeight: 10 + float64(i),
			KLD: 0.01 * float64(i+1), PPLRatio: 1 + 0.05*float64(i)}) // dominated by q8
	}
	fonts, err := plotFonts()
	if err != nil {
		t.Fatal(err)
	}
	st := newPlotStyles(text.Plain{Fonts: fonts})
	bounds := vg.Rectangle{Max: vg.Point{X: plotWidth, Y: plotHeight}}
	d := s.chartData(chart{y: func(p Point) float64 { return p.PPLRatio }, unity: true})
	l := d.plan(bounds, st)
	if len(d.series) != len(names) || len(l.legendX) != len(d.legendEntries()) {
		t.Fatalf("%d series, %d legend entries placed", len(d.series), len(l.legendX))
	}
	if !(l.legend.Min.Y > l.area.Max.Y && l.legend.Max.Y < bounds.Max.Y && l.legend.Min.X >= l.area.Min.X && l.legend.Max.X <= l.area.Max.X) {
		t.Errorf("legend %v not a strip above the plot area %v", l.legend, l.area)
	}
	if l.legendRow[len(l.legendRow)-1] == 0 {
		t.Errorf("%d legend entries fit one row of %v points", len(l.legendX), l.area.Max.X-l.area.Min.X)
	}
}

func TestNiceAndDecadeTicks(t *testing.T) {
	var labels []string
	for _, tk := range (niceTicks{}).Ticks(0.9985, 1.0021) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if want := []string{"0.999", "1.000", "1.001", "1.002"}; !slices.Equal(labels, want) {
		t.Errorf("nice ticks %v, want %v", labels, want)
	}
	labels = labels[:0]
	for _, tk := range (decadeTicks{floor: -8, hasFloor: true}).Ticks(-8.2, -2.5) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
		if math.IsNaN(tk.Value) {
			t.Fatal("NaN tick")
		}
	}
	if want := []string{"0", "1e-7", "1e-6", "1e-5", "1e-4", "1e-3"}; !slices.Equal(labels, want) {
		t.Errorf("decade ticks %v, want %v", labels, want)
	}
}
