package service

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/config"
)

func noStep(context.Context, *Process, settings) error { return nil }

func TestEnvListsTheVariablesOfTheConfiguration(t *testing.T) {
	var out bytes.Buffer
	if err := Run(t.Context(), "tester", []string{"tester", "env", "--json"}, nil, &out, noStep); err != nil {
		t.Fatal(err)
	}
	var vars []struct {
		Name     string `json:"name"`
		Default  string `json:"default"`
		Required bool   `json:"required"`
	}
	if err := json.Unmarshal(out.Bytes(), &vars); err != nil {
		t.Fatalf("env --json printed %q: %v", out.String(), err)
	}
	want := config.Variables(settings{})
	if len(vars) != len(want) {
		t.Fatalf("env --json listed %d variables, want %d", len(vars), len(want))
	}
	for i, v := range want {
		if vars[i].Name != v.Name || vars[i].Default != v.Default || vars[i].Required != v.Required {
			t.Errorf("variable %d = %+v, want %+v", i, vars[i], v)
		}
	}
	if last := vars[len(vars)-1]; last.Name != "NEEDED" || !last.Required {
		t.Errorf("last variable = %+v, want NEEDED, required", last)
	}

	out.Reset()
	if err := Run(t.Context(), "tester", []string{"tester", "env"}, nil, &out, noStep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "NEEDED") || !strings.Contains(out.String(), "(required)") {
		t.Errorf("env printed %q, want NEEDED marked required", out.String())
	}
}

func TestHealthcheckAsksTheRunningProcess(t *testing.T) {
	p, err := Start("tester", config.Service{LogLevel: "error", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// HTTP_ADDR names no listener: the healthcheck asks ADMIN_ADDR.
	environ := []string{"ADMIN_ADDR=" + p.Telemetry.Addr(), "HTTP_ADDR=127.0.0.1:1"}
	check := func(args ...string) error {
		return Run(t.Context(), "tester", append([]string{"tester", "healthcheck"}, args...), environ, io.Discard, noStep)
	}
	if err := check(); err != nil {
		t.Errorf("healthcheck of a live process: %v", err)
	}
	p.Telemetry.SetReady("db", false, "waiting for the database")
	if err := check("--ready"); err == nil || !strings.Contains(err.Error(), "waiting for the database") {
		t.Errorf("healthcheck --ready while not ready = %v, want the reason", err)
	}
	p.Telemetry.SetReady("db", true, "")
	if err := check("--ready"); err != nil {
		t.Errorf("healthcheck --ready when ready: %v", err)
	}
	p.Close()
	if err := check(); err == nil {
		t.Error("healthcheck of a stopped process passed")
	}
}

func TestUnknownCommandsAreRefused(t *testing.T) {
	err := Run(t.Context(), "tester", []string{"tester", "bogus"}, []string{"NEEDED=x"}, io.Discard, noStep)
	if err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("Run bogus = %v, want an error naming the command", err)
	}
}
