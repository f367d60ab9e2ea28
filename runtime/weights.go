package runtime

import (
	"fmt"
	"sort"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
)

// WeightPart is one encoded matrix of a weight. Data is the encoded bytes in
// the quant layout of Encoding; for a weight read from a .shrink file it
// aliases the read-only mapping, so it must never be written.
type WeightPart struct {
	Role     format.Role
	Shape    []int64
	Encoding quant.Encoding
	Data     []byte
}

// Weight is one logical tensor as the runtime consumes it.
type Weight struct {
	Name  string
	Shape []int64
	Kind  format.Kind // empty means dense
	Parts []WeightPart
}

// WeightSource provides a model's configuration and its tensors by canonical
// name. A *format.File is adapted by FileSource; tests and the converter's
// calibration build MemSource values.
type WeightSource interface {
	Config() format.ModelConfig
	Weight(name string) (*Weight, bool)
}

// MemSource is an in-memory WeightSource.
type MemSource struct {
	Cfg     format.ModelConfig
	Weights map[string]*Weight
}

// Config returns the model configuration.
func (s *MemSource) Config() format.ModelConfig { return s.Cfg }

// Weight returns the named tensor.
func (s *MemSource) Weight(name string) (*Weight, bool) {
	w, ok := s.Weights[name]
	return w, ok
}

// Add stores w under its name, replacing any previous tensor of that name.
func (s *MemSource) Add(w *Weight) {
	if s.Weights == nil {
		s.Weights = make(map[string]*Weight)
	}
	s.Weights[w.Name] = w
}

// Names lists the stored tensor names in sorted order.
func (s *MemSource) Names() []string {
	names := make([]string, 0, len(s.Weights))
	for n := range s.Weights {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DenseWeight wraps one encoded matrix as a dense Weight. shape is the
// logical shape ([rows, cols] or [n]); data must be enc.Size(rows, cols) bytes.
func DenseWeight(name string, shape []int64, enc quant.Encoding, data []byte) *Weight {
	return &Weight{
		Name:  name,
		Shape: shape,
		Kind:  format.KindDense,
		Parts: []WeightPart{{Role: format.RoleW, Shape: shape, Encoding: enc, Data: data}},
	}
}

// part returns the part with the given role.
func (w *Weight) part(role format.Role) (*WeightPart, bool) {
	for i := range w.Parts {
		if w.Parts[i].Role == role {
			return &w.Parts[i], true
		}
	}
	return nil, false
}

// bytes is the encoded size of all parts.
func (w *Weight) bytes() int64 {
	var n int64
	for _, p := range w.Parts {
		n += int64(len(p.Data))
	}
	return n
}

// dims2 interprets a shape as [rows, cols]; a 1-D shape is one row.
func dims2(shape []int64) (rows, cols int, err error) {
	switch len(shape) {
	case 1:
		if shape[0] < 0 {
			return 0, 0, fmt.Errorf("negative shape %v", shape)
		}
		return 1, int(shape[0]), nil
	case 2:
		if shape[0] < 0 || shape[1] < 0 {
			return 0, 0, fmt.Errorf("negative shape %v", shape)
		}
		return int(shape[0]), int(shape[1]), nil
	}
	return 0, 0, fmt.Errorf("shape %v is not 1-D or 2-D", shape)
}

// checkPart verifies that a part's bytes match its shape and encoding, so
// kernels can index without bounds surprises.
func checkPart(p *WeightPart) (rows, cols int, err error) {
	rows, cols, err = dims2(p.Shape)
	if err != nil {
		return 0, 0, fmt.Errorf("part %q: %w", p.Role, err)
	}
	want, err := p.Encoding.Size(rows, cols)
	if err != nil {
		return 0, 0, fmt.Errorf("part %q: %w", p.Role, err)
	}
	if int64(len(p.Data)) != want {
		return 0, 0, fmt.Errorf("part %q: %d bytes for %v %v, want %d", p.Role, len(p.Data), p.Encoding, p.Shape, want)
	}
	return rows, cols, nil
}
