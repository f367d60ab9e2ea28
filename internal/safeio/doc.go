// Package safeio opens the files shrink is given by a user with the checks
// an untrusted path needs: only regular files are read (a named pipe would
// block forever, a device such as /dev/zero never ends), and side files
// read whole (JSON configs, tokenizers, indexes) are capped in size before
// any of them is read into memory. Symbolic links are followed, so a link
// to /dev/zero is refused like /dev/zero itself.
package safeio
