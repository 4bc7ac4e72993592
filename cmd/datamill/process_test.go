package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// process is a server a test started, stopped when the test ends.
type process struct {
	done chan struct{} // closed once the command has exited
	err  error         // Wait's, once done is closed
}

// startProcess starts cmd and, when the test ends, stops it with sig,
// killing it if it has not exited after grace. A test waiting for the
// server to answer selects on done to see it die instead.
func startProcess(t testing.TB, cmd *exec.Cmd, sig os.Signal, grace time.Duration) *process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}
