package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// datasetsDir writes a DATASETS_DIR: users with yaml as its dataset.yaml
// (its schemas the built-in ones), and visitors, the schemas of users
// under another name, accepted over HTTP alone.
func datasetsDir(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	for _, ds := range []string{"users", "visitors"} {
		if err := os.MkdirAll(filepath.Join(dir, ds), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, "users", schemas.DeclarationFile), yaml)
	for _, name := range []string{"raw.avsc", "clean.avsc"} {
		text, err := fs.ReadFile(schemas.Files, "avro/users/"+name)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "visitors", name), string(text))
	}
	write(t, filepath.Join(dir, "visitors", schemas.DeclarationFile), "sources: [{kind: http}]\n")
	return dir
}

// A dataset of DATASETS_DIR that declares a files source with a directory
// has the directory's files published, with no EXTRACTOR_FILES; a relative
// path is read from the dataset's folder. A POST for a dataset served that
// declares no http source is refused with 404 saying so, whether or not
// another dataset declares one.
func TestDeclaredFilesSourceIsReadWithoutExtractorFiles(t *testing.T) {
	dir := datasetsDir(t, "sources:\n  - kind: files\n    path: inbox\n")
	inbox := filepath.Join(dir, "users", "inbox")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(inbox, "a.csv"), "id,age\n1,30\n2,40\n")
	write(t, filepath.Join(inbox, "b.ndjson"), "{\"id\":\"3\"}\n")
	base, k, registry := startExtractor(t, "DATASETS=users,visitors", "DATASETS_DIR="+dir, "EXTRACTOR_SCAN_INTERVAL=100ms")

	recs := testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 3)
	var got []string
	for _, r := range rawUsers(t, registry, recs) {
		got = append(got, *r.ID+" "+r.Source)
	}
	slices.Sort(got)
	want := []string{"1 file:" + filepath.Join(inbox, "a.csv"), "2 file:" + filepath.Join(inbox, "a.csv"), "3 file:" + filepath.Join(inbox, "b.ndjson")}
	if !slices.Equal(got, want) {
		t.Errorf("raw.users holds %q, want %q", got, want)
	}

	status, body := post(t, base.ingest+"/v1/datasets/users/events", "", `{"id":"4"}`)
	if msg, _ := body["error"].(string); status != 404 || !strings.Contains(msg, `dataset "users" declares no http source`) {
		t.Errorf("POST users: %d %v, want 404 saying users declares no http source", status, body)
	}
	status, body = post(t, base.ingest+"/v1/datasets/visitors/events", "", `{"id":"4"}`)
	if status != 202 {
		t.Errorf("POST visitors: %d %v, want 202", status, body)
	}
	status, body = post(t, base.ingest+"/v1/datasets/jobs/events", "", `{"id":"4"}`)
	if msg, _ := body["error"].(string); status != 404 || !strings.Contains(msg, `unknown dataset "jobs"`) {
		t.Errorf("POST jobs: %d %v, want 404 saying jobs is unknown", status, body)
	}

	// Served alone, no dataset declares http: the endpoint still says why.
	base, _, _ = startExtractor(t, "DATASETS=users", "DATASETS_DIR="+dir, "EXTRACTOR_INSTANCE_ID=alone")
	status, body = post(t, base.ingest+"/v1/datasets/users/events", "", `{"id":"4"}`)
	if msg, _ := body["error"].(string); status != 404 || !strings.Contains(msg, `dataset "users" declares no http source`) {
		t.Errorf("POST users to an extractor without http sources: %d %v, want 404 saying users declares no http source", status, body)
	}
}

// An option a kind does not have stops the extractor at start, naming the
// file and the source.
func TestUnknownSourceOptionStopsTheStart(t *testing.T) {
	dir := datasetsDir(t, "sources:\n  - kind: http\n  - {kind: files, path: inbox, recursive: true}\n")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // not reached: the start stops before Kafka
	defer cancel()
	err := run(ctx, nil, []string{
		"KAFKA_BROKERS=127.0.0.1:1", "SCHEMA_REGISTRY_URL=http://127.0.0.1:1", "HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0",
		"DATASETS=users", "DATASETS_DIR=" + dir,
	}, io.Discard)
	want := fmt.Sprintf("%s: sources[1] (files): ", filepath.Join(dir, "users", schemas.DeclarationFile))
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "line 3: unknown key recursive") {
		t.Fatalf("run with an unknown option = %v, want an error naming %q and the key recursive on line 3", err, want)
	}
}
