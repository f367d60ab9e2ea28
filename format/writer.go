package format

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// writeBufferSize is large enough that small parts (norms, biases) coalesce
// into few syscalls; parts larger than the buffer bypass it.
const writeBufferSize = 4 << 20

var zeros [Alignment]byte

// Writer streams a .shrink file: blobs and tensors are written as they
// come, only their metadata stays in memory, and Commit writes the header
// and atomically moves the file into place. A Writer is not safe for
// concurrent use.
//
// Typical use:
//
//	w, err := format.Create(path)
//	if err != nil { return err }
//	defer w.Abort()
//	... w.WriteBlob / w.WriteTensor ...
//	return w.Commit(h)
type Writer struct {
	path    string // final destination
	tmp     *os.File
	tmpName string
	bw      *bufio.Writer
	pos     uint64 // bytes written so far, buffered ones included

	blobs   []Blob
	tensors []Tensor
	names   map[string]bool // tensor names
	bnames  map[string]bool // blob names
	zenc    *zstd.Encoder

	err      error // sticky: set once the temp file is gone
	done     bool  // committed or aborted
	prealloc bool  // space was reserved past what may be written
}

// Create starts a new file that will appear at path on Commit. The bytes go
// to a hidden temporary file in the same directory, so the final rename is
// atomic and an interrupted write never leaves a partial file at path.
func Create(path string) (*Writer, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStale(dir)
	tmp, err := createTemp(dir, base)
	if err != nil {
		return nil, &Error{Path: path, Msg: "create temporary file", Err: err}
	}
	w := &Writer{
		path:    path,
		tmp:     tmp,
		tmpName: tmp.Name(),
		bw:      bufio.NewWriterSize(tmp, writeBufferSize),
		names:   make(map[string]bool),
		bnames:  make(map[string]bool),
	}
	// The preamble is written last; until then the file has no magic, so a
	// crash mid-write can never look like a valid file.
	if err := w.write(zeros[:PreambleSize]); err != nil {
		return nil, err
	}
	return w, nil
}

// Preallocate tells the writer that about n bytes will be written in all
// (a planner knows this before any weight is read). It reserves the disk
// space up front, which makes streaming much cheaper for the kernel; the
// file is cut to its exact length at Commit. It is only a hint: where the
// file system cannot preallocate, it does nothing.
func (w *Writer) Preallocate(n int64) error {
	if err := w.usable(); err != nil {
		return err
	}
	if n > 0 {
		_ = preallocate(w.tmp, n) // best effort: correctness never depends on it
		w.prealloc = true
	}
	return nil
}

// Path is the destination the file will have after Commit.
func (w *Writer) Path() string { return w.path }

// fail removes the temporary file and makes err sticky.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
		w.tmp.Close()
		os.Remove(w.tmpName)
	}
	return err
}

func (w *Writer) usable() error {
	if w.done {
		return &Error{Path: w.path, Class: ErrInvalid, Msg: "writer already committed or aborted"}
	}
	return w.err
}

func (w *Writer) write(p []byte) error {
	if _, err := w.bw.Write(p); err != nil {
		return w.fail(&Error{Path: w.path, Msg: "write " + w.tmpName, Err: err})
	}
	w.pos += uint64(len(p))
	return nil
}

// pad writes zeros up to the next aligned offset.
func (w *Writer) pad() error {
	if n := alignUp(w.pos) - w.pos; n > 0 {
		return w.write(zeros[:n])
	}
	return nil
}

// place writes one item at the next aligned offset and returns that offset.
func (w *Writer) place(data []byte) (uint64, error) {
	if err := w.pad(); err != nil {
		return 0, err
	}
	off := w.pos
	return off, w.write(data)
}

// WriteBlob stores an opaque byte section such as a tokenizer file. With
// compress set the blob is stored zstd-compressed, unless compression would
// not make it smaller.
func (w *Writer) WriteBlob(name string, data []byte, compress bool) error {
	if err := w.usable(); err != nil {
		return err
	}
	invalid := func(msg string) error {
		return &Error{Path: w.path, Blob: name, Class: ErrInvalid, Msg: msg}
	}
	if msg := checkName(name); msg != "" {
		return &Error{Path: w.path, Class: ErrInvalid, Msg: "blob: " + msg}
	}
	if w.bnames[name] {
		return invalid("duplicate blob name")
	}
	if uint64(len(data)) > MaxBlobRawSize {
		return invalid(fmt.Sprintf("%d bytes exceeds the %d-byte blob limit", len(data), MaxBlobRawSize))
	}
	b := Blob{Name: name, RawLength: uint64(len(data))}
	stored := data
	if compress {
		if w.zenc == nil {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
			if err != nil {
				return invalid("zstd: " + err.Error())
			}
			w.zenc = enc
		}
		if c := w.zenc.EncodeAll(data, nil); len(c) < len(data) {
			stored = c
			b.Compression = CompressionZstd
		}
	}
	off, err := w.place(stored)
	if err != nil {
		return err
	}
	b.Offset, b.Length, b.CRC32C = off, uint64(len(stored)), Checksum(stored)
	w.blobs = append(w.blobs, b)
	w.bnames[name] = true
	return nil
}

