package textdata

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxDocumentBytes bounds one document of a streamed text: the text is read
// a document at a time, so this (not the file size) is the most text held
// in memory. A file without separator lines is one document.
const MaxDocumentBytes = 64 << 20

// ErrStop, returned by a ScanDocuments callback, ends the scan early
// without an error.
var ErrStop = errors.New("stop scanning")

// ScanDocuments reads r a line at a time and calls fn with each document,
// exactly as SplitDocuments would cut the whole text (documents are split at
// lines equal to sep after trimming spaces, trimmed, empty ones dropped; an
// empty sep makes the whole text one document), without holding more than
// one document in memory. A document over MaxDocumentBytes is an error.
func ScanDocuments(r io.Reader, sep string, fn func(doc string) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var cur strings.Builder
	flush := func() error {
		d := strings.TrimSpace(cur.String())
		cur.Reset()
		if d == "" {
			return nil
		}
		return fn(d)
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return err
		}
		if cur.Len()+len(line) > MaxDocumentBytes {
			return fmt.Errorf("a document is longer than %d MiB; split the text with separator lines", MaxDocumentBytes>>20)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			// Part of a long line: keep it and read on (the separator test
			// below only concerns whole lines, which are short).
			cur.Write(line)
			continue
		}
		if len(line) > 0 && sep == "" {
			cur.Write(line)
		} else if len(line) > 0 {
			body := strings.TrimSuffix(string(line), "\n")
			body = strings.TrimSuffix(body, "\r")
			// A long line was partly written already; it is then no
			// separator, so only a line read whole is compared.
			if sep != "" && strings.TrimSpace(body) == sep && !endsPartial(&cur) {
				if ferr := flush(); ferr != nil {
					return stopped(ferr)
				}
			} else {
				cur.WriteString(body)
				cur.WriteByte('\n')
			}
		}
		if err != nil { // io.EOF
			break
		}
	}
	return stopped(flush())
}

// endsPartial reports whether cur ends inside a line (a long line written
// in pieces), in which case the next piece continues it.
func endsPartial(cur *strings.Builder) bool {
	s := cur.String()
	return len(s) > 0 && s[len(s)-1] != '\n'
}

func stopped(err error) error {
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}
