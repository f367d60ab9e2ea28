package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SweepPoint is one compressed variant of the model and what it cost.
type SweepPoint struct {
	Name      string  `json:"name"`   // e.g. "q8", "whiten r0.8 + q8"
	Series    string  `json:"series"` // plot series: "dense", "svd", "whiten", "asvd", "lorc"
	Quant     string  `json:"quant"`
	RankRatio float64 `json:"rank_ratio,omitempty"` // svd, whiten, asvd
	Rank      int     `json:"rank,omitempty"`       // lorc
	// Factors is the encoding of a low-rank point's factors.
	Factors       string  `json:"factors,omitempty"`
	FileBytes     int64   `json:"file_bytes"`
	BitsPerWeight float64 `json:"bits_per_weight"` // tensor bytes·8 / parameters of the original model
	// ProjectionBits is bytes·8 / parameters over the 2-D projections
	// (attn_*, ffn_*) alone, without embeddings, output head and vectors.
	ProjectionBits float64 `json:"projection_bits_per_weight,omitempty"`
	Summary        Summary `json:"summary"`
	Pareto         bool    `json:"pareto"` // on the bits-vs-KLD Pareto front
	// ModelTokensPerSecond is the candidate's forward-pass throughput
	// during the sweep (a busy machine makes it noisy).
	ModelTokensPerSecond float64 `json:"model_tokens_per_second,omitempty"`
}

// Sweep is the whole grid.
type Sweep struct {
	Command string `json:"command,omitempty"` // how it was made
	// Note is the author's remark on the run (why it was limited, what
	// else was going on), printed under the command.
	Note   string `json:"note,omitempty"`
	Model  string `json:"model"`
	Text   string `json:"text"`
	Ctx    int    `json:"ctx"`
	Chunks int    `json:"chunks"`
	// AvailableChunks is how many chunks the text holds (more than Chunks
	// when the sweep was limited).
	AvailableChunks int `json:"available_chunks,omitempty"`
	// FirstChunk is the first evaluated chunk (--chunk-range; 0: from the
	// start).
	FirstChunk int `json:"first_chunk,omitempty"`
	Tokens     int `json:"scored_tokens"`
	// EvalDocs is the range of the text's documents evaluated ("" = all),
	// Documents how many that is, and ScoredDocs the documents the scored
	// chunks reach into (fewer when Chunks limited the sweep).
	EvalDocs    string            `json:"eval_docs,omitempty"`
	Documents   int               `json:"documents,omitempty"`
	ScoredDocs  string            `json:"scored_docs,omitempty"`
	Calibration *SweepCalibration `json:"calibration,omitempty"`
	Convention  Convention        `json:"convention"`
	RefPPL      ValueErr          `json:"ref_ppl"`
	Points      []SweepPoint      `json:"points"`
	// References, when set, is another tool's front drawn beside the
	// points; the plots then put projection bits/weight on the x axis,
	// the basis such figures are given on.
	References *ReferenceSet `json:"references,omitempty"`
}

// SweepCalibration records the activation statistics the whitened and
// activation-aware points share: one calibration run of the uncompressed
// model.
type SweepCalibration struct {
	Text   string `json:"text"`
	Docs   string `json:"docs"`   // documents actually run, e.g. "501-581"
	Tokens int    `json:"tokens"` // tokens run
	// UsedBy lists the series that read the statistics.
	UsedBy []string `json:"used_by"`
}

// MarkPareto flags the points no other point beats on both size and KLD.
func (s *Sweep) MarkPareto() {
	for i := range s.Points {
		p := &s.Points[i]
		p.Pareto = true
		for j, q := range s.Points {
			if j == i {
				continue
			}
			le := q.BitsPerWeight <= p.BitsPerWeight && q.Summary.KLD.Value <= p.Summary.KLD.Value
			lt := q.BitsPerWeight < p.BitsPerWeight || q.Summary.KLD.Value < p.Summary.KLD.Value
			if le && lt {
				p.Pareto = false
				break
			}
		}
	}
}

