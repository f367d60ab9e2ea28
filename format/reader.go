package format

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/shrink-llm/shrink/quant"

	"github.com/shrink-llm/shrink/internal/safeio"
)

// OpenOptions tunes Open and Parse.
type OpenOptions struct {
	// SkipVerify skips recomputing the CRC-32C of every part and blob at
	// open. Structural validation always runs; call File.Verify later to
	// check the data.
	SkipVerify bool
}

// File is an open, validated .shrink file. Its part data is a read-only
// memory mapping (or an in-memory copy where mmap is unavailable); slices
// returned by PartData stay valid until Close. A File is safe for
// concurrent use by readers; Close must not race with other calls.
type File struct {
	path    string
	data    []byte
	header  Header
	tensors map[string]int
	blobs   map[string]int
	release func() error // unmaps; nil for Parse images
}

// Open maps and validates the file at path, including every checksum.
func Open(path string) (*File, error) { return OpenWithOptions(path, OpenOptions{}) }

// OpenWithOptions maps and validates the file at path.
func OpenWithOptions(path string, opts OpenOptions) (*File, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, &Error{Path: path, Msg: "open", Err: err}
	}
	f, err := parse(path, data, opts)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, err
	}
	f.release = release
	if release != nil && !opts.SkipVerify {
		// Verification touched every page of the mapping; drop them from
		// this process (they stay in the page cache, so touching them again
		// is a cheap minor fault). Resident memory then shows what the user
		// actually reads — only the embedding rows of the tokens seen, say —
		// rather than the whole file.
		dropPages(data)
	}
	return f, nil
}

// Parse validates an in-memory image of a .shrink file, checksums included.
// The File refers to data (no copy); data must not change while it is used.
func Parse(data []byte) (*File, error) {
	return ParseWithOptions("(memory)", data, OpenOptions{})
}

// ParseWithOptions is Parse with a name for error messages and options.
func ParseWithOptions(name string, data []byte, opts OpenOptions) (*File, error) {
	return parse(name, data, opts)
}

