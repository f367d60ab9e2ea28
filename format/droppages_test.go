package format

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDropPages: dropping the pages of part data (and of bytes outside the
// file) leaves every byte readable and unchanged, for a mapped file (the
// pages fault back in from the page cache) and for a Parse image, whose heap
// bytes DropPages must never touch (MADV_DONTNEED would zero them).
func TestDropPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.shrink")
	newFixture(t).write(t, path)
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	parsed, err := Parse(append([]byte(nil), img...))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*File{mapped, parsed} {
		before := map[string][][]byte{}
		for _, tn := range f.Tensors() {
			for i := range tn.Parts {
				before[tn.Name] = append(before[tn.Name], append([]byte(nil), f.PartData(&tn.Parts[i])...))
			}
		}
		outside := bytes.Repeat([]byte{7}, 3*os.Getpagesize())
		f.DropPages(outside)
		f.DropPages(f.data)
		for _, tn := range f.Tensors() {
			for i := range tn.Parts {
				d := f.PartData(&tn.Parts[i])
				f.DropPages(d)
				if !bytes.Equal(d, before[tn.Name][i]) {
					t.Fatalf("%s part %d changed after DropPages", tn.Name, i)
				}
			}
		}
		if !bytes.Equal(outside, bytes.Repeat([]byte{7}, 3*os.Getpagesize())) {
			t.Fatal("DropPages changed bytes outside the file")
		}
		if !bytes.Equal(f.data, img) {
			t.Fatal("file image changed after DropPages")
		}
	}
}
