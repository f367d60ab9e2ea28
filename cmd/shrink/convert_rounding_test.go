package main

import (
	"path/filepath"
	"testing"
)

func TestConvertRounding(t *testing.T) {
	calib := writeCalib(t)
	with := argsWith("convert", demoModel, "-o", filepath.Join(t.TempDir(), "x.shrink"))
	checkCLIErrors(t, []cliCase{
		{"gptq without calib", with("--quant", "q4", "--rounding", "gptq"), exitUsage, "--rounding gptq needs calibration"},
		{"unknown rounding", with("--quant", "q4", "--rounding", "best"), exitUsage, "want rtn or gptq"},
		{"gptq q8", with("--quant", "q8", "--rounding", "gptq", "--calib", calib, "--calib-tokens", "256"), 0, ""},
	})
}
