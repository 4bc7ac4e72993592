package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/testkit"
)

// startS3 starts the embedded S3 for the test and returns its S3_*
// variables.
func startS3(t testing.TB) []string {
	t.Helper()
	s3, err := embedded.StartS3(embedded.S3Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start S3: %v", err)
	}
	t.Cleanup(func() { s3.Close() })
	return s3.Env()
}

// lakeEvent is one raw users event written into a test lake.
type lakeEvent struct {
	offset int64
	at     time.Time
}

// testTopicID is the topic id of raw.users in the lakes tests write.
const testTopicID = "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7"

// writeLakeObject writes the events of one cut of raw.users/partition,
// starting at start, as the sink does, and returns their rows.
func writeLakeObject(t testing.TB, store *lake.Store, raw avro.Schema, partition int32, start int64, events ...lakeEvent) []lake.Row {
	t.Helper()
	return writeTopicObject(t, store, raw, testTopicID, partition, start, events...)
}

// writeTopicObject is writeLakeObject for the raw.users of topic id
// topicID; the events of a topic other than testTopicID have ids of their
// own.
func writeTopicObject(t testing.TB, store *lake.Store, raw avro.Schema, topicID string, partition int32, start int64, events ...lakeEvent) []lake.Row {
	t.Helper()
	var buf bytes.Buffer
	w, err := lake.NewWriter(&buf, raw)
	if err != nil {
		t.Fatal(err)
	}
	var rows []lake.Row
	for _, e := range events {
		id := fmt.Sprintf("%d", 1000*int64(partition)+e.offset)
		if topicID != testTopicID {
			id = lake.ShortTopicID(topicID) + "-" + id
		}
		rec := map[string]any{
			"id": id, "age": "30", "gender": nil, "country": "FR", "city": nil, "email": nil,
			"signup_date": "2024-01-02", "last_login": nil, "account_status": "active", "monthly_spend": "1.50",
			"event_id": "ev-" + id, "source": "test", "ingested_at": e.at.Truncate(time.Microsecond),
		}
		env := lake.Envelope{Topic: "raw.users", Partition: partition, Offset: e.offset, Timestamp: e.at, SchemaID: 1, Key: []byte("key-" + id)}
		if err := w.Write(rec, env); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, lake.Row{Record: rec, Envelope: env})
	}
	m := lake.Meta{Dataset: "users", Topic: "raw.users", TopicID: topicID, Partition: partition, Start: start, End: events[len(events)-1].offset + 1, Records: int64(len(events)), Schema: raw}
	if err := w.Close(m); err != nil {
		t.Fatal(err)
	}
	key := lake.Key("raw", "users", "raw.users", topicID, partition, start, events[0].at)
	if err := store.PutNew(t.Context(), key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), m.UserMetadata()); err != nil {
		t.Fatal(err)
	}
	return rows
}

