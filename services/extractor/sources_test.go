package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/datamill/datamill/schemas"
)

// declared parses yaml as the dataset.yaml of ds in the folder dir ("" for
// a built-in one).
func declared(t testing.TB, dir, ds, yaml string) schemas.Declaration {
	t.Helper()
	file := "built-in avro/" + ds + "/dataset.yaml"
	if dir != "" {
		file = filepath.Join(dir, ds, "dataset.yaml")
	}
	d, err := schemas.ParseDeclaration(file, ds, []byte(yaml), schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeclarationsAreTheDeclaredSourcesWithExtractorFilesInPlaceOfTheirPaths(t *testing.T) {
	const dir = "/srv/datasets"
	tests := map[string]struct {
		datasets []string
		yaml     map[string]string // dataset.yaml by dataset; built in when dir is ""
		dir      string
		files    []string
		want     []declaration
		err      string
	}{
		"no sources section: http only": {
			datasets: []string{"users", "jobs"},
			yaml:     map[string]string{"users": "description: no sources"},
			want:     []declaration{{dataset: "users", kind: "http"}, {dataset: "jobs", kind: "http"}},
		},
		"no sources section and extractor files": {
			datasets: []string{"users"}, files: []string{" users = /data/in ", "users=/data/more/*.csv"},
			want: []declaration{
				{dataset: "users", kind: "http"},
				{dataset: "users", kind: "files", path: "/data/in"},
				{dataset: "users", kind: "files", path: "/data/more/*.csv"},
			},
		},
		"declared in their order": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources:\n  - {kind: files, path: /data/users}\n  - kind: http\n  - {kind: files, path: '/data/old/*.csv'}\n"},
			want: []declaration{
				{dataset: "users", kind: "files", path: "/data/users"},
				{dataset: "users", kind: "http"},
				{dataset: "users", kind: "files", path: "/data/old/*.csv"},
			},
		},
		"files only: no http": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources: [{kind: files, path: /data/users}]"},
			want: []declaration{{dataset: "users", kind: "files", path: "/data/users"}},
		},
		"a relative path is read from the dataset's folder": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources: [{kind: files, path: inbox}, {kind: files, path: '../shared/*.csv'}]"},
			want: []declaration{
				{dataset: "users", kind: "files", path: "/srv/datasets/users/inbox"},
				{dataset: "users", kind: "files", path: "/srv/datasets/shared/*.csv"},
			},
		},
		"a relative path of a built-in declaration is read from the working directory": {
			datasets: []string{"users"},
			yaml:     map[string]string{"users": "sources: [{kind: files, path: inbox}]"},
			want:     []declaration{{dataset: "users", kind: "files", path: "inbox"}},
		},
		"extractor files replace the declared paths of their dataset alone": {
			datasets: []string{"users", "jobs"}, dir: dir, files: []string{"users=/mnt/users"},
			yaml: map[string]string{
				"users": "sources: [{kind: files, path: /data/users}, {kind: http}, {kind: files, path: /data/more}]",
				"jobs":  "sources: [{kind: files, path: /data/jobs}]",
			},
			want: []declaration{
				{dataset: "users", kind: "http"},
				{dataset: "users", kind: "files", path: "/mnt/users"},
				{dataset: "jobs", kind: "files", path: "/data/jobs"},
			},
		},
		"extractor files give a declared files source without a path its files": {
			datasets: []string{"users"}, dir: dir, files: []string{"users=/mnt/users"},
			yaml: map[string]string{"users": "sources: [{kind: files}]"},
			want: []declaration{{dataset: "users", kind: "files", path: "/mnt/users"}},
		},
		"extractor files for a dataset that declares only http": {
			datasets: []string{"users"}, dir: dir, files: []string{"users=/mnt/users"},
			yaml: map[string]string{"users": "sources: [{kind: http}]"},
			want: []declaration{{dataset: "users", kind: "http"}, {dataset: "users", kind: "files", path: "/mnt/users"}},
		},
		"a dataset not served is not read": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"jobs": "sources: [{kind: files, path: /data/jobs}]"},
			want: []declaration{{dataset: "users", kind: "http"}},
		},
		"files without a path": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources: [{kind: http}, {kind: files}]"},
			err:  "/srv/datasets/users/dataset.yaml: sources[1] (files): no path: give it one, or the dataset an EXTRACTOR_FILES entry users=<path>",
		},
		"an unknown option of files": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "description: users\nsources:\n  - kind: files\n    path: /a\n    pattern: '*.csv'\n"},
			err:  "/srv/datasets/users/dataset.yaml: sources[0] (files): line 5: unknown key pattern",
		},
		"an unknown option of files overridden by extractor files": {
			datasets: []string{"users"}, dir: dir, files: []string{"users=/mnt/users"},
			yaml: map[string]string{"users": "sources: [{kind: files, paths: /a}]"},
			err:  "/srv/datasets/users/dataset.yaml: sources[0] (files): line 1: unknown key paths",
		},
		"a files path that is no text": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources:\n  - kind: http\n  - kind: files\n    path: [/a, /b]\n"},
			err:  "/srv/datasets/users/dataset.yaml: sources[1] (files): line 3: cannot unmarshal !!seq into string",
		},
		"an option of http": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources: [{kind: http, token: x}]"},
			err:  "/srv/datasets/users/dataset.yaml: sources[0] (http): line 1: unknown key token",
		},
		"an unknown kind": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources: [{kind: ftp}]"},
			err:  `/srv/datasets/users/dataset.yaml: sources[0]: unknown source kind "ftp" (known: api, files, http, scrape)`,
		},
		"a declared path that is no glob": {
			datasets: []string{"users"}, dir: dir,
			yaml: map[string]string{"users": "sources: [{kind: files, path: '/data/[a'}]"},
			err:  `/srv/datasets/users/dataset.yaml: sources[0] (files): path "/data/[a": syntax error in pattern`,
		},
		"no dataset":         {datasets: []string{"users"}, files: []string{"/data/in"}, err: `EXTRACTOR_FILES entry "/data/in": want dataset=path`},
		"no path":            {datasets: []string{"users"}, files: []string{"users="}, err: `EXTRACTOR_FILES entry "users=": want dataset=path`},
		"dataset not served": {datasets: []string{"users"}, files: []string{"jobs=/data/jobs"}, err: `dataset "jobs" is not in DATASETS [users]`},
		"no glob":            {datasets: []string{"users"}, files: []string{"users=/data/[a"}, err: `EXTRACTOR_FILES entry "users=/data/[a": syntax error in pattern`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			decl := map[string]schemas.Declaration{}
			for ds, text := range tc.yaml {
				decl[ds] = declared(t, tc.dir, ds, text)
			}
			got, err := declarations(sourceKinds(), tc.datasets, decl, tc.files)
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
	_, err = groupByKind(kinds, append(decls, declaration{dataset: "jobs", kind: "ftp"}))
	if want := `dataset "jobs": unknown source kind "ftp" (known: api, files, http, scrape)`; err == nil || err.Error() != want {
		t.Errorf("groupByKind with an ftp source = %v, want %q", err, want)
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
