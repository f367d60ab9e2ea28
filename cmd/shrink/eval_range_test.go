package main

import (
	"encoding/json"
	"testing"

	"github.com/shrink-llm/shrink/eval"
)

// TestEvalChunkRangeAndExact: --chunk-range scores exactly the chunks it
// names (chunk 1 alone equals the second of --chunks 2), --exact marks the
// report and changes a packed model's figures (int8 activations are gone),
// several --model values give one report each, and the projection bits are
// reported.
func TestEvalChunkRangeAndExact(t *testing.T) {
	text := storyFile(t)
	q4 := convertDemo(t, demoModel, "q4")
	run := func(args ...string) []eval.Report {
		t.Helper()
		code, stdout, stderr := shrink(t, append([]string{"eval", "--ref", demoModel, "--text", text, "--ctx", "64", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var reps []eval.Report
		if err := json.Unmarshal([]byte(stdout), &reps); err != nil {
			var one eval.Report
			if err := json.Unmarshal([]byte(stdout), &one); err != nil {
				t.Fatalf("JSON: %v\n%s", err, stdout)
			}
			reps = []eval.Report{one}
		}
		return reps
	}
	both := run("-m", q4, "--chunks", "2")[0]
	second := run("-m", q4, "--chunk-range", "1-1")[0]
	if second.Chunks != 1 || second.FirstChunk != 1 || len(second.ChunkNLL) != 1 || second.ChunkNLL[0] != both.ChunkNLL[1] {
		t.Errorf("chunk 1 alone: %d chunks from %d, NLL %v; --chunks 2 gave %v", second.Chunks, second.FirstChunk, second.ChunkNLL, both.ChunkNLL)
	}
	if b := both.Model.ProjectionBits; b < 4.4 || b > 4.7 {
		t.Errorf("q4 projection bits/weight %v, want about 4.5", b)
	}
	exact := run("-m", q4, "--chunks", "2", "--exact")[0]
	if !exact.Exact || both.Exact || exact.Summary.KLD.Value == both.Summary.KLD.Value {
		t.Errorf("--exact: flag %v/%v, KLD %v (default path %v)", exact.Exact, both.Exact, exact.Summary.KLD.Value, both.Summary.KLD.Value)
	}
	many := run("-m", q4, "-m", demoModel, "--chunks", "2")
	if len(many) != 2 || many[0].Summary.KLD.Value != both.Summary.KLD.Value || many[1].Summary.KLD.Value != 0 {
		t.Errorf("two candidates: %d reports", len(many))
	}
}

func TestEvalChunkRangeBad(t *testing.T) {
	text := storyFile(t)
	with := argsWith("eval", "--ref", demoModel, "--model", demoModel, "--text", text, "--ctx", "64")
	checkCLIErrors(t, []cliCase{
		{"reversed", with("--chunk-range", "3-1"), exitUsage, "--chunk-range"},
		{"negative", with("--chunk-range", "-1-2"), exitUsage, "--chunk-range"},
		{"not a number", with("--chunk-range", "a-b"), exitUsage, "--chunk-range"},
		{"with --chunks", with("--chunk-range", "0-1", "--chunks", "2"), exitUsage, "exclude each other"},
		{"past the end", with("--chunk-range", "400-463"), exitFail, "past the last one"},
	})
}

func TestRunExact(t *testing.T) {
	q4 := convertDemo(t, demoModel, "q4")
	code, stdout, stderr := shrink(t, "run", q4, "-p", "Once upon a time", "-n", "8", "--exact", "-t", "1")
	if code != 0 || len(stdout) < len("Once upon a time") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
}
