package convert

import "testing"

// TestParseChoices: each named option reads its values, "" as its default
// (none for the sensitivity), and refuses anything else with the list of
// its values.
func TestParseChoices(t *testing.T) {
	parse := map[string]func(string) (string, error){
		"rounding": func(s string) (string, error) { v, err := ParseRounding(s); return string(v), err },
		"pass":     func(s string) (string, error) { v, err := ParseCalibPass(s); return string(v), err },
		"sens":     func(s string) (string, error) { v, err := ParseSensitivity(s); return string(v), err },
	}
	for _, tc := range []struct {
		opt, in, want, err string
	}{
		{"rounding", "", "rtn", ""},
		{"rounding", "rtn", "rtn", ""},
		{"rounding", "gptq", "gptq", ""},
		{"rounding", "GPTQ", "", `unknown rounding "GPTQ" (want rtn or gptq)`},
		{"pass", "", "layer", ""},
		{"pass", "sequential", "sequential", ""},
		{"pass", "model", "model", ""},
		{"pass", "both", "", `unknown calibration pass "both" (want layer, sequential or model)`},
		{"sens", "kl", "kl", ""},
		{"sens", "output-error", "output-error", ""},
		{"sens", "", "", `unknown sensitivity "" (want kl or output-error)`},
		{"sens", "mse", "", `unknown sensitivity "mse" (want kl or output-error)`},
	} {
		got, err := parse[tc.opt](tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("%s %q = %q, %v; want %q, %q", tc.opt, tc.in, got, err, tc.want, tc.err)
		}
	}
}
