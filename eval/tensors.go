package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// Float is a float64 that survives JSON when it is not finite (a perfect
// encoding has SNR +Inf): non-finite values are written as the strings
// "+Inf", "-Inf" and "NaN".
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		*f = Float(v)
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// TensorError is how far one stored tensor is from its original.
type TensorError struct {
	Name          string  `json:"name"`
	Kind          string  `json:"kind"`  // e.g. "attn_q", "ffn_down", "attn_q.bias", "token_embd"
	Layer         int     `json:"layer"` // −1 outside the blocks
	Shape         []int64 `json:"shape"`
	Encoding      string  `json:"encoding"` // "q8", or "lowrank r=96 (a q8, b q8)", "lorc q8 + r=32 (…)"
	Bytes         int64   `json:"bytes"`
	BitsPerWeight float64 `json:"bits_per_weight"`
	RelFrobenius  Float   `json:"rel_frobenius"` // ‖W−Ŵ‖_F / ‖W‖_F
	SNRdB         Float   `json:"snr_db"`
	Cosine        Float   `json:"cosine"`
	MaxAbs        Float   `json:"max_abs"`
	// ActRelErr is ‖(W−Ŵ)X‖_F / ‖WX‖_F on the calibration activations X,
	// set only for projections when a calibration was given.
	ActRelErr *Float `json:"act_rel_err,omitempty"`
	ActPoint  string `json:"act_point,omitempty"` // the hook point X came from

	acc            quant.ErrorAccumulator
	actNum, actDen float64
	params         int64
}

// GroupError totals the tensors of one kind or one layer. The relative
// error is weighted by the tensors' energy: sqrt(Σ‖W−Ŵ‖² / Σ‖W‖²), and the
// activation error likewise by ‖WX‖².
type GroupError struct {
	Name          string  `json:"name"`
	Tensors       int     `json:"tensors"`
	Params        int64   `json:"params"`
	Bytes         int64   `json:"bytes"`
	BitsPerWeight float64 `json:"bits_per_weight"`
	RelFrobenius  Float   `json:"rel_frobenius"`
	SNRdB         Float   `json:"snr_db"`
	Cosine        Float   `json:"cosine"`
	ActRelErr     *Float  `json:"act_rel_err,omitempty"`

	acc            quant.ErrorAccumulator
	actNum, actDen float64
	actTensors     int
}

// TensorReport is the weight-level error of a .shrink file against the
// checkpoint (or float32 .shrink) it was made from.
type TensorReport struct {
	Ref    string        `json:"reference"`
	Model  ModelInfo     `json:"model"`
	Calib  *Calibration  `json:"calibration,omitempty"`
	Total  GroupError    `json:"total"`
	Kinds  []GroupError  `json:"kinds"`
	Layers []GroupError  `json:"layers"`
	Worst  []TensorError `json:"tensors"` // worst relative error first
	Notes  []string      `json:"notes,omitempty"`
}

// TensorSource gives the original tensors in canonical float32 layout.
type TensorSource interface {
	Config() format.ModelConfig
	// Load returns the tensor's values and canonical shape.
	Load(ctx context.Context, name string) ([]float32, []int64, error)
	Close() error
}

// OpenTensorSource opens a checkpoint (Hugging Face folder or llama2.c .bin)
// or a .shrink file as the source of original tensors.
func OpenTensorSource(path string) (TensorSource, error) {
	if IsShrinkFile(path) {
		f, err := format.Open(path)
		if err != nil {
			return nil, err
		}
		return shrinkSource{f}, nil
	}
	m, err := convert.Open(path, convert.OpenOptions{})
	if err != nil {
		return nil, err
	}
	return checkpointSource{m}, nil
}

type checkpointSource struct{ m *convert.Model }

func (s checkpointSource) Config() format.ModelConfig { return s.m.Config }
func (s checkpointSource) Close() error               { return s.m.Close() }
func (s checkpointSource) Load(ctx context.Context, name string) ([]float32, []int64, error) {
	d, ok := s.m.Tensor(name)
	if !ok {
		return nil, nil, fmt.Errorf("%s: no tensor %s in the reference checkpoint", s.m.Path, name)
	}
	out := make([]float32, d.NumElements())
	if err := d.Load(ctx, out); err != nil {
		return nil, nil, err
	}
	return out, d.Shape, nil
}

