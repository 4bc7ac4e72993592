package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/extractor/internal/source/files"
)

// childEnv makes the test binary run the extractor itself, so that a test
// can kill it with SIGKILL.
const childEnv = "DATAMILL_EXTRACTOR_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := run(ctx, nil, os.Environ(), os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rawUsers decodes records of raw.users.
func rawUsers(t *testing.T, registry string, recs []*kgo.Record) []users.Raw {
	t.Helper()
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[users.Raw](t.Context(), reg, "raw.users", schemas.MustSchema("users/raw"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]users.Raw, len(recs))
	for i, r := range recs {
		if err := codec.Decode(r.Value, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestFileSourcesReadEveryFormatGlobAndWatchedDirectory(t *testing.T) {
	watched, other := t.TempDir(), t.TempDir()
	write(t, filepath.Join(watched, "a.csv"), "id,age,country\n1,30,FR\n2,\"4\"0\",DE\n3,50,IT\n")
	write(t, filepath.Join(watched, "b.ndjson"), "{\"id\":\"4\",\"age\":\"40\"}\n{\"id\":\n{\"id\":\"5\"}\n")
	write(t, filepath.Join(watched, "notes.txt"), "not data")
	write(t, filepath.Join(other, "c.json"), `[{"id":"6"},{"id":7,"shoe":"44"}]`)
	write(t, filepath.Join(other, "d.csv"), "id\n8\n") // not matched by the glob
	_, k, registry := startExtractor(t,
		"EXTRACTOR_FILES=users="+watched+",users="+filepath.Join(other, "*.json"),
		"EXTRACTOR_SCAN_INTERVAL=100ms", "EXTRACTOR_FILE_BATCH=2")

	recs := testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 6)
	dead := testkit.Consume(t, k.ClientConfig(kafka.Admin), "dlq.users", 2)
	got := map[string]users.Raw{}
	for _, r := range rawUsers(t, registry, recs) {
		got[*r.ID] = r
	}
	if ids := slices.Sorted(maps.Keys(got)); fmt.Sprint(ids) != "[1 3 4 5 6 7]" {
		t.Fatalf("raw ids %v, want [1 3 4 5 6 7]", ids)
	}
	a := filepath.Join(watched, "a.csv")
	st, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	if r := got["3"]; r.Source != "file:"+a || !r.IngestedAt.Equal(st.ModTime().Truncate(time.Microsecond).Add(2*time.Microsecond)) {
		t.Errorf("record 3 of a.csv: source %q at %v, want file:%s at its mtime + 2 µs", r.Source, r.IngestedAt, a)
	}
	var reasons []string
	for _, d := range dead {
		if kafka.Header(d, stage.HeaderStage) != "extractor" || kafka.Header(d, stage.HeaderSourcePartition) != "-1" {
			t.Errorf("dead letter headers %v", d.Headers)
		}
		reasons = append(reasons, kafka.Header(d, stage.HeaderSourceTopic)+" "+kafka.Header(d, stage.HeaderReason))
	}
	slices.Sort(reasons)
	if len(reasons) != 2 || !strings.Contains(reasons[0], "a.csv line 3: unreadable") || !strings.Contains(reasons[1], "b.ndjson line 2: unreadable") {
		t.Errorf("dead letters %q, want line 3 of a.csv and line 2 of b.ndjson", reasons)
	}

	// A file renamed into the watched directory is picked up.
	tmp := filepath.Join(watched, ".e.csv")
	write(t, tmp, "id,age\n9,99\n")
	if err := os.Rename(tmp, filepath.Join(watched, "e.csv")); err != nil {
		t.Fatal(err)
	}
	recs = testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 7)
	if ids := rawIDs(t, registry, recs); !slices.Contains(ids, "9") {
		t.Errorf("raw ids %v lack 9 from the file renamed in", ids)
	}

	// A file rewritten in its middle is read again from the start, every
	// record a new event timed after the ones of the old version, so that
	// the newest content wins downstream (and unchanged content is a
	// duplicate the cleaner drops).
	write(t, a, "id,age,country\n1,30,FR\n2,40,DE\n3,50,IT\n")
	recs = testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 10)
	type event struct {
		id string
		at time.Time
	}
	events := map[string][]event{} // user → its events from a.csv, in order
	for _, r := range rawUsers(t, registry, recs) {
		if r.Source == "file:"+a {
			events[*r.ID] = append(events[*r.ID], event{r.EventID, r.IngestedAt})
		}
	}
	for id, want := range map[string]int{"1": 2, "2": 1, "3": 2} {
		e := events[id]
		if len(e) != want || want == 2 && (e[0].id == e[1].id || !e[1].at.After(e[0].at)) {
			t.Errorf("user %s came as %v, want %d events, each later one newer", id, e, want)
		}
	}
	if last, first := events["1"][1].at, events["3"][0].at; !last.After(first) {
		t.Errorf("the rewritten file's first record is timed %v, not after the old version's last, %v", last, first)
	}
}

