package convert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
)

// Override forces an encoding on every tensor whose canonical name matches
// Pattern (an RE2 regular expression, unanchored like llama.cpp's
// --tensor-type). Overrides are tried in order and the first match wins.
type Override struct {
	Pattern  *regexp.Regexp
	Encoding quant.Encoding
}

// ParseOverride reads one "REGEX=ENC" flag value.
func ParseOverride(s string) (Override, error) {
	i := strings.LastIndex(s, "=")
	if i <= 0 || i == len(s)-1 {
		return Override{}, fmt.Errorf("tensor type %q: want REGEX=ENCODING, e.g. 'ffn_down=f16'", s)
	}
	re, err := regexp.Compile(s[:i])
	if err != nil {
		return Override{}, fmt.Errorf("tensor type %q: %w", s, err)
	}
	enc, err := quant.Parse(s[i+1:])
	if err != nil {
		return Override{}, fmt.Errorf("tensor type %q: %w", s, err)
	}
	return Override{Pattern: re, Encoding: enc}, nil
}

// Policy says how each kind of tensor is encoded. It mirrors llama.cpp's
// defaults: vectors (norms, biases) stay f32 because they are tiny and
// precision-sensitive; Quant applies to the 2-D projections; embeddings and
// the output head default to f16 when Quant is an integer encoding, since
// they are the most damaging place to lose precision and a lookup table does
// not benefit from integer kernels.
type Policy struct {
	Quant     quant.Encoding  // 2-D projection matrices (attn_*, ffn_*)
	Embed     *quant.Encoding // token_embd and position_embd; nil = default
	Output    *quant.Encoding // output (untied lm_head); nil = default
	Overrides []Override
	// Preset, when set, chooses per tensor as llama.cpp's mixes do (see
	// Preset); Quant should then be its Base. Explicit Embed and Output
	// still win over the preset, and Overrides over both.
	Preset *Preset
	// LowRank, when its Method is set, factors the 2-D projections (see
	// LowRank and lowrank.go).
	LowRank LowRank
}

// EmbedEncoding is the encoding used for embeddings (and a tied output head).
func (p Policy) EmbedEncoding() quant.Encoding {
	if p.Embed != nil {
		return *p.Embed
	}
	return p.defaultHead()
}

// OutputEncoding is the encoding used for an untied output head.
func (p Policy) OutputEncoding() quant.Encoding {
	if p.Output != nil {
		return *p.Output
	}
	return p.defaultHead()
}

func (p Policy) defaultHead() quant.Encoding {
	if p.Quant.IsFloat() {
		return p.Quant
	}
	return quant.F16
}

// PlanEntry is the decision for one tensor.
type PlanEntry struct {
	Name        string  `json:"name"`
	Shape       []int64 `json:"shape"`
	SourceDType DType   `json:"source_dtype"`
	// Kind is format.KindDense, KindLowRank or KindLoRC.
	Kind format.Kind `json:"kind"`
	// Encoding is the encoding of the dense matrix (dense), of the factors
	// (lowrank) or of the quantized base w (lorc); Parts has every part's.
	Encoding    quant.Encoding `json:"encoding"`
	Bytes       int64          `json:"bytes"`        // encoded size, all parts
	SourceBytes int64          `json:"source_bytes"` // size in the checkpoint
	Rule        string         `json:"rule"`         // why this encoding was chosen
	// ShortGroup is set when a q8 row does not divide into whole groups; the
	// last group of each row is then shorter (handled, stated for the user).
	ShortGroup bool       `json:"short_group,omitempty"`
	Parts      []PlanPart `json:"parts"`
	// Low-rank tensors: the method, the rank k, whether a LoRC residual is
	// whitened, and the calibration statistics (StatsKey) the method reads.
	Method   lowrank.Method `json:"method,omitempty"`
	Rank     int            `json:"rank,omitempty"`
	Whiten   bool           `json:"whiten,omitempty"`
	StatsKey string         `json:"stats,omitempty"`
	// Cost is the damage the planner predicted for the chosen encoding
	// (--target-bpw, --target-size); nil when no planner chose.
	Cost *float64 `json:"predicted_cost,omitempty"`
}

// PlanPart is one stored matrix of a tensor, in the order format fixes for
// its kind (dense: w; lowrank: a, b; lorc: w, a, b).
type PlanPart struct {
	Role     format.Role    `json:"role"`
	Shape    []int64        `json:"shape"`
	Encoding quant.Encoding `json:"encoding"`
	Bytes    int64          `json:"bytes"`
}

// Plan is every decision of a conversion, made from descriptors alone: it
// reads no weights, so it can be printed (--dry-run) and tested as data.
type Plan struct {
	Config      format.ModelConfig `json:"config"`
	Policy      string             `json:"policy"`
	Entries     []PlanEntry        `json:"tensors"`
	TotalBytes  int64              `json:"total_bytes"`
	SourceBytes int64              `json:"source_bytes"`
	Params      int64              `json:"params"`
	// LowRank summarizes the factorisation; nil without one.
	LowRank *LowRankSummary `json:"lowrank,omitempty"`
	// Budget summarizes the planner's choice under a byte budget; nil
	// without --target-bpw or --target-size (see ApplyBudget).
	Budget *BudgetSummary `json:"budget,omitempty"`
}

// String summarizes the policy the way a user typed it.
func (p Policy) String() string {
	var b strings.Builder
	if p.Preset != nil {
		fmt.Fprintf(&b, "preset=%s ", p.Preset.Name)
	}
	fmt.Fprintf(&b, "quant=%v embed=%v output=%v", p.Quant, p.EmbedEncoding(), p.OutputEncoding())
	for _, o := range p.Overrides {
		fmt.Fprintf(&b, " %s=%v", o.Pattern, o.Encoding)
	}
	if p.LowRank.Method != "" {
		fmt.Fprintf(&b, " %s", p.LowRank)
	}
	return b.String()
}

