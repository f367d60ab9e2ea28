package main

import (
	"errors"
	"fmt"
	"net"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/shrink-llm/shrink/runtime"
	"github.com/shrink-llm/shrink/serve"
	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve a .shrink model over an OpenAI-compatible HTTP API with batched decoding",
		ArgsUsage: "FILE.shrink",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "listen `ADDR` (loopback by default)"},
			&cli.IntFlag{Name: "parallel", Aliases: []string{"np"}, Value: 4, Usage: "`N` sequences generating at once (each with its own KV cache)"},
			&cli.IntFlag{Name: "queue", Usage: "`N` requests that may wait for a slot before 503 (default 4 × parallel)"},
			&cli.IntFlag{Name: "ctx", Usage: "tokens per sequence, prompt included (default: the model's context)"},
			threadsFlag(),
			&cli.IntFlag{Name: "max-kv-mib", Usage: "refuse --parallel × --ctx beyond `MiB` of KV cache (default: half the machine's memory)"},
			&cli.StringFlag{Name: "api-key", EnvVars: []string{"SHRINK_API_KEY"}, Usage: "require `KEY` as a bearer token"},
			&cli.BoolFlag{Name: "tiled-batch", Usage: "decode batches of f32/f16/bf16/low-bit weights with the register-tiled kernels too (faster at many streams; tokens may differ from `shrink run` on near-ties; q8 is tiled and exact either way)"},
			&cli.StringFlag{Name: "name", Usage: "model `ID` reported to clients (default: the file name)"},
		},
		Action: withPath("one .shrink file", func(c *cli.Context, path string) error {
			if c.Int("max-kv-mib") < 0 {
				return usagef("--max-kv-mib %d must not be negative", c.Int("max-kv-mib"))
			}
			m, err := runtime.Open(path, runtime.Options{Threads: c.Int("threads")})
			if err != nil {
				return err
			}
			defer m.Close()
			debug.FreeOSMemory()
			name := c.String("name")
			if name == "" {
				name = strings.TrimSuffix(filepath.Base(path), ".shrink")
			}
			srv, err := serve.New(m, serve.Config{ModelName: name, Parallel: c.Int("parallel"), Queue: c.Int("queue"),
				Context: c.Int("ctx"), APIKey: c.String("api-key"), TiledBatch: c.Bool("tiled-batch"),
				MaxKVBytes: int64(c.Int("max-kv-mib")) << 20})
			var ce *serve.ConfigError
			switch {
			case errors.As(err, &ce):
				return usagef("%v", err)
			case err != nil:
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			chat := "no chat template: /v1/chat/completions answers 400"
			if srv.HasChatTemplate() {
				chat = "chat template loaded"
			}
			fmt.Fprintf(c.App.ErrWriter, "shrink serve: %s on http://%s (%d parallel, %s, %d threads)\n", name, ln.Addr(), c.Int("parallel"), chat, m.Threads())
			if err := srv.Serve(ctx, ln); err != nil {
				return err
			}
			fmt.Fprintln(c.App.ErrWriter, "shrink serve: stopped")
			return nil
		}),
	}
}
