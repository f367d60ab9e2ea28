package convert

import (
	"fmt"
	"strings"
)

// parseChoice reads a value of one of the package's named string options
// (Rounding, CalibPass, Sensitivity): "" is def when def is not empty;
// anything other than a choice is an error naming what was being read and
// listing the choices.
func parseChoice[T ~string](what, s string, def T, choices ...T) (T, error) {
	if s == "" && def != "" {
		return def, nil
	}
	for _, c := range choices {
		if string(c) == s {
			return c, nil
		}
	}
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i] = string(c)
	}
	list := names[0]
	if n := len(names); n > 1 {
		list = strings.Join(names[:n-1], ", ") + " or " + names[n-1]
	}
	return "", fmt.Errorf("unknown %s %q (want %s)", what, s, list)
}
