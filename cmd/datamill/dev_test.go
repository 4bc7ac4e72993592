package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/pkg/testkit"
)

func freePort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	return port
}

// startDev runs `datamill dev` with args on free ports and returns the
// endpoints it printed once it said ready, and a stop function returning
// run's error.
func startDev(t *testing.T, extra ...string) (map[string]string, []string, func() error) {
	t.Helper()
	args := append([]string{"dev", "--kafka-port", freePort(t), "--registry-port", freePort(t), "--http-base-port", "0", "--dir", t.TempDir()}, extra...)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, []string{"PATH=" + getenv("PATH"), "HOME=" + getenv("HOME"), "GOCACHE=" + getenv("GOCACHE"), "GOPATH=" + getenv("GOPATH"), "GOFLAGS=" + getenv("GOFLAGS")}, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	endpoints := map[string]string{}
	var metrics []string
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				close(ready)
			case strings.HasPrefix(line, "# "):
				if i := strings.Index(line, "http://"); i >= 0 {
					metrics = append(metrics, strings.Fields(line[i:])[0])
				}
			case strings.Contains(line, "=") && !strings.Contains(line, " "):
				k, v, _ := strings.Cut(line, "=")
				endpoints[k] = v
			}
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("datamill dev ended before ready: %v", err)
	case <-time.After(120 * time.Second):
		cancel()
		t.Fatal("datamill dev not ready within 120 s")
	}
	var stopped bool
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("datamill dev did not stop within 60 s")
			}
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return endpoints, metrics, stop
}

func TestDevStartsTheStackAndStopsCleanly(t *testing.T) {
	endpoints, metrics, stop := startDev(t)
	for _, k := range []string{"KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "DATABASE_URL"} {
		if endpoints[k] == "" {
			t.Fatalf("dev printed no %s: %v", k, endpoints)
		}
	}
	ctx := t.Context()

	// A Kafka client produces and consumes on the printed broker.
	cl, err := kgo.NewClient(kgo.SeedBrokers(endpoints["KAFKA_BROKERS"]), kgo.ConsumeTopics("raw.users"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "raw.users", Key: []byte("k"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce to raw.users: %v", err)
	}
	pollCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if fetches := cl.PollFetches(pollCtx); fetches.NumRecords() != 1 || string(fetches.Records()[0].Value) != "hello" {
		t.Fatalf("consumed %d records (%v), want the one produced", fetches.NumRecords(), fetches.Errors())
	}

	// So does kcat, a client of another implementation.
	kcatRoundTrip(t, endpoints["KAFKA_BROKERS"])

	// The registry answers.
	resp, err := http.Get(endpoints["SCHEMA_REGISTRY_URL"] + "/subjects")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /subjects = %v, %v", resp, err)
	}
	resp.Body.Close()

	// PostgreSQL answers.
	conn, err := pgx.Connect(ctx, endpoints["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
	conn.Close(ctx)

	// Every service is ready.
	if len(metrics) != len(services) {
		t.Fatalf("dev printed %d service endpoints, want %d: %v", len(metrics), len(services), metrics)
	}
	var addrs []string
	for _, m := range metrics {
		addr := strings.TrimSuffix(strings.TrimPrefix(m, "http://"), "/metrics")
		addrs = append(addrs, addr)
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/readyz = %v, %v; want 200", addr, resp, err)
			continue
		}
		resp.Body.Close()
	}

	if err := stop(); err != nil {
		t.Fatalf("dev after Ctrl-C: %v", err)
	}
	for _, addr := range append(addrs, endpoints["KAFKA_BROKERS"]) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens after dev stopped", addr)
		}
	}
}

func TestDevInfraOnly(t *testing.T) {
	endpoints, metrics, stop := startDev(t, "--infra-only")
	if len(metrics) != 0 {
		t.Errorf("--infra-only started services: %v", metrics)
	}
	if endpoints["KAFKA_BROKERS"] == "" || endpoints["DATABASE_URL"] == "" {
		t.Errorf("endpoints = %v", endpoints)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestUsageErrors(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"nope"}, nil, io.Discard, &out); err != errUsage || !strings.Contains(out.String(), `unknown command "nope"`) {
		t.Errorf("run(nope) = %v, %q", err, out.String())
	}
	if err := run(t.Context(), []string{"dev", "--kafka-port", "x"}, nil, io.Discard, io.Discard); err != errUsage {
		t.Errorf("run(dev --kafka-port x) = %v, want a usage error", err)
	}
	out.Reset()
	if err := run(t.Context(), []string{"help"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "dev") {
		t.Errorf("help = %v, %q", err, out.String())
	}
}

func getenv(k string) string { return os.Getenv(k) }

// kcatRoundTrip produces a record with kcat and reads it back. kcat is a
// test dependency (.ci/run installs it): missing, it skips locally and fails
// in CI.
func kcatRoundTrip(t *testing.T, brokers string) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is required in CI (apt-get install kcat)")
		}
		t.Log("kcat not installed: skipping the kcat round trip")
		return
	}
	produce := exec.CommandContext(t.Context(), "kcat", "-b", brokers, "-t", "clean.users", "-P", "-k", "k1")
	produce.Stdin = strings.NewReader("from-kcat\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v: %s", err, out)
	}
	out, err := exec.CommandContext(t.Context(), "kcat", "-b", brokers, "-t", "clean.users", "-C", "-e", "-q", "-o", "beginning").Output()
	if err != nil || strings.TrimSpace(string(out)) != "from-kcat" {
		t.Fatalf("kcat consume = %q, %v; want from-kcat", out, err)
	}
}
