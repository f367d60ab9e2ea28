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
		{"asym without gptq", with("--quant", "q4", "--gptq-asym", "0.25", "--calib", calib, "--calib-tokens", "256"), exitUsage, "--gptq-asym 0.25 needs --rounding gptq"},
		{"asym with the model pass", with("--quant", "q4", "--rounding", "gptq", "--gptq-asym", "0.25", "--calib-pass", "model", "--calib", calib, "--calib-tokens", "256"), exitUsage, "layer-by-layer --calib-pass"},
		{"asym with the planner", with("--target-bpw", "4.5", "--rounding", "gptq", "--gptq-asym", "0.25", "--calib", calib, "--calib-tokens", "256"), exitUsage, "need the layer-by-layer pass"},
		{"unknown calib pass", with("--quant", "q4", "--calib-pass", "both", "--calib", calib), exitUsage, "want layer, sequential or model"},
		{"gptq q4s asymmetric sequential", with("--quant", "q4s", "--rounding", "gptq", "--gptq-asym", "0.25", "--calib-pass", "sequential", "--calib", calib, "--calib-tokens", "256"), 0, ""},
	})
}
