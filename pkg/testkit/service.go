package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/embedded"
)

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Stack returns the environment of a process on the test's embedded
// stack: the admin's Kafka variables on a secure broker (KafkaEnv of
// Kafka; As switches them to a service's), SCHEMA_REGISTRY_URL and, with
// db, DATABASE_URL.
func Stack(t testing.TB, db bool) []string {
	t.Helper()
	env := append(KafkaEnv(Kafka(t)),
		"SCHEMA_REGISTRY_URL="+Registry(t),
		"LOG_LEVEL=warn",
	)
	if db {
		env = append(env, "DATABASE_URL="+Postgres(t))
	}
	return env
}

// Run is the signature of a service's run function.
type Run func(ctx context.Context, args, environ []string, stdout io.Writer) error

// Service is a service's run function running in a test.
type Service struct {
	// Addr is the host:port its admin address bound, where /metrics,
	// /healthz and /readyz answer.
	Addr string
	// API is the host:port of its own API (the extractor's ingest, on
	// HTTP_ADDR); "" for a service without one.
	API  string
	log  *serviceLog
	stop context.CancelFunc
	done chan error
}

// Serve runs a service's run with environ plus ADMIN_ADDR=127.0.0.1:0
// (and HTTP_ADDR=127.0.0.1:0, which only a service with an API reads) and
// waits until its /readyz answers 200 (see Start). The service is stopped
// in t.Cleanup unless Stop was called.
func Serve(t testing.TB, run Run, environ []string) *Service {
	t.Helper()
	s := Start(t, run, environ)
	s.AwaitReady(t)
	return s
}

// Start runs a service's run with environ plus ADMIN_ADDR=127.0.0.1:0 and
// HTTP_ADDR=127.0.0.1:0 and returns once it serves, with the addresses its
// admin server and, for a service with one, its API bound, learnt from the
// "starting" line the service logs. The service is stopped
// in t.Cleanup unless Stop was called.
func Start(t testing.TB, run Run, environ []string) *Service {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &Service{log: &serviceLog{addrs: make(chan startingAddrs, 1)}, stop: cancel, done: make(chan error, 1)}
	// The address is read from the log, so the log must be JSON and at
	// least at info; later variables win over the caller's.
	env := append(slices.Clone(environ), "ADMIN_ADDR=127.0.0.1:0", "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json", "LOG_LEVEL=info")
	go func() { s.done <- run(ctx, nil, env, s.log) }()
	t.Cleanup(func() { _ = s.Stop(t) })
	select {
	case a := <-s.log.addrs:
		s.Addr, s.API = a.Admin, a.HTTP
	case err := <-s.done:
		s.done <- err
		t.Fatalf("run returned before it served: %v\n%s", err, s.log.tail())
	case <-time.After(60 * time.Second):
		t.Fatalf("no admin address logged within 60 s:\n%s", s.log.tail())
	}
	return s
}

// Ready returns whether the service's /readyz answers 200, and its body.
func (s *Service) Ready(t testing.TB) (bool, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr + "/readyz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK, strings.TrimSpace(string(body))
}

// AwaitReady waits up to 60 s until the service's /readyz answers 200.
func (s *Service) AwaitReady(t testing.TB) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ready, last := s.Ready(t)
		if ready {
			return
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("run returned before it was ready: %v\n%s", err, s.log.tail())
		case <-deadline:
			t.Fatalf("GET http://%s/readyz not 200 within 60 s (last: %s)\n%s", s.Addr, last, s.log.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the service's context and returns run's error; it fails the
// test when run does not return within 30 s.
func (s *Service) Stop(t testing.TB) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return within 30 s of shutdown:\n%s", s.log.tail())
		return nil
	}
}

// ServeUntilReady serves a service (see Serve) until it is ready, then
// ends its context and checks that run returns nil and that its telemetry
// server is closed: the service starts, becomes ready and stops cleanly.
func ServeUntilReady(t *testing.T, run Run, environ []string) {
	t.Helper()
	s := Serve(t, run, environ)
	if err := s.Stop(t); err != nil {
		t.Fatalf("run after shutdown: %v\n%s", err, s.log.tail())
	}
	if resp, err := http.Get("http://" + s.Addr + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("%s still serves after shutdown", s.Addr)
	}
}

// serviceLog is a service's stdout in a test: it keeps the last lines for
// failure messages and reports the addresses of the first line naming an
// admin_addr, the "starting" line.
type serviceLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	addrs   chan startingAddrs
	found   bool
}

// startingAddrs are the addresses a service's "starting" line names.
type startingAddrs struct {
	Admin string `json:"admin_addr"`
	HTTP  string `json:"http_addr"`
}

func (l *serviceLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if len(l.lines) == 20 {
			l.lines = l.lines[1:]
		}
		l.lines = append(l.lines, line)
		var entry startingAddrs
		if !l.found && json.Unmarshal([]byte(line), &entry) == nil && entry.Admin != "" {
			l.found = true
			l.addrs <- entry
		}
	}
}

func (l *serviceLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Documented fails the test when README.md at the repository root does not
// name every environment variable of cfg, a service's configuration.
func Documented(t *testing.T, cfg any) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		if parent := filepath.Dir(dir); parent != dir {
			dir = parent
			continue
		}
		t.Fatal("no go.work above the test's directory")
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md")) // #nosec G304 -- the repository's README
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables(cfg) {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
}

// WaitMetric waits up to 30 s until the /metrics page served on addr has
// the series line "<series> <want>", e.g.
// `datamill_stage_records_in_total{dataset="users",stage="cleaner"} 3`, and
// fails the test with the page's matching lines when it does not.
func WaitMetric(t testing.TB, addr, series, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	name, _, _ := strings.Cut(series, "{")
	var seen []string
	for {
		seen = seen[:0]
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			for line := range strings.Lines(string(body)) {
				line = strings.TrimSpace(line)
				if line == series+" "+want {
					return
				}
				if strings.HasPrefix(line, name) {
					seen = append(seen, line)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s never was %s within 30 s (%v); saw:\n%s", series, want, err, strings.Join(seen, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
