package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/service"
)

// AuditConfig is the audit receiver: an HTTP endpoint for the S3 server's
// audit webhook (MinIO's MINIO_AUDIT_WEBHOOK_*), whose entries go into the
// append-only table lake_audit.
type AuditConfig struct {
	// Addr is where the receiver listens; empty turns it off.
	Addr string `env:"LAKE_AUDIT_ADDR" envDefault:""`
	// Token is the bearer token every request must carry, required when
	// Addr is set; a secret, so config.Parse reads LAKE_AUDIT_TOKEN_FILE.
	Token string `env:"LAKE_AUDIT_TOKEN" envDefault:"" secret:"true"`
	// MaxBody caps a request's body, in bytes.
	MaxBody int64 `env:"LAKE_AUDIT_MAX_BODY_BYTES" envDefault:"4194304"`
}

// Validate checks the receiver has a token when it listens.
func (c *AuditConfig) Validate() error {
	var errs []error
	if c.Addr != "" && c.Token == "" {
		errs = append(errs, errors.New("LAKE_AUDIT_ADDR is set: LAKE_AUDIT_TOKEN or LAKE_AUDIT_TOKEN_FILE is required (the webhook's bearer token)"))
	}
	if c.MaxBody < 1<<10 {
		errs = append(errs, fmt.Errorf("LAKE_AUDIT_MAX_BODY_BYTES is %d, want at least 1024", c.MaxBody))
	}
	return errors.Join(errs...)
}

// runAudit serves the audit receiver of cfg until ctx ends, storing into
// pool (the lake's migrations applied); it returns at once when cfg.Addr
// is empty.
func runAudit(ctx context.Context, p *service.Process, cfg AuditConfig, pool *pgxpool.Pool) error {
	if cfg.Addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("audit receiver: listen on LAKE_AUDIT_ADDR %s: %w", cfg.Addr, err)
	}
	a := newAuditReceiver(cfg, pool, p.Log.Named("audit"), p.Telemetry.Registry())
	p.Log.Info("audit receiver listening", zap.String("addr", ln.Addr().String()))
	return serveAudit(ctx, ln, a)
}

// serveAudit serves h on ln until ctx ends, then shuts down, letting the
// requests in flight finish for a few seconds.
func serveAudit(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("audit receiver: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("audit receiver: shut down: %w", err)
	}
	return nil
}

// auditReceiver is the webhook's handler: each request is one or more
// audit entries, JSON objects one after the other (MinIO posts one per
// request, or newline-separated batches), stored all or none.
type auditReceiver struct {
	log     *zap.Logger
	pool    *pgxpool.Pool
	token   [sha256.Size]byte // of the configured token
	maxBody int64
	stored  prometheus.Counter
	refused *prometheus.CounterVec
}

func newAuditReceiver(cfg AuditConfig, pool *pgxpool.Pool, log *zap.Logger, reg prometheus.Registerer) *auditReceiver {
	a := &auditReceiver{
		log: log, pool: pool, token: sha256.Sum256([]byte(cfg.Token)), maxBody: cfg.MaxBody,
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "datamill_lake_audit_entries_total",
			Help: "Audit entries of the S3 server stored in lake_audit.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_lake_audit_refused_total",
			Help: "Audit webhook requests refused, by reason (unauthorized, too_large, malformed, database).",
		}, []string{"reason"}),
	}
	reg.MustRegister(a.stored, a.refused)
	return a
}

// authorized reports whether r carries the token, compared in constant
// time on their hashes so that neither its length nor its bytes leak
// through the answer's timing.
func (a *auditReceiver) authorized(r *http.Request) bool {
	given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1 && ok
}

func (a *auditReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST audit entries", http.StatusMethodNotAllowed)
		return
	}
	if !a.authorized(r) {
		a.refused.WithLabelValues("unauthorized").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="datamill lake audit"`)
		http.Error(w, "missing or wrong bearer token (Authorization: Bearer <LAKE_AUDIT_TOKEN>)", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		a.refused.WithLabelValues("too_large").Inc()
		http.Error(w, fmt.Sprintf("body larger than %d bytes (LAKE_AUDIT_MAX_BODY_BYTES); nothing was stored", a.maxBody), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		a.refused.WithLabelValues("malformed").Inc()
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	entries, err := parseAudit(body)
	if err != nil {
		a.refused.WithLabelValues("malformed").Inc()
		http.Error(w, err.Error()+"; nothing was stored", http.StatusBadRequest)
		return
	}
	if err := a.store(r.Context(), entries); err != nil {
		a.refused.WithLabelValues("database").Inc()
		a.log.Warn("audit entries not stored; the server will send them again", zap.Int("batch_size", len(entries)), zap.Error(err))
		http.Error(w, "entries not stored; send them again", http.StatusServiceUnavailable)
		return
	}
	a.stored.Add(float64(len(entries)))
	w.WriteHeader(http.StatusNoContent)
}

// auditEntry is what lake_audit's columns take from an audit entry; the
// entry itself is kept whole beside them.
type auditEntry struct {
	Time time.Time `json:"time"`
	API  struct {
		Name       string `json:"name"`
		Bucket     string `json:"bucket"`
		Object     string `json:"object"`
		StatusCode int    `json:"statusCode"`
	} `json:"api"`
	RequestID  string `json:"requestID"`
	RemoteHost string `json:"remotehost"`
	AccessKey  string `json:"accessKey"`
	ParentUser string `json:"parentUser"`
	Claims     struct {
		AccessKey string `json:"accessKey"`
	} `json:"requestClaims"`

	raw json.RawMessage
}

// parseAudit reads the entries of a body: JSON objects one after another.
// An entry without a time or an API name is refused.
func parseAudit(body []byte) ([]auditEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var entries []auditEntry
	for i := 1; ; i++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		var e auditEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if e.Time.IsZero() || e.API.Name == "" {
			return nil, fmt.Errorf("entry %d: no time or api.name: not an audit entry", i)
		}
		if e.AccessKey == "" {
			e.AccessKey = e.Claims.AccessKey
		}
		e.raw = raw
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, errors.New("no audit entry in the body")
	}
	return entries, nil
}

// store inserts entries into lake_audit, all or none (one COPY).
func (a *auditReceiver) store(ctx context.Context, entries []auditEntry) error {
	rows := make([][]any, len(entries))
	for i, e := range entries {
		rows[i] = []any{
			e.Time, e.API.Name, e.API.Bucket, e.API.Object, e.API.StatusCode,
			e.RequestID, e.RemoteHost, e.AccessKey, e.ParentUser, e.raw,
		}
	}
	_, err := a.pool.CopyFrom(ctx, pgx.Identifier{"lake_audit"},
		[]string{"time", "api", "bucket", "object", "status_code", "request_id", "remote_host", "access_key", "parent_user", "entry"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("insert %d audit entries: %w", len(entries), err)
	}
	return nil
}
