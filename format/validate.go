package format

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// checkName returns a description of what is wrong with a tensor or blob
// name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > maxNameLen:
		return fmt.Sprintf("name longer than %d bytes", maxNameLen)
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	}
	return ""
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Hard limits on a model's declared sizes: far above any real model, and
// low enough that buffers sized by them (rotary tables, per-layer arrays,
// a KV cache for a short session) cannot exhaust memory before the tensors
// have been checked against them.
const (
	MaxDim     = 1 << 24 // vocabulary, hidden and FFN sizes, heads, head_dim
	MaxLayers  = 1 << 16 // transformer blocks
	MaxContext = 1 << 24 // context length in tokens
)

// Validate checks c as a file header's config is checked: sizes positive
// and within the hard limits, consistent heads, finite floats, special ids
// inside the vocabulary. Converters call it before writing anything.
func (c *ModelConfig) Validate() error {
	if err := validateConfig(c); err != nil {
		return err
	}
	return nil
}

// validateConfig keeps to checks every graph needs; family-specific rules
// (known arch, norm and activation names) belong to the runtime.
func validateConfig(c *ModelConfig) *Error {
	bad := func(format string, args ...any) *Error {
		return problem(ErrCorrupt, "config: "+fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.Arch) == "" {
		return bad("arch is empty")
	}
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"vocab_size", c.VocabSize, MaxDim},
		{"hidden_size", c.HiddenSize, MaxDim},
		{"intermediate_size", c.IntermediateSize, MaxDim},
		{"num_layers", c.NumLayers, MaxLayers},
		{"num_heads", c.NumHeads, MaxDim},
		{"num_kv_heads", c.NumKVHeads, MaxDim},
		{"head_dim", c.HeadDim, MaxDim},
		{"context_length", c.ContextLength, MaxContext},
	} {
		if f.v <= 0 {
			return bad("%s is %d, want > 0", f.name, f.v)
		}
		if f.v > f.max {
			return bad("%s is %d, over the limit of %d", f.name, f.v, f.max)
		}
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return bad("num_kv_heads %d does not divide num_heads %d", c.NumKVHeads, c.NumHeads)
	}
	if !finite(c.RopeTheta) || c.RopeTheta < 0 {
		return bad("rope_theta %v is not a finite value ≥ 0", c.RopeTheta)
	}
	if !finite(c.NormEps) || c.NormEps < 0 {
		return bad("norm_eps %v is not a finite value ≥ 0", c.NormEps)
	}
	if rs := c.RopeScaling; rs != nil {
		if !finite(rs.Factor) || rs.Factor <= 0 {
			return bad("rope_scaling.factor %v is not a finite value > 0", rs.Factor)
		}
		if !finite(rs.LowFreqFactor) || !finite(rs.HighFreqFactor) {
			return bad("rope_scaling frequency factors are not finite")
		}
	}
	if c.BOS < -1 || c.BOS >= c.VocabSize {
		return bad("bos %d outside -1..%d", c.BOS, c.VocabSize-1)
	}
	for _, id := range c.EOS {
		if id < 0 || id >= c.VocabSize {
			return bad("eos %d outside 0..%d", id, c.VocabSize-1)
		}
	}
	return nil
}

// checkShape validates a tensor or part shape: rank 1 or 2, dims 1..maxDim.
func checkShape(shape []int64) string {
	if len(shape) != 1 && len(shape) != 2 {
		return fmt.Sprintf("shape %v has rank %d, want 1 or 2", shape, len(shape))
	}
	for _, d := range shape {
		if d <= 0 || d > maxDim {
			return fmt.Sprintf("shape %v has dimension %d outside 1..%d", shape, d, maxDim)
		}
	}
	return ""
}

// rowsCols maps a checked shape to the encoding's [rows, cols].
func rowsCols(shape []int64) (rows, cols int) {
	if len(shape) == 1 {
		return 1, int(shape[0])
	}
	return int(shape[0]), int(shape[1])
}

// kindRoles is the part list each kind a file may carry must have, in
// order (the empty Kind, dense in memory, is not valid in a file).
var kindRoles = map[Kind][]Role{
	KindDense:   KindDense.Roles(),
	KindLowRank: KindLowRank.Roles(),
	KindLoRC:    KindLoRC.Roles(),
}