func rawIDs(t *testing.T, registry string, recs []*kgo.Record) []string {
	t.Helper()
	var ids []string
	for _, r := range rawUsers(t, registry, recs) {
		ids = append(ids, *r.ID)
	}
	return ids
}

// TestFileReadResumesAfterSIGKILL kills the extractor with SIGKILL while it
// publishes a large file, restarts it, and checks that every record of the
// file is in raw.users exactly once; then that touching the finished file
// publishes nothing more.
func TestFileReadResumesAfterSIGKILL(t *testing.T) {
	k := testkit.KafkaCluster(t)
	registry := testkit.Registry(t)
	kcfg := k.ClientConfig(kafka.Admin)
	kcfg.Partitions = 3
	const rows = 100_000
	file := filepath.Join(t.TempDir(), "users.csv")
	var b strings.Builder
	b.WriteString("id,age,country,email\n")
	for i := range rows {
		fmt.Fprintf(&b, "%d,%d,FR,user%d@example.org\n", i, 20+i%60, i)
	}
	write(t, file, b.String())
	env := append(append(os.Environ(), testkit.KafkaEnv(k.ClientConfig("extractor"))...), childEnv+"=1", "SCHEMA_REGISTRY_URL="+registry,
		"HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=warn", "EXTRACTOR_INSTANCE_ID=kill-test",
		"EXTRACTOR_FILES=users="+file, "EXTRACTOR_SCAN_INTERVAL=100ms", "EXTRACTOR_FILE_BATCH=1000")
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}

	first := start()
	mark := waitCheckpoint(t, kcfg, func(cp files.Checkpoint) bool { return cp.Records >= 20_000 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if mark.Done {
		t.Fatalf("the file was done (%d records) before the kill: make it larger", mark.Records)
	}
	t.Logf("killed after a checkpoint at %d records", mark.Records)

	second := start()
	done := waitCheckpoint(t, kcfg, func(cp files.Checkpoint) bool { return cp.Done })
	if done.Records != rows {
		t.Errorf("final checkpoint counts %d records, want %d", done.Records, rows)
	}
	wantOnce(t, kcfg, rows)

	// Touched, the finished file is checked again and publishes nothing.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(t, kcfg, func(cp files.Checkpoint) bool { return cp.Done && cp.ModTime.Equal(later) })
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("extractor after SIGTERM: %v", err)
	}
	wantOnce(t, kcfg, rows)
}

// waitCheckpoint waits up to 2 minutes for a committed file checkpoint
// that satisfies ok.
func waitCheckpoint(t *testing.T, kcfg kafka.Config, ok func(files.Checkpoint) bool) files.Checkpoint {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var last files.Checkpoint
		err := kafka.ReadCommitted(t.Context(), kcfg, zap.NewNop(), files.CheckpointTopic, nil, func(r *kgo.Record) {
			_ = json.Unmarshal(r.Value, &last)
		})
		if err == nil && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such checkpoint within 2 minutes; last %+v (%v)", last, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantOnce checks that raw.users holds n records with n distinct event ids.
func wantOnce(t *testing.T, kcfg kafka.Config, n int) {
	t.Helper()
	var records int
	keys := map[string]bool{}
	err := kafka.ReadCommitted(t.Context(), kcfg, zap.NewNop(), "raw.users", nil, func(r *kgo.Record) {
		records++
		keys[string(r.Key)] = true
	})
	if err != nil {
		t.Fatal(err)
	}
	if records != n || len(keys) != n {
		t.Errorf("raw.users holds %d records of %d distinct users, want each of the %d rows once", records, len(keys), n)
	}
}
