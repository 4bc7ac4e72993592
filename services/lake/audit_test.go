package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/services/lake/migrations"
)

const testAuditToken = "s3cr3t-audit-token"

// auditDB is a fresh database with the lake's migrations applied.
func auditDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 4})
	if err != nil {
		t.Fatalf("open the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	if _, err := pg.Migrate(t.Context(), pool, "lake", migrations.FS); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool
}

// startAudit serves an audit receiver storing into pool on a port of
// 127.0.0.1 until the test ends, and returns its URL.
func startAudit(t testing.TB, pool *pgxpool.Pool, maxBody int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	a := newAuditReceiver(AuditConfig{Token: testAuditToken, MaxBody: maxBody}, pool, zap.NewNop(), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveAudit(ctx, ln, a) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve audit: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

func post(t testing.TB, url, auth, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	_ = resp.Body.Close()
	return resp
}

func auditCount(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `select count(*) from lake_audit`).Scan(&n); err != nil {
		t.Fatalf("count lake_audit: %v", err)
	}
	return n
}

// minioEntry is an audit entry as MinIO posts it (trimmed).
const minioEntry = `{"version":"1","deploymentid":"d1","time":"2026-12-05T12:00:00.123456789Z","event":"","trigger":"incoming",` +
	`"api":{"name":"PutObject","bucket":"datamill-lake","object":"raw/dataset=users/x.parquet","status":"OK","statusCode":200,"rx":1234,"tx":0},` +
	`"remotehost":"127.0.0.1","requestID":"187E1","userAgent":"MinIO (linux; amd64) minio-go/v7.4.1",` +
	`"requestClaims":{"accessKey":"lake-sink"},"accessKey":"lake-sink"}`

func TestAuditReceiverRefusesRequestsWithoutTheToken(t *testing.T) {
	pool := auditDB(t)
	url := startAudit(t, pool, 1<<20)
	for name, auth := range map[string]string{
		"none":              "",
		"wrong token":       "Bearer nope",
		"no Bearer scheme":  testAuditToken,
		"prefix of token":   "Bearer " + testAuditToken[:5],
		"token and more":    "Bearer " + testAuditToken + "x",
		"basic credentials": "Basic " + testAuditToken,
	} {
		t.Run(name, func(t *testing.T) {
			resp := post(t, url, auth, minioEntry)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("Authorization %q: got %s (WWW-Authenticate %q), want 401 with a Bearer challenge",
					auth, resp.Status, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if n := auditCount(t, pool); n != 0 {
		t.Fatalf("refused requests stored %d rows, want 0", n)
	}
	if resp := post(t, url, "Bearer "+testAuditToken, minioEntry); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("with the token: got %s, want 204", resp.Status)
	}
	if n := auditCount(t, pool); n != 1 {
		t.Fatalf("with the token: %d rows, want 1", n)
	}
}

type auditRow struct {
	Time       time.Time
	API        string
	Bucket     string
	Object     string
	StatusCode int
	RequestID  string
	RemoteHost string
	AccessKey  string
	EntryEqual bool // the stored jsonb equals the entry posted
}

func TestAuditReceiverStoresEachEntryWhole(t *testing.T) {
	claimsOnly := `{"time":"2026-12-05T12:00:01Z","api":{"name":"GetObject","bucket":"b","object":"raw/a","statusCode":403},` +
		`"requestID":"R2","remotehost":"10.0.0.2","requestClaims":{"accessKey":"lake-reader"},"error":"Access Denied."}`
	t0, _ := time.Parse(time.RFC3339Nano, "2026-12-05T12:00:00.123456Z")
	put := auditRow{t0, "PutObject", "datamill-lake", "raw/dataset=users/x.parquet", 200, "187E1", "127.0.0.1", "lake-sink", true}
	get := auditRow{t0.Truncate(time.Second).Add(time.Second), "GetObject", "b", "raw/a", 403, "R2", "10.0.0.2", "lake-reader", true}
	tests := map[string]struct {
		body    string
		entries []string
		want    []auditRow
	}{
		"one entry, as MinIO posts it":  {minioEntry + "\n", []string{minioEntry}, []auditRow{put}},
		"a batch, newline separated":    {minioEntry + "\n" + claimsOnly + "\n", []string{minioEntry, claimsOnly}, []auditRow{put, get}},
		"access key from the claims":    {claimsOnly, []string{claimsOnly}, []auditRow{get}},
		"a batch without any separator": {minioEntry + claimsOnly, []string{minioEntry, claimsOnly}, []auditRow{put, get}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			pool := auditDB(t)
			url := startAudit(t, pool, 1<<20)
			if resp := post(t, url, "Bearer "+testAuditToken, tt.body); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("post %q: got %s, want 204", tt.body, resp.Status)
			}
			rows, err := pool.Query(t.Context(), `select time, api, bucket, object, status_code, request_id, remote_host, access_key, entry = ($1::text[])[id]::jsonb
				from lake_audit order by id`, tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			var got []auditRow
			for rows.Next() {
				var r auditRow
				if err := rows.Scan(&r.Time, &r.API, &r.Bucket, &r.Object, &r.StatusCode, &r.RequestID, &r.RemoteHost, &r.AccessKey, &r.EntryEqual); err != nil {
					t.Fatal(err)
				}
				r.Time = r.Time.UTC()
				got = append(got, r)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lake_audit after posting %q (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestAuditReceiverRefusesMalformedAndOversizedBodies(t *testing.T) {
	pool := auditDB(t)
	const maxBody = 4 << 10
	url := startAudit(t, pool, maxBody)
	tests := map[string]struct {
		body string
		want int
	}{
		"not JSON":                       {"hello", http.StatusBadRequest},
		"empty":                          {"", http.StatusBadRequest},
		"no api name":                    {`{"time":"2026-12-05T12:00:00Z"}`, http.StatusBadRequest},
		"no time":                        {`{"api":{"name":"PutObject"}}`, http.StatusBadRequest},
		"a good entry then a broken one": {minioEntry + "\n{\"time\":", http.StatusBadRequest},
		"a good entry then a non-entry":  {minioEntry + "\n[1,2]", http.StatusBadRequest},
		"larger than the cap":            {strings.Repeat(minioEntry+"\n", maxBody/len(minioEntry)+1), http.StatusRequestEntityTooLarge},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if resp := post(t, url, "Bearer "+testAuditToken, tt.body); resp.StatusCode != tt.want {
				t.Errorf("post %.60q: got %s, want %d", tt.body, resp.Status, tt.want)
			}
		})
	}
	if n := auditCount(t, pool); n != 0 {
		t.Errorf("refused bodies stored %d rows, want none (all or nothing)", n)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testAuditToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: got %s, want 405", resp.Status)
	}
}

func TestLakeAuditIsAppendOnlyEvenForItsOwner(t *testing.T) {
	pool := auditDB(t)
	if _, err := pool.Exec(t.Context(), `insert into lake_audit (time, api, entry) values (now(), 'PutObject', '{}')`); err != nil {
		t.Fatalf("insert: %v", err)
	}
	// The test database's user, datamill, is a superuser and owns the
	// table; a second role gets every privilege on it.
	const role = "lake_audit_writer"
	if _, err := pool.Exec(t.Context(), `create role `+role+`; grant all on lake_audit to `+role); err != nil {
		t.Fatalf("create role: %v", err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), `drop owned by `+role+`; drop role `+role)
	})
	for _, as := range []string{"owner", role} {
		for name, sql := range map[string]string{
			"update":              `update lake_audit set api = 'GetObject'`,
			"delete":              `delete from lake_audit`,
			"delete of no row":    `delete from lake_audit where false`,
			"truncate":            `truncate lake_audit`,
			"truncate cascade":    `truncate lake_audit cascade`,
			"update of no column": `update lake_audit set entry = entry where id < 0`,
		} {
			t.Run(as+"/"+name, func(t *testing.T) {
				conn, err := pool.Acquire(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Release()
				if as != "owner" {
					if _, err := conn.Exec(t.Context(), `set role `+role); err != nil {
						t.Fatal(err)
					}
					defer func() { _, _ = conn.Exec(context.Background(), `reset role`) }()
				}
				_, err = conn.Exec(t.Context(), sql)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "append-only") {
					t.Errorf("%s as %s: got %v, want the append-only refusal (42501)", sql, as, err)
				}
			})
		}
	}
	if n := auditCount(t, pool); n != 1 {
		t.Errorf("lake_audit has %d rows, want the 1 inserted", n)
	}
}

func TestAuditConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     AuditConfig
		wantErr string
	}{
		"off":                    {cfg: AuditConfig{MaxBody: 1 << 20}},
		"token":                  {cfg: AuditConfig{Addr: ":9300", Token: "t", MaxBody: 1 << 20}},
		"listening without one":  {cfg: AuditConfig{Addr: ":9300", MaxBody: 1 << 20}, wantErr: "LAKE_AUDIT_TOKEN or LAKE_AUDIT_TOKEN_FILE is required"},
		"a cap too small to use": {cfg: AuditConfig{MaxBody: 10}, wantErr: "LAKE_AUDIT_MAX_BODY_BYTES"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate(%+v) = %v, want error containing %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

// TestAuditTokenFromFile checks the token comes from LAKE_AUDIT_TOKEN_FILE
// through pkg/config, the one reader of secret files, trimmed of its newline.
func TestAuditTokenFromFile(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse[AuditConfig]([]string{"LAKE_AUDIT_ADDR=127.0.0.1:0", "LAKE_AUDIT_TOKEN_FILE=" + tokenFile})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if cfg.Token != "from-file" {
		t.Errorf("token %q, want from-file", cfg.Token)
	}
	if _, err := config.Parse[AuditConfig]([]string{"LAKE_AUDIT_TOKEN=t", "LAKE_AUDIT_TOKEN_FILE=" + tokenFile}); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("both the token and its file: got %v, want an error", err)
	}
}

// FuzzParseAudit checks the webhook's parser on any body: it never
// panics, and what it accepts are entries with a time and an API name,
// each kept as valid JSON.
func FuzzParseAudit(f *testing.F) {
	f.Add([]byte(minioEntry))
	f.Add([]byte(minioEntry + "\n" + minioEntry + "\n"))
	f.Add([]byte(`{"time":"2026-12-05T12:00:00Z","api":{"name":"GetObject"}}`))
	f.Add([]byte(`{"time":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		entries, err := parseAudit(body)
		if err != nil {
			if len(entries) != 0 {
				t.Fatalf("parseAudit(%q) returned %d entries with error %v", body, len(entries), err)
			}
			return
		}
		if len(entries) == 0 {
			t.Fatalf("parseAudit(%q) accepted a body of no entry", body)
		}
		for i, e := range entries {
			if e.Time.IsZero() || e.API.Name == "" || !json.Valid(e.raw) {
				t.Fatalf("parseAudit(%q): entry %d %+v lacks a time or an API name, or is not JSON", body, i, e)
			}
		}
	})
}

// TestAuditIsOffUnlessAsked parses the service's whole configuration: no
// LAKE_AUDIT_* variable is required, and the receiver is off without them.
func TestAuditIsOffUnlessAsked(t *testing.T) {
	base := []string{
		"KAFKA_BROKERS=127.0.0.1:1", "SCHEMA_REGISTRY_URL=http://127.0.0.1:2", "DATABASE_URL=postgres://u@127.0.0.1:3/d",
		"S3_ENDPOINT=http://127.0.0.1:4", "S3_ACCESS_KEY=a", "S3_SECRET_KEY=b",
	}
	cfg, err := config.Parse[settings](base)
	if err != nil {
		t.Fatalf("parse without LAKE_AUDIT_*: %v", err)
	}
	if cfg.Audit.Addr != "" {
		t.Errorf("LAKE_AUDIT_ADDR defaults to %q, want off", cfg.Audit.Addr)
	}
	_, err = config.Parse[settings](append(base, "LAKE_AUDIT_ADDR=127.0.0.1:0"))
	if err == nil || !strings.Contains(err.Error(), "LAKE_AUDIT_TOKEN") {
		t.Errorf("parse with LAKE_AUDIT_ADDR alone: got %v, want an error naming LAKE_AUDIT_TOKEN", err)
	}
}
