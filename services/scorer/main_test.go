package main

import (
	"io"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/testkit"
)

func TestStartsReadyAndStops(t *testing.T) {
	s := newScorerStack(t) // the loader's tables
	dir := t.TempDir()
	trainModel(t, dir)
	testkit.ServeUntilReady(t, run, append(s.env, "SCORER_MODEL_DIR="+dir))
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