func parse(path string, data []byte, opts OpenOptions) (*File, error) {
	pre, perr := parsePreamble(data)
	if perr != nil {
		return nil, at(path, perr)
	}
	hdr := data[pre.headerOff : pre.headerOff+pre.headerLen]
	if got := Checksum(hdr); got != pre.headerCRC {
		return nil, &Error{Path: path, Class: ErrChecksum, Msg: fmt.Sprintf("header checksum mismatch (stored %#08x, computed %#08x)", pre.headerCRC, got)}
	}
	f := &File{path: path, data: data}
	if perr := decodeHeader(hdr, &f.header); perr != nil {
		return nil, at(path, perr)
	}
	if perr := validateHeader(&f.header, pre.headerOff); perr != nil {
		return nil, at(path, perr)
	}
	f.tensors = make(map[string]int, len(f.header.Tensors))
	for i := range f.header.Tensors {
		f.tensors[f.header.Tensors[i].Name] = i
	}
	f.blobs = make(map[string]int, len(f.header.Blobs))
	for i := range f.header.Blobs {
		f.blobs[f.header.Blobs[i].Name] = i
	}
	if !opts.SkipVerify {
		if err := f.Verify(context.Background()); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// decodeHeader decodes the JSON header. Unknown fields are ignored (SPEC.md
// §3: they may only carry information a reader can do without); wrong
// types, trailing data and non-object documents are errors.
func decodeHeader(b []byte, h *Header) *Error {
	if !utf8.Valid(b) {
		return problem(ErrCorrupt, "header is not valid UTF-8")
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return problem(ErrCorrupt, "header is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(h); err != nil {
		if perr := locateEncodingError(b); perr != nil {
			return perr
		}
		return &Error{Class: ErrCorrupt, Msg: "header JSON", Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem(ErrCorrupt, "header JSON: data after the top-level object")
	}
	return nil
}

// locateEncodingError finds the part whose encoding name this reader does
// not know, so the error names the tensor instead of only quoting the JSON
// decoder.
func locateEncodingError(b []byte) *Error {
	var loose struct {
		Tensors []struct {
			Name  string `json:"name"`
			Parts []struct {
				Role     Role   `json:"role"`
				Encoding string `json:"encoding"`
			} `json:"parts"`
		} `json:"tensors"`
	}
	if json.Unmarshal(b, &loose) != nil {
		return nil
	}
	for _, t := range loose.Tensors {
		for _, p := range t.Parts {
			if _, err := quant.Parse(p.Encoding); err != nil {
				return &Error{Class: ErrUnsupported, Tensor: t.Name, Part: p.Role, Err: err}
			}
		}
	}
	return nil
}

// Header is the decoded header. It is shared: do not modify it.
func (f *File) Header() *Header { return &f.header }

// Config is the model configuration.
func (f *File) Config() ModelConfig { return f.header.Config }

// Tensors lists the tensors in file order. The slice is shared: do not
// modify it.
func (f *File) Tensors() []Tensor { return f.header.Tensors }

// Tensor finds a tensor by name. The result is shared: do not modify it.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.tensors[name]
	if !ok {
		return nil, false
	}
	return &f.header.Tensors[i], true
}

// PartData is the encoded bytes of a part of this file: a read-only slice
// of the mapping, 64-byte aligned in memory when the file is mmapped (or
// opened through the in-memory fallback). Writing to it faults. It returns
// nil for a part whose range is not inside this file's data section.
func (f *File) PartData(p *Part) []byte {
	return f.span(p.Offset, p.Length)
}

func (f *File) span(off, length uint64) []byte {
	size := uint64(len(f.data))
	if off > size || length > size-off {
		return nil
	}
	return f.data[off : off+length : off+length]
}

// HasBlob reports whether the file has a blob of that name.
func (f *File) HasBlob(name string) bool {
	_, ok := f.blobs[name]
	return ok
}

// Blob returns a fresh copy of a blob's content, checksum verified and
// decompressed.
func (f *File) Blob(name string) ([]byte, error) {
	i, ok := f.blobs[name]
	if !ok {
		return nil, &Error{Path: f.path, Blob: name, Class: ErrInvalid, Msg: "no such blob"}
	}
	b := &f.header.Blobs[i]
	stored := f.span(b.Offset, b.Length)
	if got := Checksum(stored); got != b.CRC32C {
		return nil, &Error{Path: f.path, Blob: name, Class: ErrChecksum, Msg: fmt.Sprintf("checksum mismatch (stored %#08x, computed %#08x)", b.CRC32C, got)}
	}
	switch b.Compression {
	case CompressionNone:
		return bytes.Clone(stored), nil
	case CompressionZstd:
		out, err := unzstd(stored, b.RawLength)
		if err != nil {
			return nil, &Error{Path: f.path, Blob: name, Class: ErrCorrupt, Msg: "zstd", Err: err}
		}
		return out, nil
	}
	// validateHeader rejects other compressions.
	return nil, &Error{Path: f.path, Blob: name, Class: ErrUnsupported, Msg: fmt.Sprintf("unknown compression %q", b.Compression)}
}

// unzstd decompresses exactly raw bytes. Output is bounded by
// max(raw, 8 MiB), and raw by MaxBlobRawSize, so a hostile frame cannot
// exhaust memory; nothing is preallocated from the claimed raw_length. The
// 8 MiB floor admits frames from encoders that declare a window larger than
// the content.
func unzstd(src []byte, raw uint64) ([]byte, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(max(raw, 8<<20)))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(src, nil)
	if err != nil {
		return nil, err
	}
	if uint64(len(out)) != raw {
		return nil, fmt.Errorf("decompressed to %d bytes, raw_length is %d", len(out), raw)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// verifyChunk bounds the work between context checks.
const verifyChunk = 16 << 20

// Verify recomputes the CRC-32C of every part and blob. The error names the
// first tensor part or blob whose bytes do not match.
func (f *File) Verify(ctx context.Context) error {
	check := func(off, length uint64, want uint32, mk func(msg string) *Error) error {
		data := f.span(off, length)
		var crc uint32
		for len(data) > 0 {
			if err := ctx.Err(); err != nil {
				return &Error{Path: f.path, Msg: "verify", Err: err}
			}
			n := min(len(data), verifyChunk)
			crc = crcUpdate(crc, data[:n])
			data = data[n:]
		}
		if crc != want {
			e := mk(fmt.Sprintf("checksum mismatch (stored %#08x, computed %#08x)", want, crc))
			e.Path, e.Class = f.path, ErrChecksum
			return e
		}
		return nil
	}
	for i := range f.header.Tensors {
		t := &f.header.Tensors[i]
		for j := range t.Parts {
			p := &t.Parts[j]
			err := check(p.Offset, p.Length, p.CRC32C, func(msg string) *Error {
				return tensorProblem(ErrChecksum, t.Name, p.Role, msg)
			})
			if err != nil {
				return err
			}
		}
	}
	for i := range f.header.Blobs {
		b := &f.header.Blobs[i]
		err := check(b.Offset, b.Length, b.CRC32C, func(msg string) *Error {
			return blobProblem(ErrChecksum, b.Name, msg)
		})
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Size is the file size in bytes.
func (f *File) Size() int64 { return int64(len(f.data)) }

// Path is the file name given to Open (or to ParseWithOptions).
func (f *File) Path() string { return f.path }

// Close releases the mapping. Slices from PartData must not be used after.
// Closing twice is harmless.
func (f *File) Close() error {
	rel := f.release
	f.release = nil
	f.data = nil
	if rel == nil {
		return nil
	}
	if err := rel(); err != nil {
		return &Error{Path: f.path, Msg: "unmap", Err: err}
	}
	return nil
}

// readAligned reads a whole file into a 64-byte aligned buffer, for
// platforms without mmap and for files too small to map.
func readAligned(path string) ([]byte, error) {
	fh, size, err := safeio.OpenSized(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if size < 0 || uint64(size) > uint64(maxInt-Alignment) {
		return nil, errors.New("file too large for memory")
	}
	buf := make([]byte, int(size)+Alignment)
	shift := int(alignUp(uint64(addrOf(buf))) - uint64(addrOf(buf)))
	buf = buf[shift : shift+int(size) : shift+int(size)]
	if _, err := io.ReadFull(fh, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

const maxInt = int(^uint(0) >> 1)

// DropPages releases this process's mapping of the pages that lie wholly
// inside b, part data the caller has copied into a form of its own and will
// seldom read again (the runtime's repacked q8 matrices): resident memory
// then counts the copy only. The pages stay in the page cache and fault
// back in when read. Nothing happens for Parse images or bytes outside the
// mapping.
func (f *File) DropPages(b []byte) {
	if f.release == nil || len(b) == 0 || len(f.data) == 0 {
		return
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p+uintptr(len(b)) > base+uintptr(len(f.data)) {
		return
	}
	ps := uintptr(os.Getpagesize())
	lo, hi := (p+ps-1)&^(ps-1), (p+uintptr(len(b)))&^(ps-1)
	if hi <= lo {
		return
	}
	dropPages(f.data[lo-base : hi-base])
}
