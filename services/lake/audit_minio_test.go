package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/testkit"
)

// TestMinIOAuditsTheSinksWrites runs the audit receiver as MinIO's audit
// webhook: the sink's write of an object and the reader's refused write
// both end up in lake_audit, with who made them and how it went.
func TestMinIOAuditsTheSinksWrites(t *testing.T) {
	pool := auditDB(t)
	url := startAudit(t, pool, 1<<20)
	m := testkit.MinIOWith(t, testkit.MinIOOptions{AuditEndpoint: url, AuditToken: testAuditToken})
	open := func(c testkit.Credentials) *lake.Store {
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
	body := []byte("PAR1 audited object PAR1")
	key := lake.Key("raw", "users", "raw.users", 0, 0, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	if err := open(m.Sink).PutNew(t.Context(), key, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatalf("the sink's PutNew: %v", err)
	}
	refused := lake.Key("raw", "users", "raw.users", 1, 0, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	if err := open(m.Reader).PutNew(t.Context(), refused, bytes.NewReader(body), int64(len(body)), nil); err == nil {
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
