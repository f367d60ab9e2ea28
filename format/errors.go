package format

import (
	"errors"
	"strconv"
	"strings"
)

// Error classes. Every validation error returned by this package wraps one
// of them, so callers can tell a damaged file from a newer one with
// errors.Is. I/O errors carry no class; they wrap the OS error instead.
var (
	// ErrNotShrink: the file does not start with the .shrink magic.
	ErrNotShrink = errors.New("not a .shrink file")
	// ErrUnsupported: a valid file that needs a newer reader (version, flag,
	// encoding, kind, role, compression or tokenizer kind it does not know).
	ErrUnsupported = errors.New("unsupported .shrink feature")
	// ErrCorrupt: the file is structurally inconsistent or truncated.
	ErrCorrupt = errors.New("corrupt .shrink file")
	// ErrChecksum: stored bytes do not match their CRC-32C. It is also
	// reported as ErrCorrupt.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrInvalid: the writer was given inconsistent input.
	ErrInvalid = errors.New("invalid .shrink content")
)

// Error describes one problem in one file, on one line:
//
//	model.shrink: tensor "blk.0.attn_q.weight" part w: data [1024, 2048) overlaps tensor "x" part a
type Error struct {
	Path   string // file as given to Open/Create, or a label for in-memory images
	Tensor string // tensor name, when the problem is in a tensor
	Part   Role   // part role, when the problem is in a part
	Blob   string // blob name, when the problem is in a blob
	Msg    string // what is wrong
	Class  error  // ErrNotShrink, ErrUnsupported, ErrCorrupt, ErrChecksum, ErrInvalid, or nil for I/O errors
	Err    error  // underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	b.WriteString(": ")
	switch {
	case e.Tensor != "" || e.Part != "":
		b.WriteString("tensor ")
		b.WriteString(strconv.Quote(e.Tensor))
		if e.Part != "" {
			b.WriteString(" part ")
			b.WriteString(string(e.Part))
		}
		b.WriteString(": ")
	case e.Blob != "":
		b.WriteString("blob ")
		b.WriteString(strconv.Quote(e.Blob))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		// Causes come from JSON, zstd and the OS; keep the report on one line.
		b.WriteString(strings.ReplaceAll(e.Err.Error(), "\n", " "))
	}
	return b.String()
}

// Unwrap exposes the class and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 3)
	if e.Class != nil {
		errs = append(errs, e.Class)
		if e.Class == ErrChecksum {
			errs = append(errs, ErrCorrupt)
		}
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// problem is an Error without the file name; validation code produces these
// and the reader or writer stamps its path on them.
func problem(class error, msg string) *Error { return &Error{Class: class, Msg: msg} }

func tensorProblem(class error, tensor string, part Role, msg string) *Error {
	return &Error{Class: class, Tensor: tensor, Part: part, Msg: msg}
}

func blobProblem(class error, blob, msg string) *Error {
	return &Error{Class: class, Blob: blob, Msg: msg}
}

// at stamps the file path on err, converting foreign errors into an *Error.
func at(path string, err error) error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		c := *fe
		c.Path = path
		return &c
	}
	return &Error{Path: path, Class: ErrCorrupt, Err: err}
}
