package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDeclarationsServeEveryDatasetOverHTTPAndAddExtractorFiles(t *testing.T) {
	tests := map[string]struct {
		datasets, files []string
		want            []declaration
		err             string
	}{
		"http only": {
			datasets: []string{"users", "jobs"},
			want:     []declaration{{dataset: "users", kind: "http"}, {dataset: "jobs", kind: "http"}},
		},
		"files in their order": {
			datasets: []string{"users"}, files: []string{" users = /data/in ", "users=/data/more/*.csv"},
			want: []declaration{
				{dataset: "users", kind: "http"},
				{dataset: "users", kind: "files", path: "/data/in"},
				{dataset: "users", kind: "files", path: "/data/more/*.csv"},
			},
		},
		"no dataset":         {datasets: []string{"users"}, files: []string{"/data/in"}, err: `EXTRACTOR_FILES entry "/data/in": want dataset=path`},
		"no path":            {datasets: []string{"users"}, files: []string{"users="}, err: `EXTRACTOR_FILES entry "users=": want dataset=path`},
		"dataset not served": {datasets: []string{"users"}, files: []string{"jobs=/data/jobs"}, err: `dataset "jobs" is not in DATASETS [users]`},
		"no glob":            {datasets: []string{"users"}, files: []string{"users=/data/[a"}, err: `EXTRACTOR_FILES entry "users=/data/[a": syntax error in pattern`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := declarations(tc.datasets, tc.files)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("declarations(%v, %v) = %v, want an error saying %q", tc.datasets, tc.files, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(declaration{})); diff != "" {
				t.Errorf("declarations(%v, %v): -want +got\n%s", tc.datasets, tc.files, diff)
			}
		})
	}
}

func TestEveryDeclaredKindIsKnown(t *testing.T) {
	kinds := sourceKinds()
	decls := []declaration{
		{dataset: "users", kind: "http"},
		{dataset: "users", kind: "files", path: "/a"},
		{dataset: "jobs", kind: "http"},
		{dataset: "jobs", kind: "files", path: "/b"},
	}
	got, err := groupByKind(kinds, decls)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]declaration{"http": {decls[0], decls[2]}, "files": {decls[1], decls[3]}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(declaration{})); diff != "" {
		t.Errorf("groupByKind: -want +got\n%s", diff)
	}
	_, err = groupByKind(kinds, append(decls, declaration{dataset: "jobs", kind: "scrape"}))
	if want := `dataset "jobs": unknown source kind "scrape" (known: files, http)`; err == nil || err.Error() != want {
		t.Errorf("groupByKind with a scrape source = %v, want %q", err, want)
	}
}

// stubSource is a source that reports itself ready, then fails with err
// after failAfter, or runs until its context ends.
type stubSource struct {
	err       error
	failAfter time.Duration
	stopped   chan struct{} // closed when Run returns
}

func (s *stubSource) Run(ctx context.Context, ready func(bool, string)) error {
	defer close(s.stopped)
	ready(true, "")
	if s.err == nil {
		<-ctx.Done()
		return nil
	}
	select {
	case <-time.After(s.failAfter):
		return s.err
	case <-ctx.Done():
		return nil
	}
}

// A source that fails stops the others, and its error is the extractor's;
// the end of the context stops them all without an error. Each reports its
// readiness under its own kind.
func TestRunSourcesStopsEveryOneWhenOneFails(t *testing.T) {
	var mu sync.Mutex
	readiness := map[string]bool{}
	readyOf := func(kind string) func(bool, string) {
		return func(ready bool, _ string) {
			mu.Lock()
			defer mu.Unlock()
			readiness[kind] = ready
		}
	}
	broken := errors.New("checkpoints unreadable")
	steady := &stubSource{stopped: make(chan struct{})}
	failing := &stubSource{err: broken, failAfter: 50 * time.Millisecond, stopped: make(chan struct{})}
	err := runSources(t.Context(), map[string]source{"http": steady, "files": failing}, readyOf)
	if !errors.Is(err, broken) {
		t.Errorf("runSources with a failing source = %v, want %v", err, broken)
	}
	select {
	case <-steady.stopped:
	default:
		t.Error("the steady source still runs after the other failed")
	}
	if !readiness["http"] || !readiness["files"] || len(readiness) != 2 {
		t.Errorf("readiness %v, want http and files ready", readiness)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	a, b := &stubSource{stopped: make(chan struct{})}, &stubSource{stopped: make(chan struct{})}
	go func() { done <- runSources(ctx, map[string]source{"http": a, "files": b}, readyOf) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runSources after the context ended = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runSources still runs 10 s after its context ended")
	}
}