// --since and --until pick the events of their window by Kafka timestamp,
// and the objects of hours wholly outside are not even read; the events
// replayed keep their key, timestamp and record, re-encoded with the raw
// schema.
func TestReplaySelectsByTime(t *testing.T) {
	ctx := t.Context()
	s3env := startS3(t)
	lcfg, err := readLakeConfig(config.ToMap(s3env))
	if err != nil {
		t.Fatal(err)
	}
	store, err := lake.OpenStore(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := lookUp(nil, io.Discard, "users")
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, m, s int) time.Time { return time.Date(2024, 5, 1, h, m, s, 0, time.UTC) }
	var rows []lake.Row
	rows = append(rows, writeLakeObject(t, store, ds.Raw, 0, 0, lakeEvent{0, at(6, 10, 0)}, lakeEvent{1, at(6, 59, 59)})...)
	rows = append(rows, writeLakeObject(t, store, ds.Raw, 0, 2, lakeEvent{3, at(7, 29, 59)}, lakeEvent{4, at(7, 30, 0)}, lakeEvent{5, at(7, 59, 59)})...)
	rows = append(rows, writeLakeObject(t, store, ds.Raw, 0, 6, lakeEvent{6, at(8, 0, 0)})...)
	rows = append(rows, writeLakeObject(t, store, ds.Raw, 2, 0, lakeEvent{0, at(8, 45, 0)}, lakeEvent{2, at(8, 59, 59)})...)
	rows = append(rows, writeLakeObject(t, store, ds.Raw, 2, 3, lakeEvent{3, at(9, 0, 0)})...)
	// An earlier raw.users (deleted and created again since: another
	// topic id, its offsets from 0 too): replayed as well, before the
	// later topic's objects of the partition.
	rows = append(rows, writeTopicObject(t, store, ds.Raw, "0b5e7d2a"+testTopicID[8:], 2, 0, lakeEvent{0, at(7, 40, 0)}, lakeEvent{1, at(7, 50, 0)})...)
	// An object of an hour outside the window that cannot be read: a
	// replay that opened it would fail.
	junk := lake.Key("raw", "users", "raw.users", testTopicID, 1, 0, at(10, 0, 0))
	if err := store.PutNew(ctx, junk, strings.NewReader("not parquet"), 11, nil); err != nil {
		t.Fatal(err)
	}
	window := func(r lake.Row) bool {
		return !r.Envelope.Timestamp.Before(at(7, 30, 0)) && r.Envelope.Timestamp.Before(at(9, 0, 0))
	}
	var want []lake.Row
	for _, r := range rows {
		if window(r) {
			want = append(want, r)
		}
	}

	// A dataset the lake holds nothing of is an error.
	if err := run(ctx, []string{"replay", "jobs", "--from-lake", "--dry-run"}, s3env, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "the lake holds nothing of jobs") {
		t.Errorf("replay of jobs, which the lake does not hold: %v, want an error saying so", err)
	}

	k := testkit.KafkaCluster(t)
	kcfg := k.ClientConfig(kafka.Admin)
	kcfg.Partitions = 3
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, kcfg, "raw.users"); err != nil {
		t.Fatal(err)
	}
	env := append(append(k.Env(kafka.Admin), "SCHEMA_REGISTRY_URL="+testkit.Registry(t)), s3env...)
	args := []string{"replay", "users", "--from-lake", "--since", "2024-05-01T07:30:00Z", "--until", "2024-05-01T09"}

	// A dry run counts and publishes nothing.
	var out strings.Builder
	if err := run(ctx, append(args, "--dry-run"), env, &out, &strings.Builder{}); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	wantLine := fmt.Sprintf("would replay %d users records in [2024-05-01T07:30:00Z, 2024-05-01T09:00:00Z) from 4 objects of s3://%s/raw/dataset=users/ (3 outside the window not read)", len(want), lcfg.Bucket)
	if !strings.Contains(out.String(), wantLine) {
		t.Errorf("dry run said:\n%s\nwant the line %q", out.String(), wantLine)
	}
	if n := countRecords(t, kcfg, "raw.users"); n != 0 {
		t.Fatalf("the dry run published %d records", n)
	}

	out.Reset()
	var progress strings.Builder
	if err := run(ctx, args, env, &out, &progress); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if want := fmt.Sprintf(`"records": %d`, len(want)); !strings.Contains(progress.String(), want) {
		t.Errorf("replay's progress on stderr:\n%s\nwant its last line to say %s", progress.String(), want)
	}
	for _, line := range []string{
		fmt.Sprintf("replayed %d users records", len(want)),
		"partition 0: 3 records, offsets 4 to 6",
		"partition 2: 4 records, offsets 0 to 2",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("replay said:\n%s\nwant %q", out.String(), line)
		}
	}
	byKey := map[string]lake.Row{}
	for _, r := range want {
		byKey[string(r.Envelope.Key)] = r
	}
	got := 0
	last := map[int32]time.Time{}
	err = kafka.ReadCommitted(ctx, kcfg, zap.NewNop(), "raw.users", nil, func(rec *kgo.Record) {
		got++
		w, ok := byKey[string(rec.Key)]
		if !ok {
			t.Errorf("replayed a record with key %q, not one of the window", rec.Key)
			return
		}
		delete(byKey, string(rec.Key))
		if !rec.Timestamp.Equal(w.Envelope.Timestamp) {
			t.Errorf("key %s: timestamp %v, want the original %v", rec.Key, rec.Timestamp, w.Envelope.Timestamp)
		}
		body, err := avro.Marshal(ds.Raw, w.Record)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Value) < 5 || rec.Value[0] != 0 || !bytes.Equal(rec.Value[5:], body) {
			t.Errorf("key %s: value %x, want the header and %x", rec.Key, rec.Value, body)
		}
		// Offset order per original partition: by their timestamps here.
		if rec.Timestamp.Before(last[rec.Partition]) {
			t.Errorf("key %s: published after a later event of partition %d", rec.Key, rec.Partition)
		}
		last[rec.Partition] = rec.Timestamp
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) || len(byKey) > 0 {
		t.Errorf("raw.users holds %d records, want the window's %d; missing: %v", got, len(want), byKey)
	}
}

