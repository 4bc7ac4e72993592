package main

import (
	"io"
	"strings"
	"testing"
)

func TestGenCommand(t *testing.T) {
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"gen", "users", "--rows", "100", "--seed", "9", "--dirty", "0.5", "--format", "ndjson"}, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(out.String(), "\n")
	if lines < 100 || !strings.HasPrefix(out.String(), `{"account_status":`) {
		t.Errorf("gen wrote %d lines starting %.40q", lines, out.String())
	}
	if !strings.Contains(errOut.String(), "100 users") {
		t.Errorf("summary %q", errOut.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gen", "jobs"}, `unknown dataset "jobs"`}, // a declared dataset without a generator: TestCommandsRefuseADatasetTheyCannotRun
		{[]string{"gen", "users", "--dirty", "1.5"}, "--dirty 1.5"},
		{[]string{"gen", "users", "--format", "xml"}, `format "xml"`},
	} {
		if err := run(t.Context(), tc.args, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v = %v, want an error mentioning %s", tc.args, err, tc.want)
		}
	}
}
