package servetest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/internal/demo"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// DemoModel copies the embedded demo model to a temporary folder, lets edit
// (when not nil) change the copy, converts it to q8 with the convert package
// and opens the result with two threads; the model is closed when the test
// ends.
func DemoModel(t testing.TB, edit func(dir string)) *runtime.Model {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "model")
	if err := os.CopyFS(src, demo.FS()); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(src)
	}
	cm, err := convert.Open(src, convert.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	plan, err := convert.MakePlan(cm.Config, cm.Tensors, convert.Policy{Quant: quant.Q8})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "demo-q8.shrink")
	if _, err := convert.Convert(context.Background(), cm, plan, out, convert.Options{}); err != nil {
		t.Fatal(err)
	}
	m, err := runtime.Open(out, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// stopWait bounds how long stop waits for Serve to return after its
// context ends, so that a server that does not shut down fails the test
// instead of hanging it.
const stopWait = 30 * time.Second

// Serve runs serve (a server's Serve method) on a loopback port and returns
// the base URL and stop, which ends serve's context and returns what serve
// returned. Stop runs when the test ends unless the test called it; its
// error, if any, then fails the test.
func Serve(t testing.TB, serve func(context.Context, net.Listener) error) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(stopWait):
			return errors.New("did not return after its context ended")
		}
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), stop
}
