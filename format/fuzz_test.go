package format

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	img := tinyImage(f)
	for _, b := range seedMutations(f, img) {
		f.Add(b)
	}
	f.Add(newFixture(f).image(f))
	f.Add([]byte(Magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data, OpenOptions{})
		// Random bytes almost never match the header CRC; fixing it lets the
		// fuzzer reach the JSON and layout checks behind it.
		if fixed := fixHeaderCRC(data); fixed != nil {
			checkParse(t, fixed, OpenOptions{SkipVerify: true})
		}
	})
}

func fixHeaderCRC(data []byte) []byte {
	if len(data) < PreambleSize {
		return nil
	}
	off := binary.LittleEndian.Uint64(data[16:])
	n := binary.LittleEndian.Uint64(data[24:])
	size := uint64(len(data))
	if off > size || n > size-off {
		return nil
	}
	fixed := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(fixed[32:], Checksum(fixed[off:off+n]))
	return fixed
}

// checkParse parses data and, if it is accepted, re-checks the file's
// invariants independently of the validator.
func checkParse(t *testing.T, data []byte, opts OpenOptions) {
	f, err := ParseWithOptions("fuzz.shrink", data, opts)
	if err != nil {
		var fe *Error
		if !errors.As(err, &fe) || fe.Class == nil {
			t.Fatalf("unclassified error %T: %v", err, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "fuzz.shrink: ") || strings.Contains(msg, "\n") {
			t.Fatalf("error not one line naming the file: %q", msg)
		}
		return
	}
	defer f.Close()

	size := uint64(len(data))
	hdrOff := binary.LittleEndian.Uint64(data[16:])
	hdrLen := binary.LittleEndian.Uint64(data[24:])
	if hdrOff < PreambleSize || hdrOff > size || hdrOff+hdrLen != size || f.Size() != int64(size) {
		t.Fatalf("accepted header [%d, +%d) in a %d-byte file", hdrOff, hdrLen, size)
	}
	type span struct {
		off, end uint64
		what     string
	}
	var spans []span
	inData := func(off, n uint64, what string) {
		if off%Alignment != 0 || off < PreambleSize || off > hdrOff || n > hdrOff-off {
			t.Fatalf("%s: accepted range [%d, +%d) outside the data section [64, %d)", what, off, n, hdrOff)
		}
		if n > 0 {
			spans = append(spans, span{off, off + n, what})
		}
	}
	names := map[string]bool{}
	for i := range f.Tensors() {
		tn := &f.Tensors()[i]
		if tn.Name == "" || names[tn.Name] {
			t.Fatalf("accepted empty or duplicate tensor name %q", tn.Name)
		}
		names[tn.Name] = true
		if got, ok := f.Tensor(tn.Name); !ok || got != tn {
			t.Fatalf("Tensor(%q) lookup broken", tn.Name)
		}
		if _, ok := kindRoles[tn.Kind]; !ok {
			t.Fatalf("accepted kind %q", tn.Kind)
		}
		for j := range tn.Parts {
			p := &tn.Parts[j]
			rows, cols := rowsCols(p.Shape)
			n, err := p.Encoding.Size(rows, cols)
			if err != nil || uint64(n) != p.Length || rows <= 0 || cols <= 0 {
				t.Fatalf("tensor %q part %s: accepted length %d for %v %v (%d, %v)", tn.Name, p.Role, p.Length, p.Encoding, p.Shape, n, err)
			}
			inData(p.Offset, p.Length, tn.Name+"/"+string(p.Role))
			if d := f.PartData(p); uint64(len(d)) != p.Length {
				t.Fatalf("PartData has %d bytes, want %d", len(d), p.Length)
			}
		}
	}
	for _, b := range f.Header().Blobs {
		inData(b.Offset, b.Length, "blob "+b.Name)
		if !f.HasBlob(b.Name) {
			t.Fatalf("HasBlob(%q) = false", b.Name)
		}
		if raw, err := f.Blob(b.Name); err == nil && uint64(len(raw)) != b.RawLength {
			t.Fatalf("blob %q: %d bytes, raw_length %d", b.Name, len(raw), b.RawLength)
		}
	}
	for i := range spans {
		for j := range i {
			a, b := spans[i], spans[j]
			if a.off < b.end && b.off < a.end {
				t.Fatalf("accepted overlap of %s and %s", a.what, b.what)
			}
		}
	}
	verr := f.Verify(context.Background())
	if !opts.SkipVerify && verr != nil {
		t.Fatalf("Parse verified but Verify fails: %v", verr)
	}
	// What was accepted must survive a re-encode: the writer's path.
	js, err := json.Marshal(f.Header())
	if err != nil {
		t.Fatalf("accepted header does not re-encode: %v", err)
	}
	var h Header
	if perr := decodeHeader(js, &h); perr != nil {
		t.Fatalf("re-encoded header does not decode: %v", perr)
	}
	if perr := validateHeader(&h, hdrOff); perr != nil {
		t.Fatalf("re-encoded header does not validate: %v", perr)
	}
}
