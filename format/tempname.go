package format

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// Temporary files are named ".BASE.tmp-PID-RAND" beside the output: the
// dot hides them, BASE says what they were to become, and PID lets the next
// writer into the folder tell a leftover of a killed process (SIGKILL, a
// crash, a power cut) from the work of a live one, and remove it.

// maxNameBytes is NAME_MAX on Linux and the BSDs: the longest file name.
const maxNameBytes = 255

// tempRe matches the names createTemp makes and captures the pid.
var tempRe = regexp.MustCompile(`^\..*\.tmp-([0-9]+)-[0-9a-z]{8}$`)

// tempName is the temporary name for base written by process pid: BASE is
// cut (at a character boundary) so the whole name stays within NAME_MAX
// whenever base itself does.
func tempName(base string, pid int, rnd string) string {
	suffix := fmt.Sprintf(".tmp-%d-%s", pid, rnd)
	room := maxNameBytes - 1 - len(suffix)
	if len(base) > room {
		base = base[:room]
		for !utf8.ValidString(base) {
			base = base[:len(base)-1]
		}
	}
	return "." + base + suffix
}

func randomSuffix() string {
	const letters = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 8)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// createTemp creates a new temporary file for path in its directory.
func createTemp(dir, base string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, tempName(base, os.Getpid(), randomSuffix()))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, errors.New("no unused temporary file name")
}

// MkdirTemp creates a scratch directory in dir named like the writer's
// temporary files (".BASE.tmp-PID-RAND"), after removing the leftovers of
// dead processes there, so that a scratch directory of a killed process is
// cleaned up by the next one just as a temporary file is. The caller
// removes it when done.
func MkdirTemp(dir, base string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	removeStale(dir)
	for range 100 {
		name := filepath.Join(dir, tempName(base, os.Getpid(), randomSuffix()))
		err := os.Mkdir(name, 0o700)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return name, err
	}
	return "", errors.New("no unused temporary directory name")
}

// removeStale deletes the temporary files in dir left by processes that no
// longer run. It is best effort: a file it cannot inspect or remove stays.
func removeStale(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		m := tempRe.FindStringSubmatch(e.Name())
		if m == nil || !(e.Type().IsRegular() || e.IsDir()) {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == self || pid <= 0 || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
