package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shrink-llm/shrink/internal/safeio"
)

// maxSafetensorsHeader caps the JSON header so a corrupt length cannot make
// us allocate gigabytes; real headers of 100B-parameter models are a few MB.
const maxSafetensorsHeader = 100 << 20

// stEntry is one tensor entry of a safetensors header, as declared.
type stEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// readSafetensors parses and validates the header of a safetensors file of
// the given size and returns its tensors sorted by data offset. file is used
// in error messages only.
func readSafetensors(r io.ReaderAt, size int64, file string) ([]*SourceTensor, map[string]string, error) {
	fail := func(format string, args ...any) ([]*SourceTensor, map[string]string, error) {
		return nil, nil, fmt.Errorf("safetensors %s: "+format, append([]any{file}, args...)...)
	}
	if size < 8 {
		return fail("file is %d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return fail("reading header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxSafetensorsHeader {
		return fail("header length %d exceeds the %d-byte limit", hlen, maxSafetensorsHeader)
	}
	if hlen > uint64(size-8) {
		return fail("header length %d exceeds the file size %d", hlen, size)
	}
	hdr := make([]byte, hlen)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return fail("reading header: %w", err)
	}
	dataStart := 8 + int64(hlen)
	dataLen := uint64(size - dataStart)

	entries, meta, err := parseSafetensorsJSON(hdr)
	if err != nil {
		return fail("%w", err)
	}
	out := make([]*SourceTensor, 0, len(entries))
	for name, e := range entries {
		nbytes, err := e.byteSize()
		if err != nil {
			return fail("tensor %s: %w", name, err)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b > end {
			return fail("tensor %s: data_offsets [%d, %d] run backwards", name, b, end)
		}
		if end > dataLen {
			return fail("tensor %s: data_offsets [%d, %d] exceed the %d-byte data section", name, b, end, dataLen)
		}
		if end-b != nbytes {
			return fail("tensor %s: data_offsets [%d, %d] hold %d bytes, but %s %v needs %d", name, b, end, end-b, e.DType, e.Shape, nbytes)
		}
		out = append(out, &SourceTensor{
			Name: name, DType: e.DType, Shape: e.Shape, File: file,
			r: r, off: dataStart + int64(b), size: int64(nbytes),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].off != out[j].off {
			return out[i].off < out[j].off
		}
		return out[i].size < out[j].size
	})
	for i := 1; i < len(out); i++ {
		p, c := out[i-1], out[i]
		if c.off < p.off+p.size {
			return fail("tensors %s and %s overlap", p.Name, c.Name)
		}
	}
	return out, meta, nil
}

// byteSize validates dtype and shape and returns product(shape)·dtype size
// with every multiplication checked for overflow.
func (e *stEntry) byteSize() (uint64, error) {
	es := e.DType.Size()
	if es == 0 {
		return 0, fmt.Errorf("unknown dtype %q", e.DType)
	}
	if len(e.DataOffsets) != 2 {
		return 0, fmt.Errorf("data_offsets has %d values, want 2", len(e.DataOffsets))
	}
	n := uint64(es)
	for _, d := range e.Shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", e.Shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("shape %v of %s overflows", e.Shape, e.DType)
		}
		n = lo
	}
	return n, nil
}

// parseSafetensorsJSON decodes the header object strictly: a single JSON
// object (trailing spaces allowed, as writers pad it), no duplicate keys,
// "__metadata__" a string map, every other value exactly {dtype, shape,
// data_offsets}.
func parseSafetensorsJSON(hdr []byte) (map[string]stEntry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("header is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("header is not a JSON object")
	}
	entries := make(map[string]stEntry)
	var meta map[string]string
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("header JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, errors.New("header JSON: object key is not a string")
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("header JSON: duplicate key %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("header JSON: value of %q: %w", key, err)
		}
		if key == "__metadata__" {
			if err := strictUnmarshal(raw, &meta); err != nil || meta == nil {
				return nil, nil, fmt.Errorf("__metadata__ must be an object of strings: %v", err)
			}
			continue
		}
		var e stEntry
		if err := strictUnmarshal(raw, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %s: bad entry: %w", key, err)
		}
		if e.Shape == nil || e.DataOffsets == nil || e.DType == "" {
			return nil, nil, fmt.Errorf("tensor %s: entry needs dtype, shape and data_offsets", key)
		}
		entries[key] = e
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("header JSON: %w", err)
	}
	rest := hdr[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n")) != 0 {
		return nil, nil, errors.New("header JSON: trailing data after the object")
	}
	return entries, meta, nil
}

func strictUnmarshal(raw []byte, v any) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return errors.New("null")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// safetensorsSet is the weights of one checkpoint: the open files and all
// their tensors by name.
type safetensorsSet struct {
	files   []*os.File
	tensors map[string]*SourceTensor
	bytes   int64
}

func (s *safetensorsSet) close() {
	for _, f := range s.files {
		f.Close()
	}
}

// addFile opens, parses and registers one safetensors file.
func (s *safetensorsSet) addFile(path string) ([]*SourceTensor, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	s.files = append(s.files, f)
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	ts, _, err := readSafetensors(f, st.Size(), path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	s.bytes += st.Size()
	for _, t := range ts {
		if prev, dup := s.tensors[t.Name]; dup {
			return nil, fmt.Errorf("convert: tensor %s is in both %s and %s", t.Name, prev.File, t.File)
		}
		s.tensors[t.Name] = t
	}
	return ts, nil
}

// openSafetensorsDir opens model.safetensors, or the shards listed by
// model.safetensors.index.json, in dir.
func openSafetensorsDir(dir string) (*safetensorsSet, error) {
	s := &safetensorsSet{tensors: make(map[string]*SourceTensor)}
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		if _, err := s.addFile(single); err != nil {
			s.close()
			return nil, err
		}
		return s, nil
	}
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	data, err := safeio.ReadFile(indexPath, maxIndexBytes, "a safetensors index")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("convert: %s: no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are supported)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("convert: %s: %w", indexPath, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("convert: %s: empty weight_map", indexPath)
	}
	shardSet := make(map[string]bool)
	for name, shard := range index.WeightMap {
		if shard == "" || shard != filepath.Base(shard) || strings.HasPrefix(shard, ".") {
			return nil, fmt.Errorf("convert: %s: tensor %s maps to shard %q, which is not a plain file name in the folder", indexPath, name, shard)
		}
		shardSet[shard] = true
	}
	shards := make([]string, 0, len(shardSet))
	for sh := range shardSet {
		shards = append(shards, sh)
	}
	sort.Strings(shards)
	for _, sh := range shards {
		p := filepath.Join(dir, sh)
		if _, err := os.Stat(p); err != nil {
			s.close()
			return nil, fmt.Errorf("convert: %s: shard %s listed in the index is missing: %w", indexPath, sh, err)
		}
		if _, err := s.addFile(p); err != nil {
			s.close()
			return nil, err
		}
	}
	for name, shard := range index.WeightMap {
		t, ok := s.tensors[name]
		if !ok || filepath.Base(t.File) != shard {
			s.close()
			return nil, fmt.Errorf("convert: %s: tensor %s is listed in shard %s but not stored there", indexPath, name, shard)
		}
	}
	return s, nil
}
