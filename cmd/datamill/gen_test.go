package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
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
	if len(recs) < 501 || strings.Join(recs[0], ",") != "source_name,source_id,source_url,title,company,category,location,remote,job_type,salary,published_at,description,id" {
		t.Errorf("%d records, header %v", len(recs), recs[0])
	}
}

// Generated offers, dirt and all, are published by `datamill produce jobs`
// under the built-in jobs declaration: every row is read and none refused,
// whatever its format.
func TestProducePublishesGeneratedJobs(t *testing.T) {
	s := newProduceStack(t)
	cl, err := kafka.NewClient(s.kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, s.kcfg, "raw.jobs"); err != nil {
		t.Fatal(err)
	}
	env := s.env
	produced := 0
	for _, format := range []string{"csv", "ndjson", "json"} {
		file := filepath.Join(t.TempDir(), "jobs."+format)
		var out strings.Builder
		if err := run(t.Context(), []string{"gen", "jobs", "--rows", "300", "--seed", "11", "--dirty", "0.3", "--format", format, "--out", file}, nil, io.Discard, &out); err != nil {
			t.Fatal(err)
		}
		rows, err := strconv.Atoi(strings.Fields(strings.TrimPrefix(out.String(), "gen: "))[0])
		if err != nil || rows <= 300 {
			t.Fatalf("gen summary %q: want more rows than offers", out.String())
		}
		out.Reset()
		if err := run(t.Context(), []string{"produce", "jobs", file}, env, &out, &out); err != nil {
			t.Fatalf("produce jobs %s: %v: %s", format, err, out.String())
		}
		wantAll(t, "the output", out.String(), fmt.Sprintf("published %d jobs records to raw.jobs", rows))
		produced += rows
		var n int
		if err := kafka.ReadCommitted(t.Context(), s.kcfg, zap.NewNop(), "raw.jobs", nil, func(*kgo.Record) { n++ }); err != nil {
			t.Fatal(err)
		}
		if n != produced {
			t.Errorf("after %s, raw.jobs holds %d committed records, want %d", format, n, produced)
		}
	}
}
