package servetest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// DemoModel unpacks the embedded demo model, lets edit (when not nil)
// change the unpacked folder, converts it to q8 and opens the result with
// two threads (so that the server's batches run on a pool), until the test
// ends.
func DemoModel(t testing.TB, edit func(dir string)) *runtime.Model {
	t.Helper()
	src := demotest.Unpack(t)
	if edit != nil {
		edit(src)
	}
	return demotest.Open(t, demotest.Convert(t, src, convert.Policy{Quant: quant.Q8}), runtime.Options{Threads: 2})
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
