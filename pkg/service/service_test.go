package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/datamill/datamill/pkg/config"
)

func TestAwaitHoldsReadinessUntilEveryProbePasses(t *testing.T) {
	var out bytes.Buffer
	p, err := Start("tester", config.Service{LogLevel: "info", LogFormat: "json", HTTPAddr: "127.0.0.1:0"}, struct{}{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var calls atomic.Int32
	flaky := Probe{Component: "db", Check: func(context.Context) error {
		if calls.Add(1) < 3 {
			if p.Telemetry.Ready() {
				t.Error("ready while a probe fails")
			}
			return errors.New("connection refused")
		}
		return nil
	}}
	ok := Probe{Component: "kafka", Check: func(context.Context) error { return nil }}
	if err := p.Await(t.Context(), ok, flaky); err != nil {
		t.Fatal(err)
	}
	if !p.Telemetry.Ready() || calls.Load() != 3 {
		t.Errorf("ready = %v after %d calls, want ready after 3", p.Telemetry.Ready(), calls.Load())
	}
	if !strings.Contains(out.String(), "connection refused") {
		t.Errorf("the failing probe was not logged: %s", out.String())
	}
}

func TestAwaitGivesUpWithContext(t *testing.T) {
	p, err := Start("tester", config.Service{LogLevel: "error", LogFormat: "json", HTTPAddr: "127.0.0.1:0"}, struct{}{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = p.Await(ctx, Probe{Component: "db", Check: func(context.Context) error { return errors.New("down") }})
	if err == nil || !strings.Contains(err.Error(), "db") {
		t.Fatalf("Await = %v, want an error naming the component", err)
	}
}

type settings struct {
	config.Service
	Needed string `env:"NEEDED"`
}

func TestRunReportsConfigurationErrors(t *testing.T) {
	err := Run(t.Context(), "tester", nil, io.Discard, func(context.Context, *Process, settings) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "NEEDED") {
		t.Fatalf("Run = %v, want an error naming NEEDED", err)
	}
}

func TestRunAllStopsTheOthersOnAFailure(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Bool
	err := RunAll(t.Context(),
		func(context.Context) error { return boom },
		func(ctx context.Context) error { <-ctx.Done(); stopped.Store(true); return nil },
	)
	if !errors.Is(err, boom) || !stopped.Load() {
		t.Errorf("RunAll = %v (other stopped: %v), want boom and the other stopped", err, stopped.Load())
	}
}
