package format

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is how a tensor is stored (Tensor.Kind). A dense tensor has one part
// "w"; a low-rank tensor W ≈ A·B has parts "a" [out, k] and "b" [k, in]; a
// LoRC tensor W ≈ Q + A·B has parts "w", "a" and "b". Code that builds a
// tensor before its kind is decided may leave it empty, which means dense;
// files always carry the kind.
type Kind string

// Tensor kinds.
const (
	KindDense   Kind = "dense"
	KindLowRank Kind = "lowrank"
	KindLoRC    Kind = "lorc"
)

// Factored reports whether tensors of kind k store factors A and B.
func (k Kind) Factored() bool { return k == KindLowRank || k == KindLoRC }

// Dense reports whether k is dense (the empty Kind included).
func (k Kind) Dense() bool { return k == KindDense || k == "" }

// Roles lists the parts a tensor of kind k has, in storage order; nil for
// an unknown kind. The empty Kind is dense.
func (k Kind) Roles() []Role {
	switch k {
	case KindDense, "":
		return []Role{RoleW}
	case KindLowRank:
		return []Role{RoleA, RoleB}
	case KindLoRC:
		return []Role{RoleW, RoleA, RoleB}
	}
	return nil
}

// Role names a part of a tensor (Part.Role).
type Role string

// Part roles.
const (
	RoleW Role = "w" // the dense (or, for lorc, quantized base) matrix
	RoleA Role = "a" // left factor [out, k]
	RoleB Role = "b" // right factor [k, in]
)

// Stem is a canonical tensor name without its layer prefix ("blk.N.") and
// its ".weight"/".bias" suffix: the tensor's place in the graph. DESIGN.md
// lists which families have which.
type Stem string

// Canonical stems. The block ones appear once per layer.
const (
	TokenEmbd    Stem = "token_embd"
	PositionEmbd Stem = "position_embd"
	OutputNorm   Stem = "output_norm"
	Output       Stem = "output"

	AttnNorm   Stem = "attn_norm"
	AttnQ      Stem = "attn_q"
	AttnK      Stem = "attn_k"
	AttnV      Stem = "attn_v"
	AttnOutput Stem = "attn_output"
	FFNNorm    Stem = "ffn_norm"
	FFNGate    Stem = "ffn_gate"
	FFNUp      Stem = "ffn_up"
	FFNDown    Stem = "ffn_down"
)

// Projections are the 2-D matrices of a block, in canonical order: the
// ones low-rank methods factor.
var Projections = []Stem{AttnQ, AttnK, AttnV, AttnOutput, FFNGate, FFNUp, FFNDown}

// Projection reports whether s is one of Projections.
func (s Stem) Projection() bool {
	switch s {
	case AttnQ, AttnK, AttnV, AttnOutput, FFNGate, FFNUp, FFNDown:
		return true
	}
	return false
}

// Suffix is the last component of a canonical name.
type Suffix string

// Name suffixes.
const (
	Weight Suffix = "weight"
	Bias   Suffix = "bias"
)

// blockPrefix starts every per-layer name.
const blockPrefix = "blk."

// Name returns the canonical name of a model-level tensor, e.g.
// Name(TokenEmbd, Weight) = "token_embd.weight".
func Name(s Stem, x Suffix) string { return string(s) + "." + string(x) }

// BlockName returns the canonical name of a tensor of layer layer, e.g.
// BlockName(0, AttnQ, Weight) = "blk.0.attn_q.weight".
func BlockName(layer int, s Stem, x Suffix) string {
	return fmt.Sprintf("%s%d.%s.%s", blockPrefix, layer, s, x)
}

// ParseName splits a canonical name into its layer (−1 for a model-level
// tensor), stem and suffix. ok is false when name does not have that shape;
// the stem itself is not checked against the constants, so that names of
// future tensors still parse.
func ParseName(name string) (layer int, s Stem, x Suffix, ok bool) {
	layer = -1
	rest := name
	if after, found := strings.CutPrefix(name, blockPrefix); found {
		num, tail, found := strings.Cut(after, ".")
		n, err := strconv.Atoi(num)
		if !found || err != nil || n < 0 || strconv.Itoa(n) != num {
			return -1, "", "", false
		}
		layer, rest = n, tail
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 {
		return -1, "", "", false
	}
	return layer, Stem(rest[:i]), Suffix(rest[i+1:]), true
}
