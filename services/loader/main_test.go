package main

import (
	"io"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/testkit"
)

func TestStartsReadyAndStops(t *testing.T) {
	testkit.ServeUntilReady(t, run, testkit.As(testkit.Stack(t, true), "loader"))
}

func TestMissingVariableIsNamed(t *testing.T) {
	err := run(t.Context(), nil, []string{"KAFKA_BROKERS=127.0.0.1:1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("run without DATABASE_URL = %v, want an error naming it", err)
	}
}

func TestEveryVariableIsDocumented(t *testing.T) {
	testkit.Documented(t, settings{})
}
