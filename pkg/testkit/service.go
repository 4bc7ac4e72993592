package testkit

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/config"
)

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Stack returns the environment of a service running on the test's
// embedded stack: KAFKA_BROKERS, SCHEMA_REGISTRY_URL and, with db,
// DATABASE_URL.
func Stack(t testing.TB, db bool) []string {
	t.Helper()
	env := []string{
		"KAFKA_BROKERS=" + strings.Join(Kafka(t), ","),
		"SCHEMA_REGISTRY_URL=" + Registry(t),
		"LOG_LEVEL=warn",
	}
	if db {
		env = append(env, "DATABASE_URL="+Postgres(t))
	}
	return env
}

// Run is the signature of a service's run function.
type Run func(ctx context.Context, args, environ []string, stdout io.Writer) error

// ServeUntilReady runs a service's run with environ plus a free HTTP_ADDR,
// waits until its /readyz answers 200, then ends its context and checks
// that run returns nil: the service starts, becomes ready and stops
// cleanly.
func ServeUntilReady(t *testing.T, run Run, environ []string) {
	t.Helper()
	addr := FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, append(environ, "HTTP_ADDR="+addr), io.Discard) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/readyz not 200 within 60 s (last: %v)", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of shutdown")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Errorf("%s still serves after shutdown", addr)
	}
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
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables(cfg) {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
}