type shrinkSource struct{ f *format.File }

func (s shrinkSource) Config() format.ModelConfig { return s.f.Config() }
func (s shrinkSource) Close() error               { return s.f.Close() }
func (s shrinkSource) Load(_ context.Context, name string) ([]float32, []int64, error) {
	t, ok := s.f.Tensor(name)
	if !ok {
		return nil, nil, fmt.Errorf("%s: no tensor %s in the reference", s.f.Path(), name)
	}
	w, err := Reconstruct(s.f, t)
	if err != nil {
		return nil, nil, err
	}
	return w, t.Shape, nil
}

// Reconstruct decodes a stored tensor to float32 in its logical shape: the
// dense part w, or A·B for a low-rank tensor, or Q + A·B for LoRC
// (convert.DecodeTensor, what the GGUF export writes too).
func Reconstruct(f *format.File, t *format.Tensor) ([]float32, error) {
	w, err := convert.DecodeTensor(f, t)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %s: %w", f.Path(), t.Name, err)
	}
	return w, nil
}

func describeEncoding(t *format.Tensor) string {
	enc := func(role format.Role) string {
		for _, p := range t.Parts {
			if p.Role == role {
				return p.Encoding.String()
			}
		}
		return "?"
	}
	rank := func() int64 {
		for _, p := range t.Parts {
			if p.Role == format.RoleA && len(p.Shape) == 2 {
				return p.Shape[1]
			}
		}
		return 0
	}
	switch t.Kind {
	case format.KindLowRank:
		return fmt.Sprintf("lowrank r=%d (a %s, b %s)", rank(), enc(format.RoleA), enc(format.RoleB))
	case format.KindLoRC:
		return fmt.Sprintf("lorc %s + r=%d (a %s, b %s)", enc(format.RoleW), rank(), enc(format.RoleA), enc(format.RoleB))
	}
	return enc(format.RoleW)
}

// tensorKind splits a canonical name into its layer (−1 outside the blocks)
// and kind: ".weight" is dropped, ".bias" kept (a bias is a different kind
// of tensor than its matrix).
func tensorKind(name string) (layer int, kind string) {
	layer, stem, suffix, ok := format.ParseName(name)
	switch {
	case !ok:
		return -1, name
	case suffix == format.Weight:
		return layer, string(stem)
	}
	return layer, string(stem) + "." + string(suffix)
}

// hookPoint is the runtime activation that multiplies a projection.
func hookPoint(kind string) string { return runtime.ProjectionInput(format.Stem(kind)) }

