package convert

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/shrink-llm/shrink/quant"
)

// A Preset is a named mix of encodings in the manner of llama.cpp's
// quantization types (Q4_K_M and friends): one encoding for most
// projections, more bits where the error costs most — attn_v and ffn_down
// in the layers llama.cpp singles out (the first and last eighth of the
// stack and every third layer between), attn_output in some mixes, and the
// output head. Embeddings take the base encoding, as llama.cpp's do.
type Preset struct {
	Name string
	// Base is the projections' and embeddings' encoding.
	Base quant.Encoding
	// Output is the untied output head's encoding.
	Output quant.Encoding
	// AttnV and FFNDown apply in the "more bits" layers (MoreBitsLayer)
	// when not zero; AttnVAll and FFNDownAll in every other layer.
	AttnV, FFNDown       quant.Encoding
	AttnVAll, FFNDownAll quant.Encoding
	// AttnOutput applies to attn_output in every layer when not zero.
	AttnOutput quant.Encoding
	Doc        string
}

// Presets lists the mixes --preset accepts, smallest first.
var Presets = []Preset{
	{Name: "q3_k_s", Base: quant.QK(3, 32), Output: quant.QK(6, 32),
		Doc: "q3 everywhere, q6 output head (about llama.cpp Q3_K_S)"},
	{Name: "q3_k_m", Base: quant.QK(3, 32), Output: quant.QK(6, 32),
		AttnV: quant.QK(5, 32), AttnVAll: quant.Q4, FFNDown: quant.QK(5, 32), FFNDownAll: quant.Q4, AttnOutput: quant.Q4,
		Doc: "q3; attn_v and ffn_down q5 in the more-bits layers, q4 elsewhere; attn_output q4; q6 output head (about Q3_K_M)"},
	{Name: "q4_k_s", Base: quant.Q4, Output: quant.QK(6, 32), AttnV: quant.QK(5, 32), FFNDown: quant.QK(5, 32),
		Doc: "q4; attn_v and ffn_down q5 in the more-bits layers; q6 output head (about Q4_K_S)"},
	{Name: "q4_k_m", Base: quant.Q4, Output: quant.QK(6, 32), AttnV: quant.QK(6, 32), FFNDown: quant.QK(6, 32),
		Doc: "q4; attn_v and ffn_down q6 in the more-bits layers; q6 output head (about Q4_K_M)"},
	{Name: "q5_k_m", Base: quant.QK(5, 32), Output: quant.QK(6, 32), AttnV: quant.QK(6, 32), FFNDown: quant.QK(6, 32),
		Doc: "q5; attn_v and ffn_down q6 in the more-bits layers; q6 output head (about Q5_K_M)"},
	{Name: "q6_k", Base: quant.QK(6, 32), Output: quant.QK(6, 32), Doc: "q6 everywhere (about Q6_K)"},
}

// PresetNames is the list of preset names for messages.
func PresetNames() string {
	var n []string
	for _, p := range Presets {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

// LookupPreset finds a preset by name (case-insensitive).
func LookupPreset(name string) (Preset, error) {
	for _, p := range Presets {
		if strings.EqualFold(p.Name, strings.TrimSpace(name)) {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown preset %q (want %s)", name, PresetNames())
}

// MoreBitsLayer is llama.cpp's choice of the layers whose attn_v and
// ffn_down get more bits in its _M mixes: the first and last eighth of the
// n layers, and every third layer in between.
func MoreBitsLayer(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

var presetTensor = regexp.MustCompile(`^blk\.(\d+)\.(attn_v|ffn_down|attn_output)\.weight$`)

// encodingFor is the preset's encoding of a tensor the default rules put in
// class rule ("projection", "embedding", "output"), with the reason.
func (p *Preset) encodingFor(name, class string, layers int) (quant.Encoding, string) {
	switch class {
	case "output":
		return p.Output, fmt.Sprintf("preset %s: output head", p.Name)
	case "embedding":
		return p.Base, fmt.Sprintf("preset %s: embedding", p.Name)
	}
	sm := presetTensor.FindStringSubmatch(name)
	if sm == nil {
		return p.Base, fmt.Sprintf("preset %s: projection", p.Name)
	}
	layer, _ := strconv.Atoi(sm[1])
	more := MoreBitsLayer(layer, layers)
	pick := func(moreEnc, allEnc quant.Encoding) (quant.Encoding, string) {
		if more && moreEnc.Kind != quant.KindInvalid {
			return moreEnc, fmt.Sprintf("preset %s: %s in a more-bits layer", p.Name, sm[2])
		}
		if allEnc.Kind != quant.KindInvalid {
			return allEnc, fmt.Sprintf("preset %s: %s", p.Name, sm[2])
		}
		return p.Base, fmt.Sprintf("preset %s: projection", p.Name)
	}
	switch sm[2] {
	case "attn_v":
		return pick(p.AttnV, p.AttnVAll)
	case "ffn_down":
		return pick(p.FFNDown, p.FFNDownAll)
	}
	return pick(quant.Encoding{}, p.AttnOutput)
}

// Encodings lists every encoding the preset may use.
func (p *Preset) Encodings() []quant.Encoding {
	var out []quant.Encoding
	for _, e := range []quant.Encoding{p.Base, p.Output, p.AttnV, p.FFNDown, p.AttnVAll, p.FFNDownAll, p.AttnOutput} {
		if e.Kind != quant.KindInvalid && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}
