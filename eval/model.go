package eval

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"

	"github.com/shrink-llm/shrink/internal/safeio"
)

// ModelInfo describes a model that took part in an evaluation.
type ModelInfo struct {
	Path string `json:"path"` // as given by the user
	// Converted is set when Path was a checkpoint that was converted to a
	// temporary float32 .shrink to be run.
	Converted bool   `json:"converted,omitempty"`
	Arch      string `json:"arch"`
	Params    int64  `json:"params"`
	// FileBytes is the size on disk: the .shrink file, or the checkpoint's
	// weight files when Converted.
	FileBytes int64 `json:"file_bytes"`
	// TensorBytes is the weight data as stored (same basis as FileBytes).
	TensorBytes   int64   `json:"tensor_bytes"`
	BitsPerWeight float64 `json:"bits_per_weight"` // TensorBytes·8 / Params
	// ProjectionBits is bytes·8 / parameters over the per-layer 2-D
	// projections alone (attn_q … ffn_down, every part of a factored one):
	// the tensors --quant sets, without embeddings, head and norms.
	ProjectionBits float64 `json:"projection_bits_per_weight,omitempty"`
}

// Loaded is a model ready to run, with what is known about where it came from.
type Loaded struct {
	*runtime.Model
	Info    ModelInfo
	cleanup func()
}

// Close releases the model and removes any temporary file made for it.
func (l *Loaded) Close() error {
	err := l.Model.Close()
	if l.cleanup != nil {
		l.cleanup()
		l.cleanup = nil
	}
	return err
}

// IsShrinkFile reports whether path is a regular file that starts with the
// .shrink magic.
func IsShrinkFile(path string) bool {
	f, err := safeio.Open(path) // a pipe or device is not one (and must not block)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [len(format.Magic)]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	return bytes.Equal(b[:], []byte(format.Magic))
}

// OpenModel opens path for evaluation. A .shrink file is run as it is. A
// checkpoint (Hugging Face folder or llama2.c .bin) is converted to a
// temporary float32 .shrink first, because a reference must carry the
// original weights exactly; the temporary file is removed by Close.
func OpenModel(ctx context.Context, path string, opts runtime.Options) (*Loaded, error) {
	if IsShrinkFile(path) {
		return openShrink(path, opts)
	}
	src, err := convert.Open(path, convert.OpenOptions{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	plan, err := convert.MakePlan(src.Config, src.Tensors, convert.Policy{Quant: quant.F32})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir, err := os.MkdirTemp("", "shrink-eval-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, "reference-f32.shrink")
	if _, err := convert.Convert(ctx, src, plan, out, convert.Options{Workers: opts.Threads}); err != nil {
		cleanup()
		return nil, fmt.Errorf("converting %s to f32: %w", path, err)
	}
	l, err := openShrink(out, opts)
	if err != nil {
		cleanup()
		return nil, err
	}
	l.cleanup = cleanup
	l.Info = ModelInfo{
		Path: path, Converted: true, Arch: src.Config.Arch, Params: plan.Params,
		FileBytes: src.SourceBytes, TensorBytes: plan.SourceBytes,
		BitsPerWeight: float64(plan.SourceBytes) * 8 / float64(max(plan.Params, 1)),
	}
	return l, nil
}

func openShrink(path string, opts runtime.Options) (*Loaded, error) {
	info, err := ShrinkInfo(path)
	if err != nil {
		return nil, err
	}
	m, err := runtime.Open(path, opts)
	if err != nil {
		return nil, err
	}
	return &Loaded{Model: m, Info: info}, nil
}

// ShrinkInfo reads the size figures of a .shrink file from its header.
func ShrinkInfo(path string) (ModelInfo, error) {
	f, err := format.OpenWithOptions(path, format.OpenOptions{SkipVerify: true})
	if err != nil {
		return ModelInfo{}, err
	}
	defer f.Close()
	info := ModelInfo{Path: path, Arch: f.Config().Arch, FileBytes: f.Size()}
	var projBytes, projParams int64
	for _, t := range f.Tensors() {
		n := convert.Numel(t.Shape)
		info.Params += n
		var b int64
		for _, p := range t.Parts {
			b += int64(p.Length)
		}
		info.TensorBytes += b
		if layer, stem, _, ok := format.ParseName(t.Name); ok && layer >= 0 && stem.Projection() && len(t.Shape) == 2 {
			projBytes += b
			projParams += n
		}
	}
	info.BitsPerWeight = float64(info.TensorBytes) * 8 / float64(max(info.Params, 1))
	if projParams > 0 {
		info.ProjectionBits = float64(projBytes) * 8 / float64(projParams)
	}
	return info, nil
}