// MakePlan decides the encoding of every tensor of a model. It fails at
// planning time, before anything is written, on anything the encoder would
// reject later.
func MakePlan(cfg format.ModelConfig, tensors []*TensorDesc, pol Policy) (*Plan, error) {
	if err := pol.Quant.Validate(); err != nil {
		return nil, fmt.Errorf("--quant: %w", err)
	}
	if err := pol.EmbedEncoding().Validate(); err != nil {
		return nil, fmt.Errorf("--embed: %w", err)
	}
	if err := pol.OutputEncoding().Validate(); err != nil {
		return nil, fmt.Errorf("--output: %w", err)
	}
	if err := pol.LowRank.Validate(); err != nil {
		return nil, err
	}
	plan := &Plan{Config: cfg, Policy: pol.String()}
	used := make([]bool, len(pol.Overrides))
	lr := newLowRankPlanner(pol.LowRank)
	for _, t := range tensors {
		e, err := planOne(t, pol, used, cfg.NumLayers)
		if err != nil {
			return nil, err
		}
		if err := lr.plan(&e, t); err != nil {
			return nil, err
		}
		plan.Entries = append(plan.Entries, e)
		plan.TotalBytes += e.Bytes
		plan.SourceBytes += e.SourceBytes
		plan.Params += t.NumElements()
	}
	for i, u := range used {
		if !u {
			return nil, fmt.Errorf("--tensor-type %s=%v matches no tensor", pol.Overrides[i].Pattern, pol.Overrides[i].Encoding)
		}
	}
	sum, err := lr.summary()
	if err != nil {
		return nil, err
	}
	plan.LowRank = sum
	return plan, nil
}

func planOne(t *TensorDesc, pol Policy, used []bool, layers int) (PlanEntry, error) {
	rows, cols, err := matrixShape(t.Shape)
	if err != nil {
		return PlanEntry{}, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	e := PlanEntry{
		Name:        t.Name,
		Shape:       append([]int64(nil), t.Shape...),
		SourceDType: t.DType,
		Kind:        format.KindDense,
		SourceBytes: t.sourceBytes(),
	}
	is1D := len(t.Shape) == 1
	layer, stem, _, _ := format.ParseName(t.Name)
	global := layer < 0
	switch {
	case is1D:
		e.Encoding, e.Rule = quant.F32, "vector (norm/bias) stays f32"
	case global && (stem == format.TokenEmbd || stem == format.PositionEmbd):
		e.Encoding, e.Rule = pol.EmbedEncoding(), "embedding (--embed)"
		if pol.Preset != nil && pol.Embed == nil {
			e.Encoding, e.Rule = pol.Preset.encodingFor(t.Name, "embedding", layers)
		}
	case global && stem == format.Output:
		e.Encoding, e.Rule = pol.OutputEncoding(), "output head (--output)"
		if pol.Preset != nil && pol.Output == nil {
			e.Encoding, e.Rule = pol.Preset.encodingFor(t.Name, "output", layers)
		}
	default:
		e.Encoding, e.Rule = pol.Quant, "projection (--quant)"
		if pol.Preset != nil {
			e.Encoding, e.Rule = pol.Preset.encodingFor(t.Name, "projection", layers)
		}
	}
	for i, o := range pol.Overrides {
		if o.Pattern.MatchString(t.Name) {
			used[i] = true
			if is1D && !o.Encoding.IsFloat() {
				// Vectors are scaled elementwise at run time; a grouped
				// integer encoding buys nothing and costs accuracy.
				e.Rule += fmt.Sprintf("; override %s=%v ignored for a vector", o.Pattern, o.Encoding)
				break
			}
			e.Encoding, e.Rule = o.Encoding, fmt.Sprintf("override %s=%v", o.Pattern, o.Encoding)
			break
		}
	}
	if (e.Encoding.Kind == quant.KindQ8 || e.Encoding.IsPacked()) && cols%e.Encoding.Group != 0 {
		e.ShortGroup = true
	}
	e.Bytes, err = e.Encoding.Size(rows, cols)
	if err != nil {
		return PlanEntry{}, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	e.Parts = []PlanPart{{Role: format.RoleW, Shape: append([]int64(nil), t.Shape...), Encoding: e.Encoding, Bytes: e.Bytes}}
	return e, nil
}

// matrixShape maps a canonical 1-D or 2-D shape to the [rows, cols] view the
// encodings work on.
func matrixShape(shape []int64) (rows, cols int, err error) {
	for _, d := range shape {
		if d <= 0 || d > 1<<40 {
			return 0, 0, fmt.Errorf("bad dimension %d in shape %v", d, shape)
		}
	}
	switch len(shape) {
	case 1:
		return 1, int(shape[0]), nil
	case 2:
		return int(shape[0]), int(shape[1]), nil
	}
	return 0, 0, fmt.Errorf("rank-%d shape %v not supported (want 1-D or 2-D)", len(shape), shape)
}

// JSON renders the plan for --dry-run --json.
func (p *Plan) JSON() ([]byte, error) { return json.MarshalIndent(p, "", "  ") }

// ProjectionBits is the storage cost per weight of the 2-D projections
// (attn_*, ffn_* of every layer) alone, all parts included.
func (p *Plan) ProjectionBits() float64 {
	var bytes, params int64
	for _, e := range p.Entries {
		if _, _, ok := projection(e.Name); !ok {
			continue
		}
		n := int64(1)
		for _, d := range e.Shape {
			n *= d
		}
		bytes += e.Bytes
		params += n
	}
	if params == 0 {
		return 0
	}
	return float64(bytes) * 8 / float64(params)
}