func joinRoles(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// checkTensorLayout validates everything about a tensor that does not
// depend on where its bytes are: name, kind, shape, parts (roles, order,
// shapes, encodings). It returns the encoded size of each part.
func checkTensorLayout(t *Tensor) ([]uint64, *Error) {
	if msg := checkName(t.Name); msg != "" {
		return nil, problem(ErrCorrupt, "tensor: "+msg)
	}
	bad := func(class error, part Role, format string, args ...any) *Error {
		return tensorProblem(class, t.Name, part, fmt.Sprintf(format, args...))
	}
	roles, ok := kindRoles[t.Kind]
	if !ok {
		return nil, bad(ErrUnsupported, "", "unknown kind %q (this reader knows dense, lowrank, lorc)", t.Kind)
	}
	if msg := checkShape(t.Shape); msg != "" {
		return nil, bad(ErrCorrupt, "", "%s", msg)
	}
	if t.Kind != KindDense && len(t.Shape) != 2 {
		return nil, bad(ErrCorrupt, "", "kind %s needs a 2-D shape, got %v", t.Kind, t.Shape)
	}
	if len(t.Parts) != len(roles) {
		return nil, bad(ErrCorrupt, "", "kind %s has %d parts, want %d (%s)", t.Kind, len(t.Parts), len(roles), joinRoles(roles))
	}
	for i := range t.Parts {
		if r := t.Parts[i].Role; r != roles[i] {
			return nil, bad(ErrCorrupt, "", "part %d has role %q, want %q (kind %s has parts %s in this order)", i, r, roles[i], t.Kind, joinRoles(roles))
		}
	}
	sizes := make([]uint64, len(t.Parts))
	for i := range t.Parts {
		p := &t.Parts[i]
		if msg := checkShape(p.Shape); msg != "" {
			return nil, bad(ErrCorrupt, p.Role, "%s", msg)
		}
		if err := p.Encoding.Validate(); err != nil {
			return nil, bad(ErrUnsupported, p.Role, "unknown encoding: %v", err)
		}
		rows, cols := rowsCols(p.Shape)
		n, err := p.Encoding.Size(rows, cols)
		if err != nil {
			return nil, bad(ErrCorrupt, p.Role, "encoding %v of shape %v: %v", p.Encoding, p.Shape, err)
		}
		sizes[i] = uint64(n)
	}
	// Factor shapes: a is [out, k] and b is [k, in] for the tensor's [out, in].
	var k int64
	for i := range t.Parts {
		p := &t.Parts[i]
		var want []int64
		switch p.Role {
		case RoleW:
			want = t.Shape
		case RoleA:
			if len(p.Shape) == 2 {
				k = p.Shape[1]
			}
			want = []int64{t.Shape[0], k}
		case RoleB:
			want = []int64{k, t.Shape[1]}
		}
		if !slices.Equal(p.Shape, want) {
			return nil, bad(ErrCorrupt, p.Role, "shape %v does not fit tensor shape %v (want %v)", p.Shape, t.Shape, want)
		}
	}
	if m := t.Metrics; m != nil && !(finite(m.RelFrobenius) && finite(m.SNRdB) && finite(m.Cosine) && finite(m.MaxAbs)) {
		return nil, bad(ErrCorrupt, "", "metrics %+v are not finite (store an infinite SNR as 999)", *m)
	}
	return sizes, nil
}

// checkPlacement validates an item's byte range against the data section
// [PreambleSize, dataEnd).
func checkPlacement(off, length, dataEnd uint64) string {
	if off%Alignment != 0 {
		return fmt.Sprintf("offset %d is not a multiple of %d", off, Alignment)
	}
	if off < PreambleSize {
		return fmt.Sprintf("offset %d lies inside the preamble", off)
	}
	if off > dataEnd || length > dataEnd-off {
		return fmt.Sprintf("data at offset %d with length %d extends past the data section end %d", off, length, dataEnd)
	}
	return ""
}

// item is one byte range of the data section, for the overlap check.
type item struct {
	off, end uint64
	tensor   string
	part     Role
	blob     string
}

func (it item) String() string {
	if it.blob != "" || it.tensor == "" {
		return fmt.Sprintf("blob %q", it.blob)
	}
	return fmt.Sprintf("tensor %q part %s", it.tensor, it.part)
}

func (it item) problem(msg string) *Error {
	if it.tensor != "" {
		return tensorProblem(ErrCorrupt, it.tensor, it.part, msg)
	}
	return blobProblem(ErrCorrupt, it.blob, msg)
}

// validateHeader checks a decoded header against a file whose data section
// ends at dataEnd (the header offset). It is shared by the reader and by
// Writer.Commit, so the writer can never produce a file the reader rejects.
func validateHeader(h *Header, dataEnd uint64) *Error {
	if h.Version != Version {
		return problem(ErrUnsupported, fmt.Sprintf("header version %d does not match preamble version %d", h.Version, Version))
	}
	if err := validateConfig(&h.Config); err != nil {
		return err
	}

	items := make([]item, 0, len(h.Blobs)+2*len(h.Tensors))
	blobs := make(map[string]bool, len(h.Blobs))
	for i := range h.Blobs {
		b := &h.Blobs[i]
		if msg := checkName(b.Name); msg != "" {
			return problem(ErrCorrupt, fmt.Sprintf("blob %d: %s", i, msg))
		}
		if blobs[b.Name] {
			return blobProblem(ErrCorrupt, b.Name, "duplicate blob name")
		}
		blobs[b.Name] = true
		switch b.Compression {
		case CompressionNone:
			if b.RawLength != b.Length {
				return blobProblem(ErrCorrupt, b.Name, fmt.Sprintf("uncompressed blob has length %d but raw_length %d", b.Length, b.RawLength))
			}
		case CompressionZstd:
		default:
			return blobProblem(ErrUnsupported, b.Name, fmt.Sprintf("unknown compression %q (this reader knows zstd)", b.Compression))
		}
		if b.RawLength > MaxBlobRawSize {
			return blobProblem(ErrCorrupt, b.Name, fmt.Sprintf("raw_length %d exceeds %d", b.RawLength, MaxBlobRawSize))
		}
		if msg := checkPlacement(b.Offset, b.Length, dataEnd); msg != "" {
			return blobProblem(ErrCorrupt, b.Name, msg)
		}
		items = append(items, item{off: b.Offset, end: b.Offset + b.Length, blob: b.Name})
	}

	if h.TokenizerKind != TokenizerNone {
		need, ok := tokenizerBlob[h.TokenizerKind]
		if !ok {
			return problem(ErrUnsupported, fmt.Sprintf("unknown tokenizer_kind %q (this reader knows hf, llama2c, spm, gguf)", h.TokenizerKind))
		}
		if !blobs[need] {
			return problem(ErrCorrupt, fmt.Sprintf("tokenizer_kind %q needs blob %q", h.TokenizerKind, need))
		}
	}

	names := make(map[string]bool, len(h.Tensors))
	for i := range h.Tensors {
		t := &h.Tensors[i]
		sizes, err := checkTensorLayout(t)
		if err != nil {
			if t.Name == "" {
				err.Msg = fmt.Sprintf("tensor %d: %s", i, strings.TrimPrefix(err.Msg, "tensor: "))
			}
			return err
		}
		if names[t.Name] {
			return tensorProblem(ErrCorrupt, t.Name, "", "duplicate tensor name")
		}
		names[t.Name] = true
		for j := range t.Parts {
			p := &t.Parts[j]
			if p.Length != sizes[j] {
				return tensorProblem(ErrCorrupt, t.Name, p.Role, fmt.Sprintf("length %d, but encoding %v of shape %v takes %d bytes", p.Length, p.Encoding, p.Shape, sizes[j]))
			}
			if msg := checkPlacement(p.Offset, p.Length, dataEnd); msg != "" {
				return tensorProblem(ErrCorrupt, t.Name, p.Role, msg)
			}
			items = append(items, item{off: p.Offset, end: p.Offset + p.Length, tensor: t.Name, part: p.Role})
		}
	}

	// Overlaps: after sorting by start, any overlap shows up between an item
	// and the furthest-reaching item before it.
	slices.SortStableFunc(items, func(a, b item) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	var reach item
	for _, it := range items {
		if it.end == it.off {
			continue // empty blobs occupy no bytes
		}
		if reach.end > it.off {
			return it.problem(fmt.Sprintf("data [%d, %d) overlaps %v [%d, %d)", it.off, it.end, reach, reach.off, reach.end))
		}
		if it.end > reach.end {
			reach = it
		}
	}
	return nil
}
