package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// cpuProfileFlag writes a CPU profile of the command to FILE (for
// `go tool pprof`), to see where a long conversion spends its time.
var cpuProfileFlag = &cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the conversion to `FILE` (go tool pprof)"}

// startCPUProfile starts profiling when --cpuprofile is set; the returned
// stop writes the profile.
func startCPUProfile(c *cli.Context) (stop func() error, err error) {
	name := c.String(cpuProfileFlag.Name)
	if name == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", name, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
