// Command _generate writes shrink's amd64 assembly with avo: the kernels of
// runtime/simd and lowrank's GEMM micro-kernels. Each kernel family is one Go
// function parameterized by what differs between its members (the weight
// encoding, the vector width), so the near-copies a hand-written file would
// hold are written once.
//
// Run it from this directory; it rewrites the files in place (CI runs it
// and fails on any diff):
//
//	go run .
//
// Registers are named, not allocated: the kernels were tuned with a fixed
// register plan (which accumulators, which scratch, which pointers) and the
// generator keeps that plan, so the instructions are those the benchmarks
// were measured with.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
)

// target is one generated file: its package, path below the repository root
// and the function that emits its kernels.
type target struct {
	pkgPath string // import path
	// load says to read the package's Go declarations (needed for kernels
	// whose argument is a pointer to one of its structs). Loading resolves
	// the package's imports in this module, so only runtime/simd, whose only
	// outside import is x/sys, is loaded.
	load bool
	file string // relative to the repository root
	emit func(g *gen)
}

var targets = []target{
	{"github.com/shrink-llm/shrink/runtime/simd", false, "runtime/simd/dot_amd64.s", emitFloatKernels},
	{"github.com/shrink-llm/shrink/runtime/simd", false, "runtime/simd/tile_amd64.s", emitFloatTiles},
	{"github.com/shrink-llm/shrink/runtime/simd", true, "runtime/simd/dotq8_amd64.s", emitQ8Kernels},
	{"github.com/shrink-llm/shrink/runtime/simd", false, "runtime/simd/act_amd64.s", emitActivations},
	{"github.com/shrink-llm/shrink/runtime/simd", true, "runtime/simd/packed_amd64.s", emitPacked},
	{"github.com/shrink-llm/shrink/runtime/simd", true, "runtime/simd/packedk_amd64.s", emitPackedK},
	{"github.com/shrink-llm/shrink/runtime/simd", true, "runtime/simd/interleaved_amd64.s", emitInterleaved},
	{"github.com/shrink-llm/shrink/lowrank", false, "lowrank/dgemm_amd64.s", emitDGEMM},
}

func main() {
	flag.Parse()
	for _, t := range targets {
		if err := generate("..", t); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", t.file, err)
			os.Exit(1)
		}
	}
}

func generate(root string, t target) error {
	g := &gen{Context: build.NewContext()}
	if t.load {
		g.Package(t.pkgPath)
	}
	g.ConstraintExpr("!noasm,gc")
	t.emit(g)
	out, err := os.Create(filepath.Join(root, t.file))
	if err != nil {
		return err
	}
	cfg := printer.Config{Argv: []string{"go", "run", ".", "in", "_generate"}, Pkg: filepath.Base(t.pkgPath)}
	code := build.Main(&build.Config{
		ErrOut:    os.Stderr,
		MaxErrors: 10,
		Passes: []pass.Interface{
			compile,
			&pass.Output{Writer: out, Printer: printer.NewGoAsm(cfg)},
		},
	}, g.Context)
	if code != 0 {
		return fmt.Errorf("avo failed")
	}
	return nil
}

// compile is avo's pass.Compile without its Verify pass, which rejects a
// memory operand without a base register: the row kernels compute four
// strides as LEAQ (R12*4), R13. Every register here is physical, so the
// allocation passes only check that.
var compile = func() pass.Interface {
	steps := []pass.Interface{}
	for _, f := range []func(*ir.Function) error{
		pass.PruneJumpToFollowingLabel, pass.PruneDanglingLabels, pass.LabelTarget, pass.CFG,
	} {
		steps = append(steps, pass.FunctionPass(f))
	}
	steps = append(steps, pass.InstructionPass(pass.ZeroExtend32BitOutputs))
	for _, f := range []func(*ir.Function) error{
		pass.Liveness, pass.AllocateRegisters, pass.BindRegisters, pass.VerifyAllocation, pass.EnsureBasePointerCalleeSaved,
	} {
		steps = append(steps, pass.FunctionPass(f))
	}
	steps = append(steps, pass.Func(pass.IncludeTextFlagHeader))
	for _, f := range []func(*ir.Function) error{pass.PruneSelfMoves, pass.RequiredISAExtensions} {
		steps = append(steps, pass.FunctionPass(f))
	}
	return pass.Concat(steps...)
}()
