package main

import (
	"path/filepath"
	"testing"
)

func TestConvertRounding(t *testing.T) {
	dir := t.TempDir()
	calib := writeCalib(t)
	out := filepath.Join(dir, "x.shrink")
	tests := []convertCase{
		{"gptq without calib", []string{"--quant", "q4", "--rounding", "gptq"}, exitUsage, "--rounding gptq needs calibration"},
		{"unknown rounding", []string{"--quant", "q4", "--rounding", "best"}, exitUsage, "want rtn or gptq"},
		{"gptq q8", []string{"--quant", "q8", "--rounding", "gptq", "--calib", calib, "--calib-tokens", "256"}, 0, ""},
	}
	convertCases(t, out, tests)
}
