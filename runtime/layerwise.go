package runtime

import (
	"context"
	"fmt"

	"github.com/shrink-llm/shrink/format"
)

// Layer-by-layer execution, for calibration that compresses a model one
// block at a time: the caller keeps the hidden states of its sequences
// between blocks (Embed, then Block l for l = 0, 1, …) and may replace a
// block's projections (ReplaceBlock) before running it.

// Embed writes the input of block 0 for tokens at positions p0… into x
// (len(tokens)×hidden).
func (s *Session) Embed(x []float32, tokens []int, p0 int) (err error) {
	m := s.m
	h := m.cfg.HiddenSize
	T := len(tokens)
	if len(x) != T*h {
		return fmt.Errorf("embed: %d values for %d tokens of width %d", len(x), T, h)
	}
	if p0 < 0 || p0+T > s.max {
		return fmt.Errorf("embed: positions %d…%d outside the session's %d", p0, p0+T-1, s.max)
	}
	for _, id := range tokens {
		if id < 0 || id >= m.cfg.VocabSize {
			return fmt.Errorf("embed: token %d outside the vocabulary of %d", id, m.cfg.VocabSize)
		}
	}
	if ferr := guardFaults(func() {
		row := make([]float32, h)
		for t, id := range tokens {
			xr := x[t*h : (t+1)*h]
			m.embd.row(xr, id, s.rowScr)
			if m.posEmbd != nil {
				m.posEmbd.row(row, p0+t, s.rowScr)
				for i, v := range row {
					xr[i] += v
				}
			}
		}
	}); ferr != nil {
		return ferr
	}
	return nil
}

// Block runs block l over the rows of x (hidden states of positions p0…,
// at most PrefillChunk of them) in place, calling the session's hook. It
// reads block l's cache of positions before p0 and writes those of x, so
// the chunks of one sequence go through a block in order, from p0 = 0.
func (s *Session) Block(ctx context.Context, l int, x []float32, p0 int) (err error) {
	m := s.m
	h := m.cfg.HiddenSize
	if l < 0 || l >= len(m.layers) {
		return fmt.Errorf("block %d: the model has %d", l, len(m.layers))
	}
	if len(x)%h != 0 || len(x) == 0 {
		return fmt.Errorf("block %d: %d values are not rows of width %d", l, len(x), h)
	}
	T := len(x) / h
	if T > PrefillChunk || p0 < 0 || p0+T > s.max {
		return fmt.Errorf("block %d: %d rows at position %d (session of %d, at most %d rows)", l, T, p0, s.max, PrefillChunk)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.ensure(T)
	if m.rope {
		half := len(m.invFreq)
		ropeTable(s.cos[:T*half], s.sin[:T*half], m.invFreq, p0, T)
	}
	if ferr := guardFaults(func() { s.block(l, x, s.xn[:T*h], p0, T) }); ferr != nil {
		return ferr
	}
	return nil
}

// ReplaceBlock swaps the projections of block l (q, k, v, output, gate,
// up, down) for those src holds under the same names; the others are kept.
// Shapes must match. No session of the model may be running meanwhile.
func (m *Model) ReplaceBlock(l int, src WeightSource) error {
	if l < 0 || l >= len(m.layers) {
		return fmt.Errorf("replace block %d: the model has %d", l, len(m.layers))
	}
	L := &m.layers[l]
	slots := []struct {
		stem format.Stem
		mat  **Matrix
	}{
		{format.AttnQ, &L.q}, {format.AttnK, &L.k}, {format.AttnV, &L.v}, {format.AttnOutput, &L.o},
		{format.FFNGate, &L.gate}, {format.FFNUp, &L.up}, {format.FFNDown, &L.down},
	}
	next := make([]*Matrix, len(slots))
	for i, sl := range slots {
		name := format.BlockName(l, sl.stem, format.Weight)
		w, ok := src.Weight(name)
		if !ok || *sl.mat == nil {
			continue
		}
		mm, err := NewMatrix(w)
		if err != nil {
			return fmt.Errorf("replace %s: %w", name, err)
		}
		if old := *sl.mat; mm.rows != old.rows || mm.cols != old.cols {
			return fmt.Errorf("replace %s: shape [%d, %d], the model's is [%d, %d]", name, mm.rows, mm.cols, old.rows, old.cols)
		}
		next[i] = mm
	}
	for i, sl := range slots {
		if next[i] != nil {
			m.weightBytes += next[i].Bytes() - (*sl.mat).Bytes()
			*sl.mat = next[i]
		}
	}
	return nil
}

// Head writes the logits of the rows of x (hidden states after the last
// block, at most PrefillChunk rows) into logits (rows×vocab): the final norm
// and the output head, as a forward pass ends. x is not changed.
func (s *Session) Head(x, logits []float32) (err error) {
	m := s.m
	h, v := m.cfg.HiddenSize, m.cfg.VocabSize
	if len(x)%h != 0 || len(x) == 0 {
		return fmt.Errorf("head: %d values are not rows of width %d", len(x), h)
	}
	T := len(x) / h
	if T > PrefillChunk {
		return fmt.Errorf("head: %d rows (at most %d)", T, PrefillChunk)
	}
	if len(logits) != T*v {
		return fmt.Errorf("head: %d logits for %d rows of a vocabulary of %d", len(logits), T, v)
	}
	s.ensure(T)
	xn := s.xn[:T*h]
	if ferr := guardFaults(func() {
		m.norm(xn, x, m.outNorm, m.outNormB, T, float32(m.cfg.NormEps))
		s.e.mul(m.output, logits, xn, T, false)
	}); ferr != nil {
		return ferr
	}
	return nil
}
