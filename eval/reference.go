package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// ReferenceSet is a published size-against-divergence front drawn beside a
// sweep's own points (another tool's figures on the same model and
// tokens), read from a data file that says where the figures come from.
type ReferenceSet struct {
	Label  string           `json:"label"`  // legend and series name, e.g. "llama.cpp"
	Source string           `json:"source"` // where the figures were measured or published
	Points []ReferencePoint `json:"points"`
}

// ReferencePoint is one of the reference's files.
type ReferencePoint struct {
	Name           string  `json:"name"`
	ProjectionBits float64 `json:"projection_bits_per_weight"`
	KLD            float64 `json:"mean_kld"`
	SameTop        float64 `json:"same_top,omitempty"` // fraction, 0 when not given
}

// ReadReferences reads and checks a ReferenceSet JSON file.
func ReadReferences(path string) (*ReferenceSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r ReferenceSet
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func (r *ReferenceSet) check() error {
	if strings.TrimSpace(r.Label) == "" || strings.TrimSpace(r.Source) == "" {
		return fmt.Errorf("a reference set needs a label and its source")
	}
	if len(r.Points) == 0 {
		return fmt.Errorf("reference set %q has no points", r.Label)
	}
	for i, p := range r.Points {
		if p.Name == "" || !(p.ProjectionBits > 0 && p.ProjectionBits <= 64) || !(p.KLD >= 0) || math.IsInf(p.KLD, 0) || !(p.SameTop >= 0 && p.SameTop <= 1) {
			return fmt.Errorf("reference point %d (%q): want a name, bits per weight in (0, 64], a finite KLD ≥ 0 and same top in [0, 1]", i+1, p.Name)
		}
	}
	return nil
}

// referencesMarkdown lists the reference points under the sweep's table.
func (s *Sweep) referencesMarkdown(b *strings.Builder) {
	r := s.References
	if r == nil {
		return
	}
	fmt.Fprintf(b, "\nReference points (%s; %s):\n\n", r.Label, r.Source)
	b.WriteString("| reference | projection bits/weight | mean KLD | same top |\n| --- | ---: | ---: | ---: |\n")
	for _, p := range r.Points {
		top := "–"
		if p.SameTop > 0 {
			top = fmt.Sprintf("%.2f %%", 100*p.SameTop)
		}
		fmt.Fprintf(b, "| %s %s | %.2f | %.5f | %s |\n", r.Label, p.Name, p.ProjectionBits, p.KLD, top)
	}
}
