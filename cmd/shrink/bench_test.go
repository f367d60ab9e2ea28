package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// benchDemo converts the built-in demo model once per test.
func benchDemo(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "m.shrink")
	if code, _, stderr := shrink(t, "convert", demoModel, "-o", out, "--quant", "q8"); code != 0 {
		t.Fatalf("convert exit %d: %s", code, stderr)
	}
	return out
}

func TestBenchTable(t *testing.T) {
	m := benchDemo(t)
	code, stdout, stderr := shrink(t, "bench", m, "--pp", "8", "--tg", "4", "--reps", "1", "--threads", "1,2", "--bw-mib", "64")
	if code != 0 {
		t.Fatalf("bench exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("want a header and 4 rows (pp, tg × 2 thread counts), got:\n%s", stdout)
	}
	for _, col := range []string{"model", "size", "params", "type", "threads", "test", "t/s", "weights/token", "mem GB/s", "roofline"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header lacks %q: %s", col, lines[0])
		}
	}
	for i, want := range []string{"pp8", "tg4", "pp8", "tg4"} {
		cells := strings.Split(lines[i+1], "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if len(cells) < 10 || cells[5] != want || !strings.Contains(cells[3], "q8") {
			t.Errorf("row %d: want test %s and a q8 type, got %q", i+1, want, lines[i+1])
			continue
		}
		if wantThreads := []string{"1", "1", "2", "2"}[i]; cells[4] != wantThreads {
			t.Errorf("row %d: threads %s, want %s", i+1, cells[4], wantThreads)
		}
		if want == "tg4" && (cells[8] == "-" || !strings.HasSuffix(cells[9], "%")) {
			t.Errorf("row %d: decode row lacks bandwidth or roofline: %q", i+1, lines[i+1])
		}
	}
}

func TestBenchJSON(t *testing.T) {
	m := benchDemo(t)
	var rs []benchResult
	shrinkJSON(t, &rs, "bench", m, "--pp", "8", "--tg", "4", "--reps", "2", "-t", "1", "--bw-mib", "64", "--json")
	if len(rs) != 2 || rs[0].Test != "pp8" || rs[1].Test != "tg4" {
		t.Fatalf("results: %+v", rs)
	}
	for _, r := range rs {
		if len(r.Samples) != 2 || !(r.TokS > 0) || r.Params == 0 || r.Threads != 1 {
			t.Errorf("%s: %+v", r.Test, r)
		}
	}
	tg := rs[1]
	if tg.BytesPerToken <= 0 || !(tg.Bandwidth > 0) || !(tg.Roofline > 0) {
		t.Errorf("decode row lacks bytes/token, bandwidth or roofline: %+v", tg)
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no file", []string{"bench"}, exitUsage},
		{"bad threads", []string{"bench", "x.shrink", "--threads", "0"}, exitUsage},
		{"bad threads list", []string{"bench", "x.shrink", "--threads", "1,two"}, exitUsage},
		{"no tests", []string{"bench", "x.shrink", "--pp", "0", "--tg", "0"}, exitUsage},
		{"no reps", []string{"bench", "x.shrink", "--reps", "0"}, exitUsage},
		{"missing file", []string{"bench", filepath.Join("no", "such.shrink")}, exitFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := shrink(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
		})
	}
}

func TestParseThreads(t *testing.T) {
	tests := []struct {
		in   []string
		want []int
	}{
		{[]string{"1,2"}, []int{1, 2}},
		{[]string{"1", "4"}, []int{1, 4}},
		{[]string{" 2 , 3", "1"}, []int{2, 3, 1}},
	}
	for _, tc := range tests {
		got, err := parseThreads(tc.in)
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %v, %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}