// Markdown renders the sweep as a table, smallest first.
func (s *Sweep) Markdown() string {
	pts := append([]SweepPoint(nil), s.Points...)
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].BitsPerWeight < pts[j].BitsPerWeight })
	var b strings.Builder
	if s.Command != "" {
		fmt.Fprintf(&b, "`%s`\n\n", s.Command)
	}
	if s.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", s.Note)
	}
	of := ""
	if s.FirstChunk > 0 {
		of = fmt.Sprintf(" (chunks %d–%d of the text's 0–%d)", s.FirstChunk, s.FirstChunk+s.Chunks-1, s.AvailableChunks-1)
	} else if s.AvailableChunks > s.Chunks {
		of = fmt.Sprintf(" (the first %d of the text's %d)", s.Chunks, s.AvailableChunks)
	}
	docs := ""
	if s.Documents > 0 {
		which := "all " + strconv.Itoa(s.Documents) + " documents"
		if s.EvalDocs != "" {
			which = fmt.Sprintf("documents %s, %d in all", s.EvalDocs, s.Documents)
		}
		docs = " (" + which + ")"
	}
	fmt.Fprintf(&b, "Model `%s`, evaluation text `%s`%s: %d chunks of %d tokens%s, %d scored predictions, convention %q. Reference (f32) PPL %.4f ± %.4f.\n\n",
		s.Model, s.Text, docs, s.Chunks, s.Ctx, of, s.Tokens, s.Convention, s.RefPPL.Value, s.RefPPL.Err)
	if s.ScoredDocs != "" {
		fmt.Fprintf(&b, "Evaluated documents: the scored chunks cover documents %s of `%s`.\n\n", s.ScoredDocs, filepath.Base(s.Text))
	}
	if c := s.Calibration; c != nil {
		fmt.Fprintf(&b, "Calibrated documents: %d tokens of documents %s of `%s`, run once through the uncompressed model; its activation statistics serve every %s point.",
			c.Tokens, c.Docs, c.Text, strings.Join(c.UsedBy, ", "))
		if filepath.Clean(c.Text) == filepath.Clean(s.Text) {
			b.WriteString(" Calibration and evaluation share the file but not a document.")
		}
		b.WriteString("\n\n")
	}
	b.WriteString("| variant | bits/weight | projection bits/weight | file | PPL | PPL ratio | mean KLD | 99% KLD | same top | tokens/s | Pareto |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |\n")
	for _, p := range pts {
		mark := ""
		if p.Pareto {
			mark = "★"
		}
		proj := "–"
		if p.ProjectionBits > 0 {
			proj = fmt.Sprintf("%.2f", p.ProjectionBits)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %s | %.2f MiB | %.4f | %.5f ± %s | %s ± %s | %s | %.2f ± %.2f %% | %.0f | %s |\n",
			p.Name, p.BitsPerWeight, proj, float64(p.FileBytes)/(1<<20), p.Summary.PPL.Value,
			p.Summary.PPLRatio.Value, sci(p.Summary.PPLRatio.Err), sci(p.Summary.KLD.Value), sci(p.Summary.KLD.Err),
			sci(p.Summary.KLDDist.P99), 100*p.Summary.SameTop.Value, 100*p.Summary.SameTop.Err, p.ModelTokensPerSecond, mark)
	}
	b.WriteString("\nPPL ratio = PPL(variant) / PPL(f32 reference) on the same tokens; KLD = KL(p_ref ‖ p_variant) per token in nats; " +
		"same top = share of positions where both models' most likely token agrees; tokens/s = the variant's forward passes during the sweep; " +
		"★ = on the Pareto front (no other variant is both smaller and closer in mean KLD).\n")
	s.referencesMarkdown(&b)
	return b.String()
}

// sci prints a non-negative statistic compactly: 0 as 0, else 3 significant
// digits in scientific notation, so that 1e-13 and 1e-3 both read.
func sci(v float64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%.3e", v)
}

// Write stores sweep.json, sweep.md and the plots in dir.
func (s *Sweep) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sweep.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sweep.md"), []byte(s.Markdown()), 0o644); err != nil {
		return err
	}
	return s.Plot(dir)
}
