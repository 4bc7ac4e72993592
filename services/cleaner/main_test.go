package main

import (
	"io"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/testkit"
)

func TestStartsReadyAndStops(t *testing.T) {
	testkit.ServeUntilReady(t, run, testkit.As(testkit.Stack(t, false), "cleaner"))
}

func TestMissingVariableIsNamed(t *testing.T) {
	err := run(t.Context(), nil, []string{"KAFKA_BROKERS=127.0.0.1:1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SCHEMA_REGISTRY_URL") {
		t.Fatalf("run without SCHEMA_REGISTRY_URL = %v, want an error naming it", err)
	}
}

func TestEveryVariableIsDocumented(t *testing.T) {
	testkit.Documented(t, settings{})
}