// countRecords is how many committed records topic holds.
func countRecords(t testing.TB, kcfg kafka.Config, topic string) int {
	t.Helper()
	n := 0
	if err := kafka.ReadCommitted(t.Context(), kcfg, zap.NewNop(), topic, nil, func(*kgo.Record) { n++ }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A replay from the lake into a fresh stack rebuilds the same table: a
// first stack (its own Kafka and PostgreSQL, a shared S3) runs generated
// users through the pipeline and archives raw.users; a second, fresh one
// gets them only from `datamill replay --from-lake`, and ends with the
// same users table, to the digest.
func TestReplayFromTheLakeIntoAFreshStack(t *testing.T) {
	s3env := startS3(t)
	ds, err := lookUp(nil, io.Discard, "users")
	if err != nil {
		t.Fatal(err)
	}
	digestQuery, err := tableDigestQuery(ds)
	if err != nil {
		t.Fatal(err)
	}
	digest := func(ctx context.Context, databaseURL string) (rows int, sum string) {
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if err := conn.QueryRow(ctx, digestQuery).Scan(&rows, &sum); err != nil {
			t.Fatal(err)
		}
		return rows, sum
	}

	inbox := t.TempDir()
	writeUsers(t, inbox, 3000, 9)
	var rows int
	var sum string
	var archived int
	withLakeStack(t, s3env, []string{"EXTRACTOR_FILES=users=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms"}, func(ctx context.Context, p *pipeline) {
		raw := p.drained(ctx)
		p.lakeDrained(ctx, raw)
		archived = raw.records
		rows, sum = digest(ctx, p.eps["DATABASE_URL"])
	})
	if rows == 0 {
		t.Fatal("the first stack loaded no users")
	}
	t.Logf("first stack: %d raw records archived, %d users rows, digest %s", archived, rows, sum)

	// The fresh stack's own sink archives under another prefix, so that
	// the lake replayed from stays as the first stack left it.
	withLakeStack(t, s3env, []string{"EXTRACTOR_FILES=users=" + t.TempDir(), "S3_PREFIX=replayed"}, func(ctx context.Context, p *pipeline) {
		env := append(stackEnv(p.t, p.eps), s3env...)
		var out, errs strings.Builder
		if err := run(ctx, []string{"replay", "users", "--from-lake"}, env, &out, &errs); err != nil {
			t.Fatalf("replay: %v\n%s%s", err, out.String(), errs.String())
		}
		t.Logf("replay: %s", out.String())
		if want := fmt.Sprintf("replayed %d users records", archived); !strings.Contains(out.String(), want) {
			t.Errorf("replay said %q, want %q", out.String(), want)
		}
		raw := p.read(ctx, "raw.users", nil)
		if raw.records != archived {
			t.Errorf("the fresh raw.users holds %d records, want the %d archived", raw.records, archived)
		}
		p.waitCommitted(ctx, "datamill-cleaner-users", "raw.users", raw.next)
		clean := p.read(ctx, "clean.users", nil)
		p.waitCommitted(ctx, "datamill-loader-users", "clean.users", clean.next)
		gotRows, gotSum := digest(ctx, p.eps["DATABASE_URL"])
		if gotRows != rows || gotSum != sum {
			t.Errorf("after the replay the users table has %d rows, digest %s; the first stack's had %d, digest %s", gotRows, gotSum, rows, sum)
		}

		// Replaying again publishes every event a second time, and
		// changes nothing of the table.
		out.Reset()
		if err := run(ctx, []string{"replay", "users", "--from-lake"}, env, &out, &errs); err != nil {
			t.Fatalf("replay again: %v\n%s%s", err, out.String(), errs.String())
		}
		raw = p.read(ctx, "raw.users", nil)
		if raw.records != 2*archived {
			t.Errorf("after a second replay raw.users holds %d records, want twice the %d archived", raw.records, archived)
		}
		p.waitCommitted(ctx, "datamill-cleaner-users", "raw.users", raw.next)
		clean = p.read(ctx, "clean.users", nil)
		p.waitCommitted(ctx, "datamill-loader-users", "clean.users", clean.next)
		if againRows, againSum := digest(ctx, p.eps["DATABASE_URL"]); againRows != rows || againSum != sum {
			t.Errorf("after a second replay the users table has %d rows, digest %s; want %d, digest %s", againRows, againSum, rows, sum)
		}
	})
}

// withLakeStack runs a fresh `datamill dev` stack (its own Kafka,
// registry and PostgreSQL) on the S3 of s3env, with env added to the
// services' environment, and calls fn once it is ready.
func withLakeStack(t *testing.T, s3env, env []string, fn func(ctx context.Context, p *pipeline)) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(devBin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "services.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	environ := append(append(append(toolchainEnv(), "LOG_LEVEL=warn"), s3env...), env...)
	d := &devStack{
		flags:   devFlags{dir: dir, partitions: 3, readyTimeout: 90 * time.Second, secureKafka: true},
		env:     config.ToMap(append(append([]string{}, s3env...), env...)),
		environ: environ,
		out:     &lockedWriter{w: logs},
	}
	delete(d.env, "EXTRACTOR_FILES")
	if testkit.RealBroker() {
		resetRealBroker(t)
		useRealKafka(t, d)
	}
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		fn(ctx, &pipeline{t: t, eps: eps, svc: svc, kcfg: stackKafka(t, eps)})
		return nil
	}
	if err := d.run(t.Context()); err != nil {
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("stack: %v\nservices' log (end):\n%s", err, lastLines(string(b), 40))
	}
}

// A produce the broker refuses (records larger than the topic takes)
// stops the replay with the error and where the unsure records begin.
func TestReplayStopsOnAProduceError(t *testing.T) {
	ctx := t.Context()
	s3env := startS3(t)
	lcfg, err := readLakeConfig(config.ToMap(s3env))
	if err != nil {
		t.Fatal(err)
	}
	store, err := lake.OpenStore(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := lookUp(nil, io.Discard, "users")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 6, 0, 0, 0, time.UTC)
	writeLakeObject(t, store, ds.Raw, 1, 7, lakeEvent{7, at}, lakeEvent{8, at.Add(time.Second)})

	k := testkit.KafkaCluster(t)
	cl, err := kafka.NewClient(k.ClientConfig(kafka.Admin), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	small := "100"
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{"max.message.bytes": &small}, "raw.users")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	env := append(append(k.Env(kafka.Admin), "SCHEMA_REGISTRY_URL="+testkit.Registry(t)), s3env...)
	var out strings.Builder
	err = run(ctx, []string{"replay", "users", "--from-lake"}, env, &out, io.Discard)
	if err == nil || !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), "(unsure: partition 1 from offset 7)") {
		t.Fatalf("replay into a topic that takes 100 bytes = %v, want MESSAGE_TOO_LARGE and where the unsure records begin", err)
	}
	if !strings.Contains(out.String(), "stopped after publishing 0 of 2 users records") {
		t.Errorf("replay's summary after the error:\n%s", out.String())
	}
}

// The lake's keys may come from files, as for every service: through
// pkg/config, not a parser of the CLI's own.
func TestReplayReadsTheLakeKeysFromFiles(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret_key")
	if err := os.WriteFile(secret, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := readLakeConfig(map[string]string{
		"S3_ENDPOINT": "http://127.0.0.1:9000", "S3_ACCESS_KEY": "AK", "S3_SECRET_KEY_FILE": secret,
	})
	if err != nil {
		t.Fatalf("read the lake's configuration: %v", err)
	}
	if cfg.SecretKey != "from-a-file" {
		t.Errorf("secret key %q, want the file's content less its newline", cfg.SecretKey)
	}
}