// WriteTensor stores one tensor. t.Parts[i] must have Role, Shape and
// Encoding set, in the order of t.Kind (dense: w; lowrank: a, b; lorc: w,
// a, b), and data[i] must be part i's encoded bytes, exactly
// Encoding.Size(rows, cols) long. Offset, Length and CRC32C are filled in by
// the writer. A rejected tensor leaves the writer usable; an I/O error
// removes the temporary file and fails every later call.
func (w *Writer) WriteTensor(t Tensor, data ...[]byte) error {
	if err := w.usable(); err != nil {
		return err
	}
	// Own copies: the caller may reuse its slices after we return.
	t.Shape = slices.Clone(t.Shape)
	t.Parts = slices.Clone(t.Parts)
	for i := range t.Parts {
		t.Parts[i].Shape = slices.Clone(t.Parts[i].Shape)
	}
	if t.Metrics != nil {
		m := *t.Metrics
		t.Metrics = &m
	}
	sizes, perr := checkTensorLayout(&t)
	if perr != nil {
		e := *perr
		e.Path = w.path
		if e.Class == ErrCorrupt {
			e.Class = ErrInvalid
		}
		return &e
	}
	invalid := func(part Role, msg string) error {
		return &Error{Path: w.path, Tensor: t.Name, Part: part, Class: ErrInvalid, Msg: msg}
	}
	if w.names[t.Name] {
		return invalid("", "duplicate tensor name")
	}
	if len(data) != len(t.Parts) {
		return invalid("", fmt.Sprintf("%d parts but %d data slices", len(t.Parts), len(data)))
	}
	for i := range t.Parts {
		if uint64(len(data[i])) != sizes[i] {
			p := &t.Parts[i]
			return invalid(p.Role, fmt.Sprintf("%d bytes, but encoding %v of shape %v takes %d", len(data[i]), p.Encoding, p.Shape, sizes[i]))
		}
	}
	for i := range t.Parts {
		off, err := w.place(data[i])
		if err != nil {
			return err
		}
		p := &t.Parts[i]
		p.Offset, p.Length = off, sizes[i]
		p.CRC32C = crc32.Checksum(data[i], castagnoli)
	}
	w.tensors = append(w.tensors, t)
	w.names[t.Name] = true
	return nil
}

// Commit completes the file: h.Version, h.Blobs and h.Tensors are replaced
// by what was written, the header is validated exactly as a reader would,
// written after the data, the preamble is filled in, and the file is synced
// and renamed to its final path (whose directory is then synced). On any
// error the temporary file is removed.
func (w *Writer) Commit(h Header) error {
	if err := w.usable(); err != nil {
		return err
	}
	// I/O failures carry no class: they say nothing about the content.
	fail := func(class error, msg string, err error) error {
		return w.fail(&Error{Path: w.path, Class: class, Msg: msg, Err: err})
	}
	if err := w.pad(); err != nil {
		return err
	}
	headerOff := w.pos
	h.Version = Version
	h.Blobs = slices.Clip(w.blobs)
	h.Tensors = slices.Clip(w.tensors)
	if h.Blobs == nil {
		h.Blobs = []Blob{}
	}
	if h.Tensors == nil {
		h.Tensors = []Tensor{}
	}
	if perr := validateHeader(&h, headerOff); perr != nil {
		e := *perr
		e.Path = w.path
		if e.Class == ErrCorrupt {
			e.Class = ErrInvalid
		}
		return w.fail(&e)
	}
	js, err := json.Marshal(&h)
	if err != nil {
		return fail(ErrInvalid, "encode header", err)
	}
	if len(js) > MaxHeaderSize {
		return fail(ErrInvalid, fmt.Sprintf("header is %d bytes, over the %d-byte limit", len(js), MaxHeaderSize), nil)
	}
	if err := w.write(js); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return fail(nil, "write "+w.tmpName, err)
	}
	if w.prealloc {
		if err := w.tmp.Truncate(int64(w.pos)); err != nil {
			return fail(nil, "truncate "+w.tmpName, err)
		}
	}
	pre := preamble{version: Version, headerOff: headerOff, headerLen: uint64(len(js)), headerCRC: Checksum(js)}
	if _, err := w.tmp.WriteAt(pre.marshal(), 0); err != nil {
		return fail(nil, "write preamble", err)
	}
	if err := w.tmp.Sync(); err != nil {
		return fail(nil, "sync", err)
	}
	if err := w.tmp.Close(); err != nil {
		return fail(nil, "close", err)
	}
	// createTemp made the file private (0600); the result is an ordinary
	// output file, readable like any other the user writes.
	if err := os.Chmod(w.tmpName, 0o644); err != nil {
		return fail(nil, "chmod "+w.tmpName, err)
	}
	if err := os.Rename(w.tmpName, w.path); err != nil {
		return fail(nil, "rename into place", err)
	}
	w.done = true
	w.release()
	// The data is durable; a failed directory sync only risks the rename
	// itself, which the caller should hear about.
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return &Error{Path: w.path, Msg: "sync directory", Err: err}
	}
	return nil
}

// Abort discards the file. It is a no-op after Commit or a previous Abort,
// so callers can always defer it.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.release()
	if w.err != nil {
		return nil // temp file already removed
	}
	w.tmp.Close()
	if err := os.Remove(w.tmpName); err != nil && !errors.Is(err, os.ErrNotExist) {
		return &Error{Path: w.path, Msg: "remove temporary file", Err: err}
	}
	return nil
}

func (w *Writer) release() {
	if w.zenc != nil {
		w.zenc.Close()
		w.zenc = nil
	}
	w.bw = nil
}
