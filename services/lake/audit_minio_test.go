package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"

	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// TestMinIOAuditsTheSinksWrites runs the audit receiver as MinIO's audit
// webhook: the sink's write of an object and the reader's refused write
// both end up in lake_audit, with who made them and how it went.
func TestMinIOAuditsTheSinksWrites(t *testing.T) {
	pool := auditDB(t)
	url := startAudit(t, pool, 1<<20)
	m := testkit.MinIOWith(t, testkit.MinIOOptions{AuditEndpoint: url, AuditToken: testAuditToken})
	body := []byte("PAR1 audited object PAR1")
	key := lake.Key("raw", "users", "raw.users", "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7", 0, 0, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	if err := minioStore(t, m, m.Sink).PutNew(t.Context(), key, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatalf("the sink's PutNew: %v", err)
	}
	refused := lake.Key("raw", "users", "raw.users", "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7", 1, 0, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	if err := minioStore(t, m, m.Reader).PutNew(t.Context(), refused, bytes.NewReader(body), int64(len(body)), nil); err == nil {
		t.Fatal("the reader's PutNew succeeded, want it refused")
	}

	want := []struct {
		object, accessKey string
		status            int
	}{
		{key, m.Sink.AccessKey, 200},
		{refused, m.Reader.AccessKey, 403},
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for _, w := range want {
		for {
			var n int
			err := pool.QueryRow(t.Context(), `select count(*) from lake_audit
				where api = 'PutObject' and bucket = $1 and object = $2 and access_key = $3 and status_code = $4
				and entry->'api'->>'name' = 'PutObject' and entry->>'accessKey' = access_key
				and abs(extract(epoch from (entry->>'time')::timestamptz - time)) < 0.001`,
				m.Bucket, w.object, w.accessKey, w.status).Scan(&n)
			if err != nil {
				t.Fatalf("query lake_audit: %v", err)
			}
			if n == 1 {
				break
			}
			if n > 1 {
				t.Fatalf("lake_audit has %d PutObject rows of %s by %s, want 1:\n%s", n, w.object, w.accessKey, auditDump(t, pool))
			}
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("no PutObject row of %s by %s with status %d in lake_audit after 30 s; it holds:\n%s",
					w.object, w.accessKey, w.status, auditDump(t, pool))
			}
		}
	}
}

// auditDump lists lake_audit's rows, for a failure's message.
func auditDump(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `select api, bucket, object, access_key, status_code from lake_audit order by id`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var api, bucket, object, key string
		var status int
		if err := rows.Scan(&api, &bucket, &object, &key, &status); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "  %s %s/%s by %q: %d\n", api, bucket, object, key, status)
	}
	return b.String()
}

// TestMinIOSinkArchivesARawTopicAndAuditsItsWrites runs the lake service
// on the embedded stack with its lake on MinIO (the sink's credentials,
// TLS with the CA file) and its own audit receiver as MinIO's webhook:
// every record of raw.users lands in exactly one encrypted object, and
// lake_audit shows the sink writing each object.
func TestMinIOSinkArchivesARawTopicAndAuditsItsWrites(t *testing.T) {
	if testkit.RealBroker() {
		t.Fatal("this test uses the fixed topic names of the users dataset: run it on the embedded broker")
	}
	auditAddr := testkit.FreeAddr(t)
	m := testkit.MinIOWith(t, testkit.MinIOOptions{AuditEndpoint: "http://" + auditAddr + "/", AuditToken: testAuditToken})
	env := append(testkit.Stack(t, true), m.Env(m.Sink)...)
	env = append(env, "DATASETS=users", "LAKE_MAX_RECORDS=7", "LAKE_FLUSH_INTERVAL=200ms",
		"LAKE_AUDIT_ADDR="+auditAddr, "LAKE_AUDIT_TOKEN="+testAuditToken)
	vars := config.ToMap(env)
	ctx := t.Context()

	kcfg := testkit.KafkaConfig(t, vars, 3)
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, kcfg, kafka.PipelineTopics("users")...); err != nil {
		t.Fatal(err)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: vars["SCHEMA_REGISTRY_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[users.Raw](ctx, reg, "raw.users", schemas.MustSchema("users/raw"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	produced := map[string]string{} // partition/offset -> event id
	for i := range n {
		id := fmt.Sprint(i)
		rec := users.Raw{ID: &id, EventID: fmt.Sprintf("ev-%d", i), Source: "test", IngestedAt: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
		b, err := codec.Encode(&rec)
		if err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Topic: "raw.users", Key: []byte(id), Value: b}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		produced[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = rec.EventID
	}

	testkit.Serve(t, run, testkit.As(env, "lake"))

	reader := minioStore(t, m, m.Reader)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	var archived map[string]string
	var keys []string
	for {
		archived, keys = readLake(t, reader)
		if len(archived) >= n {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after 60 s the lake holds %d of the %d records, in %v", len(archived), n, keys)
		}
	}
	if diff := cmp.Diff(produced, archived); diff != "" {
		t.Errorf("the lake's events by partition/offset differ from the topic's (-topic +lake):\n%s", diff)
	}
	for _, key := range keys {
		o, err := reader.Head(ctx, key)
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		if !o.Encrypted {
			t.Errorf("%s: not encrypted at rest", key)
		}
	}

	pool, err := pg.Open(ctx, pg.Config{URL: vars["DATABASE_URL"], MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, key := range keys {
		for {
			var rows int
			if err := pool.QueryRow(ctx, `select count(*) from lake_audit where api = 'PutObject' and bucket = $1
				and object = $2 and access_key = $3 and status_code = 200`, m.Bucket, key, m.Sink.AccessKey).Scan(&rows); err != nil {
				t.Fatalf("query lake_audit: %v", err)
			}
			if rows == 1 {
				break
			}
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("lake_audit has %d PutObject rows of %s by the sink, want 1; it holds:\n%s", rows, key, auditDump(t, pool))
			}
		}
	}
}

// minioStore opens the lake's store on m's bucket with credentials c.
func minioStore(t testing.TB, m *testkit.MinIOServer, c testkit.Credentials) *lake.Store {
	t.Helper()
	cfg := lake.Config{
		Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: "raw", Region: "us-east-1",
		AccessKey: c.AccessKey, SecretKey: c.SecretKey, CAFile: m.CAFile, SSE: "s3",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	s, err := lake.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// readLake reads every object of the users dataset: the event id of each
// row by partition/offset (failing on one found twice), and the keys.
func readLake(t testing.TB, s *lake.Store) (map[string]string, []string) {
	t.Helper()
	events := map[string]string{}
	var keys []string
	for o, err := range s.List(t.Context(), lake.DatasetPrefix("raw", "users")) {
		if err != nil {
			t.Fatalf("list the lake: %v", err)
		}
		keys = append(keys, o.Key)
		r, size, err := s.Get(t.Context(), o.Key)
		if err != nil {
			t.Fatalf("get %s: %v", o.Key, err)
		}
		f, err := lake.Open(r, size)
		if err != nil {
			t.Fatalf("open %s: %v", o.Key, err)
		}
		for row, err := range f.Rows() {
			if err != nil {
				t.Fatalf("read %s: %v", o.Key, err)
			}
			at := fmt.Sprintf("%d/%d", row.Envelope.Partition, row.Envelope.Offset)
			if _, dup := events[at]; dup {
				t.Errorf("%s: event at %s is in two objects", o.Key, at)
			}
			events[at], _ = row.Record["event_id"].(string)
		}
		if c, ok := r.(io.Closer); ok {
			_ = c.Close()
		}
	}
	return events, keys
}
