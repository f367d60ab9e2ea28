package eval

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report in llama.cpp's llama-perplexity
// --kl-divergence layout (same section titles and row labels, so the two
// can be read side by side), preceded by a header naming the models and the
// input and followed by the throughput.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	s := &r.Summary
	if r.Ref != nil {
		fmt.Fprintf(&b, "reference: %s\n", describeModel(r.Ref))
	}
	if r.Model != nil {
		fmt.Fprintf(&b, "candidate: %s\n", describeModel(r.Model))
	}
	if r.Input != nil {
		docs := ""
		if r.Input.Documents > 0 {
			docs = fmt.Sprintf(", %d documents", r.Input.Documents)
		}
		fmt.Fprintf(&b, "input:     %s (%d tokens%s)\n", r.Input.Source, r.Input.NumTokens, docs)
	}
	of := ""
	if r.FirstChunk > 0 {
		of = fmt.Sprintf(" (chunks %d–%d of 0–%d)", r.FirstChunk, r.FirstChunk+r.Chunks-1, r.AvailableChunks-1)
	} else if r.AvailableChunks > r.Chunks {
		of = fmt.Sprintf(" (the first %d of %d)", r.Chunks, r.AvailableChunks)
	}
	fmt.Fprintf(&b, "chunks:    %d × %d tokens%s, convention %q (%s): %d scored predictions\n",
		r.Chunks, r.Ctx, of, r.Convention, conventionHelp(r.Convention), s.Tokens)
	if r.Exact {
		b.WriteString("activations: float32 in every product (--exact: weight error only)\n")
	}

	b.WriteString("\n====== Perplexity statistics ======\n")
	fmt.Fprintf(&b, "Mean PPL(Q)                   : %s ± %s\n", fmtSmall(s.PPL.Value), fmtSmall(s.PPL.Err))
	fmt.Fprintf(&b, "Mean PPL(base)                : %s ± %s\n", fmtSmall(s.PPLRef.Value), fmtSmall(s.PPLRef.Err))
	fmt.Fprintf(&b, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*s.CorLnPPL)
	fmt.Fprintf(&b, "Mean ln(PPL(Q)/PPL(base))     : %s ± %s\n", fmtSmall(s.LnPPLRatio.Value), fmtSmall(s.LnPPLRatio.Err))
	fmt.Fprintf(&b, "Mean PPL(Q)/PPL(base)         : %s ± %s\n", fmtSmall(s.PPLRatio.Value), fmtSmall(s.PPLRatio.Err))
	fmt.Fprintf(&b, "Mean PPL(Q)-PPL(base)         : %s ± %s\n", fmtSmall(s.PPLDiff.Value), fmtSmall(s.PPLDiff.Err))
	fmt.Fprintf(&b, "Cor(per-chunk ln PPL)         : %6.2f%%\n", 100*r.ChunkCorLnPPL)

	b.WriteString("\n====== KL divergence statistics ======\n")
	k := &s.KLDDist
	fmt.Fprintf(&b, "Mean    KLD: %s ± %s\n", fmtSmall(s.KLD.Value), fmtSmall(s.KLD.Err))
	for _, row := range []struct {
		label string
		v     float64
	}{
		{"Maximum", k.Max}, {"99.9%  ", k.P999}, {"99.0%  ", k.P99}, {"95.0%  ", k.P95}, {"90.0%  ", k.P90},
		{"Median ", k.Median}, {"10.0%  ", k.P10}, {" 5.0%  ", k.P5}, {" 1.0%  ", k.P1}, {" 0.1%  ", k.P01},
		{"Minimum", k.Min},
	} {
		fmt.Fprintf(&b, "%s KLD: %s\n", row.label, fmtSmall(row.v))
	}

	b.WriteString("\n====== Token probability statistics ======\n")
	d := &s.DPDist
	fmt.Fprintf(&b, "Mean    Δp: %s ± %s %%\n", fmtSmall(100*s.DP.Value), fmtSmall(100*s.DP.Err))
	for _, row := range []struct {
		label string
		v     float64
	}{
		{"Maximum", d.Max}, {"99.9%  ", d.P999}, {"99.0%  ", d.P99}, {"95.0%  ", d.P95}, {"90.0%  ", d.P90},
		{"75.0%  ", d.P75}, {"Median ", d.Median}, {"25.0%  ", d.P25}, {"10.0%  ", d.P10}, {" 5.0%  ", d.P5},
		{" 1.0%  ", d.P1}, {" 0.1%  ", d.P01}, {"Minimum", d.Min},
	} {
		fmt.Fprintf(&b, "%s Δp: %s%%\n", row.label, fmtSmall(100*row.v))
	}
	fmt.Fprintf(&b, "RMS Δp    : %s ± %s %%\n", fmtSmall(100*s.RMSDP.Value), fmtSmall(100*s.RMSDP.Err))
	fmt.Fprintf(&b, "Same top p: %s ± %s %%\n", fmtSmall(100*s.SameTop.Value), fmtSmall(100*s.SameTop.Err))

	if r.Self {
		fmt.Fprintf(&b, "\neval: %.1f tokens/s (the candidate is the reference: one forward pass per chunk), %d threads, %.2f s\n",
			r.TokensPerSecond, r.Threads, r.Seconds)
	} else {
		fmt.Fprintf(&b, "\neval: %.1f tokens/s through both models (reference %.1f tokens/s, candidate %.1f tokens/s), %d threads, %.2f s\n",
			r.TokensPerSecond, r.RefTokensPerSecond, r.ModelTokensPerSecond, r.Threads, r.Seconds)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtSmall prints like llama.cpp's %10.6f, switching to scientific
// notation below 0.001 so that the tiny divergences of 16-bit encodings do
// not all read 0.000000 (or −0.000000). Exact zeros stay 0.000000.
func fmtSmall(v float64) string {
	if v == 0 || math.Abs(v) >= 1e-3 {
		return fmt.Sprintf("%10.6f", v)
	}
	return fmt.Sprintf("%10.3e", v)
}

func conventionHelp(c Convention) string {
	if c == ScoreHalf {
		return "llama.cpp: first token replaced by BOS, second half of each chunk scored"
	}
	return "every next-token prediction in the chunk"
}

func describeModel(m *ModelInfo) string {
	kind := m.Arch
	if m.Converted {
		kind += " checkpoint"
	}
	s := fmt.Sprintf("%s (%s, %s params, %s, %.2f bits/weight", m.Path, kind, HumanCount(m.Params), HumanBytes(m.FileBytes), m.BitsPerWeight)
	if m.ProjectionBits > 0 {
		s += fmt.Sprintf(", projections %.2f bits/weight", m.ProjectionBits)
	}
	if m.Converted {
		s += "; run as float32"
	}
	return s + ")"
}

// HumanCount prints a parameter count the way model cards do (12.59M).
func HumanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// HumanBytes prints a size in binary units, as ls -h and llama.cpp do.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.2f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WriteText prints the tensor table worst first, then the totals per kind
// and per layer.
func (r *TensorReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tensor errors of %s against %s\n", r.Model.Path, r.Ref)
	fmt.Fprintf(&b, "%d tensors, %s params, %s of tensor data, %.2f bits/weight\n",
		len(r.Worst), HumanCount(r.Model.Params), HumanBytes(r.Model.TensorBytes), r.Model.BitsPerWeight)
	act := r.Calib != nil
	if act {
		fmt.Fprintf(&b, "activation-weighted error ‖(W−Ŵ)X‖/‖WX‖ on %d tokens of %s (reference float32 activations)\n", r.Calib.Tokens, r.Calib.Source)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "tensor\tshape\tencoding\tbytes\tbits/w\trel err\tSNR dB\tcosine\tmax abs\t"
	if act {
		head += "act rel err\t"
	}
	// Right alignment suits the numbers; names and encodings are padded
	// to one width so that they read left-aligned.
	nameW, encW := len("tensor"), len("encoding")
	for _, t := range r.Worst {
		nameW, encW = max(nameW, len(t.Name)), max(encW, len(t.Encoding))
	}
	head = fmt.Sprintf("%-*s\t", nameW, "tensor") + strings.TrimPrefix(head, "tensor\t")
	head = strings.Replace(head, "\tencoding\t", fmt.Sprintf("\t%-*s\t", encW, "encoding"), 1)
	fmt.Fprintln(tw, head)
	for _, t := range r.Worst {
		fmt.Fprintf(tw, "%-*s\t%s\t%-*s\t%d\t%.2f\t%s\t%s\t%s\t%s\t", nameW, t.Name, fmtShape(t.Shape), encW, t.Encoding, t.Bytes, t.BitsPerWeight,
			fmtRel(t.RelFrobenius), fmtSNR(t.SNRdB), fmtCos(t.Cosine), fmtG(t.MaxAbs))
		if act {
			fmt.Fprintf(tw, "%s\t", fmtAct(t.ActRelErr))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	groups := func(title string, gs []GroupError) {
		fmt.Fprintf(&b, "\n%s\n", title)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		w := len("total")
		for _, g := range gs {
			w = max(w, len(g.Name))
		}
		head := fmt.Sprintf("%-*s\ttensors\tparams\tbits/w\trel err\tSNR dB\tcosine\t", w, "")
		if act {
			head += "act rel err\t"
		}
		fmt.Fprintln(tw, head)
		for _, g := range gs {
			fmt.Fprintf(tw, "%-*s\t%d\t%s\t%.2f\t%s\t%s\t%s\t", w, g.Name, g.Tensors, HumanCount(g.Params), g.BitsPerWeight,
				fmtRel(g.RelFrobenius), fmtSNR(g.SNRdB), fmtCos(g.Cosine))
			if act {
				fmt.Fprintf(tw, "%s\t", fmtAct(g.ActRelErr))
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	groups("per kind (rel err = sqrt(Σ‖W−Ŵ‖² / Σ‖W‖²) over the kind's tensors):", append(slices.Clone(r.Kinds), r.Total))
	groups("per layer:", append(slices.Clone(r.Layers), r.Total))
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtShape(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, "×") + "]"
}

func fmtRel(f Float) string {
	if f == 0 {
		return "0"
	}
	return fmt.Sprintf("%.3e", float64(f))
}

func fmtSNR(f Float) string {
	if math.IsInf(float64(f), 1) {
		return "exact"
	}
	return fmt.Sprintf("%.2f", float64(f))
}

func fmtCos(f Float) string { return fmt.Sprintf("%.7f", float64(f)) }

func fmtG(f Float) string {
	if f == 0 {
		return "0"
	}
	return fmt.Sprintf("%.3g", float64(f))
}

func fmtAct(f *Float) string {
	if f == nil {
		return "-"
	}
	return fmtRel(*f)
}
