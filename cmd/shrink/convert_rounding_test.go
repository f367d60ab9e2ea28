package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestConvertRounding(t *testing.T) {
	dir := t.TempDir()
	calib := writeCalib(t)
	out := filepath.Join(dir, "x.shrink")
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"gptq without calib", []string{"--quant", "q4", "--rounding", "gptq"}, exitUsage, "--rounding gptq needs calibration"},
		{"unknown rounding", []string{"--quant", "q4", "--rounding", "best"}, exitUsage, "want rtn or gptq"},
		{"gptq q8", []string{"--quant", "q8", "--rounding", "gptq", "--calib", calib, "--calib-tokens", "256"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := shrink(t, append([]string{"convert", demoModel, "-o", out}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.wantErr)
			}
		})
	}
}
