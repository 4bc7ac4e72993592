package main

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
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
		{[]string{"gen", "nope"}, `unknown dataset "nope"`}, // a declared dataset without a generator: TestCommandsRefuseADatasetTheyCannotRun
		{[]string{"gen", "jobs", "--rows", "-1"}, "--rows -1"},
		{[]string{"gen", "users", "--dirty", "1.5"}, "--dirty 1.5"},
		{[]string{"gen", "users", "--format", "xml"}, `format "xml"`},
	} {
		if err := run(t.Context(), tc.args, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v = %v, want an error mentioning %s", tc.args, err, tc.want)
		}
	}
}

// TestGenJobsCommand writes offers as CSV to a file: the header is the
// offers', the same flags give the same bytes, and the summary counts the
// offers, their copies on a second source and the dirt.
func TestGenJobsCommand(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string) []byte {
		t.Helper()
		path := filepath.Join(dir, name)
		var errOut strings.Builder
		if err := run(t.Context(), []string{"gen", "jobs", "--rows", "500", "--seed", "3", "--dirty", "0.2", "--out", path}, nil, io.Discard, &errOut); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"500 jobs offers", "on a second source", "dirty rows; dirt: "} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("summary %q, want %q in it", errOut.String(), want)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := gen("a.csv"), gen("b.csv")
	if !bytes.Equal(a, b) {
		t.Error("gen jobs with the same flags wrote different files")
	}
	recs, err := csv.NewReader(bytes.NewReader(a)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 501 || strings.Join(recs[0], ",") != "source,source_id,url,title,company,category,location,remote,job_type,salary,published_at,description" {
		t.Errorf("%d records, header %v", len(recs), recs[0])
	}
}
