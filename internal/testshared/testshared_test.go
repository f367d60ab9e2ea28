package testshared

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingAsset runs TestHelperMissing in a child process, once as a
// developer would and once under CI: the missing asset must skip the first
// and fail the second.
func TestMissingAsset(t *testing.T) {
	for _, tt := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "SKIP: TestHelperMissing"},
		{"false", false, "SKIP: TestHelperMissing"},
		{"true", true, "CI=true and a shared test asset is missing"},
	} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMissing$", "-test.v")
			cmd.Env = append(os.Environ(), "SHRINK_TESTSHARED_HELPER=1", "CI="+tt.ci)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tt.wantFail || !strings.Contains(string(out), tt.want) {
				t.Fatalf("failed=%v (want %v), output lacks %q:\n%s", failed, tt.wantFail, tt.want, out)
			}
		})
	}
}

// TestHelperMissing asks for an asset no ../shared holds; it does nothing
// unless TestMissingAsset runs it.
func TestHelperMissing(t *testing.T) {
	if os.Getenv("SHRINK_TESTSHARED_HELPER") != "1" {
		return
	}
	Path(t, "no-such-folder", "no-such-file")
	t.Error("Path returned for a missing asset")
}