// CompareTensors measures every tensor of the .shrink file f against the
// original in src, and, when cal is given, the activation-weighted error of
// every projection.
func CompareTensors(ctx context.Context, src TensorSource, refPath string, f *format.File, cal *Calibration) (*TensorReport, error) {
	rc, fc := src.Config(), f.Config()
	if rc.Arch != fc.Arch || rc.VocabSize != fc.VocabSize || shape(rc) != shape(fc) {
		return nil, fmt.Errorf("architectures differ: reference %s %s vocab %d, %s is %s %s vocab %d",
			rc.Arch, shape(rc), rc.VocabSize, f.Path(), fc.Arch, shape(fc), fc.VocabSize)
	}
	info := ModelInfo{Path: f.Path(), Arch: fc.Arch, FileBytes: f.Size()}
	rep := &TensorReport{Ref: refPath, Calib: cal}
	kinds := map[string]*GroupError{}
	layers := map[int]*GroupError{}
	var kindOrder []string
	var layerOrder []int
	skippedAct := map[string]bool{}
	for i := range f.Tensors() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := &f.Tensors()[i]
		want, wshape, err := src.Load(ctx, t.Name)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(wshape, t.Shape) {
			return nil, fmt.Errorf("tensor %s: shape %v in %s, %v in the reference %s", t.Name, t.Shape, f.Path(), wshape, refPath)
		}
		got, err := Reconstruct(f, t)
		if err != nil {
			return nil, err
		}
		layer, kind := tensorKind(t.Name)
		te := TensorError{Name: t.Name, Kind: kind, Layer: layer, Shape: t.Shape, Encoding: describeEncoding(t), params: convert.Numel(t.Shape)}
		for _, p := range t.Parts {
			te.Bytes += int64(p.Length)
		}
		te.BitsPerWeight = float64(te.Bytes) * 8 / float64(max(te.params, 1))
		te.acc.Add(want, got)
		m := te.acc.Metrics()
		te.RelFrobenius, te.SNRdB, te.Cosine, te.MaxAbs = Float(m.RelFrobenius), Float(m.SNRdB), Float(m.Cosine), Float(m.MaxAbs)
		if cal != nil && len(t.Shape) == 2 {
			if pt := hookPoint(kind); pt == "" {
				skippedAct[kind] = true
			} else if g := cal.Gram(layer, pt); g != nil && int64(g.N) == t.Shape[1] {
				rows, cols := int(t.Shape[0]), int(t.Shape[1])
				w := make([]float64, rows*cols)
				e := make([]float64, rows*cols)
				for j, v := range want {
					w[j] = float64(v)
					e[j] = float64(got[j]) - float64(v)
				}
				te.actNum, te.actDen = g.QuadForm(e, rows), g.QuadForm(w, rows)
				a := Float(actRatio(te.actNum, te.actDen))
				te.ActRelErr, te.ActPoint = &a, pt
			}
		}
		info.Params += te.params
		info.TensorBytes += te.Bytes
		gk := kinds[kind]
		if gk == nil {
			gk = &GroupError{Name: kind}
			kinds[kind] = gk
			kindOrder = append(kindOrder, kind)
		}
		gl := layers[layer]
		if gl == nil {
			name := "outside blocks"
			if layer >= 0 {
				name = fmt.Sprintf("blk.%d", layer)
			}
			gl = &GroupError{Name: name}
			layers[layer] = gl
			layerOrder = append(layerOrder, layer)
		}
		for _, g := range []*GroupError{gk, gl, &rep.Total} {
			g.add(&te)
		}
		rep.Worst = append(rep.Worst, te)
	}
	rep.Total.Name = "total"
	info.BitsPerWeight = float64(info.TensorBytes) * 8 / float64(max(info.Params, 1))
	rep.Model = info
	rep.Total.finish()
	for _, k := range kindOrder {
		kinds[k].finish()
		rep.Kinds = append(rep.Kinds, *kinds[k])
	}
	sort.Ints(layerOrder)
	if len(layerOrder) > 0 && layerOrder[0] == -1 {
		layerOrder = append(layerOrder[1:], -1) // globals last
	}
	for _, l := range layerOrder {
		layers[l].finish()
		rep.Layers = append(rep.Layers, *layers[l])
	}
	sort.SliceStable(rep.Worst, func(i, j int) bool {
		return worse(float64(rep.Worst[i].RelFrobenius), float64(rep.Worst[j].RelFrobenius))
	})
	if cal != nil {
		var skipped []string
		for k := range skippedAct {
			skipped = append(skipped, k)
		}
		sort.Strings(skipped)
		if len(skipped) > 0 {
			tied := ""
			if fc.TiedEmbeddings {
				tied = " (here token_embd is also the tied output head)"
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("no activation-weighted error for %s: embeddings are looked up rather than multiplied, "+
				"and the output head's damage is what the model-level KLD of shrink eval measures%s", strings.Join(skipped, ", "), tied))
		}
	}
	return rep, nil
}

// worse orders relative errors worst first, NaN (broken) before everything.
func worse(a, b float64) bool {
	if math.IsNaN(a) != math.IsNaN(b) {
		return math.IsNaN(a)
	}
	return a > b
}

func actRatio(num, den float64) float64 {
	switch {
	case num == 0:
		return 0
	case den == 0:
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}

func (g *GroupError) add(t *TensorError) {
	g.Tensors++
	g.Params += t.params
	g.Bytes += t.Bytes
	g.acc.Merge(&t.acc)
	if t.ActRelErr != nil {
		g.actNum += t.actNum
		g.actDen += t.actDen
		g.actTensors++
	}
}

func (g *GroupError) finish() {
	m := g.acc.Metrics()
	g.RelFrobenius, g.SNRdB, g.Cosine = Float(m.RelFrobenius), Float(m.SNRdB), Float(m.Cosine)
	g.BitsPerWeight = float64(g.Bytes) * 8 / float64(max(g.Params, 1))
	if g.actTensors > 0 {
		a := Float(actRatio(g.actNum, g.actDen))
		g.ActRelErr = &a
	}
}
