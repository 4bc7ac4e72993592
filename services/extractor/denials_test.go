package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

// logBuffer is a log the extractor writes while the test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// entries are the JSON lines logged so far.
func (b *logBuffer) entries(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(text) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("a log line is not JSON: %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// String is the whole log.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLoggedExtractor runs the extractor on a secure in-process broker,
// as the principal extractor, logging at info into the returned buffer.
func startLoggedExtractor(t *testing.T, extra ...string) (bases, *logBuffer) {
	t.Helper()
	k := testkit.SecureKafka(t)
	admin := k.ClientConfig(kafka.Admin)
	admin.Partitions = 3
	cl, err := kafka.NewClient(admin, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, admin, kafka.PipelineTopics("users")...); err != nil {
		t.Fatal(err)
	}
	addr, adminAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	env := append(k.Env("extractor"),
		"SCHEMA_REGISTRY_URL="+testkit.Registry(t), "HTTP_ADDR="+addr, "ADMIN_ADDR="+adminAddr,
		"LOG_LEVEL=info", "LOG_FORMAT=json", "EXTRACTOR_PUBLISH_TIMEOUT=5s")
	env = append(env, extra...)
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("extractor: %v", err)
		}
	})
	base := bases{ingest: "http://" + addr, admin: "http://" + adminAddr}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("extractor's /readyz not 200 within 30 s:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return base, logs
}

// TestSecurityIngestDenialsAreLoggedAndCounted makes each denial of the
// ingest endpoint (no token, a wrong one, a producer over its rate, a
// client stalled mid-body) and expects its answer, a warning in the
// extractor's log naming the producer (never a token) and the status, and
// its count in datamill_extractor_ingest_requests_total.
func TestSecurityIngestDenialsAreLoggedAndCounted(t *testing.T) {
	file := tokensFile(t, map[string]string{"crm": "crm-token", "shop": "shop-token"})
	base, logs := startLoggedExtractor(t, "EXTRACTOR_INGEST_TOKENS_FILE="+file,
		"EXTRACTOR_INGEST_RATE=0.1", "HTTP_READ_TIMEOUT=2s")
	url := base.ingest + "/v1/datasets/users/events"
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a wrong token", "crm-token-guessed", http.StatusUnauthorized},
		{"crm within its rate", "crm-token", http.StatusAccepted},
		{"crm over its rate", "crm-token", http.StatusTooManyRequests},
	} {
		if status, body := post(t, url, tc.token, `{"id":"1"}`); status != tc.status {
			t.Fatalf("%s: %d (%v), want %d", tc.name, status, body, tc.status)
		}
	}
	// shop sends its headers and part of its body, and stalls: it is cut
	// off after HTTP_READ_TIMEOUT with 408.
	host := strings.TrimPrefix(base.ingest, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/datasets/users/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer shop-token\r\nContent-Length: 1000\r\n\r\n[{\"id\":\"1\"}", host)
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the stalled client got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("the stalled client got %d, want 408", resp.StatusCode)
	}

	// The log: one warning a denial, with the producer and the status.
	want := []struct {
		msg, producer string
		status        int
	}{
		{"ingest request refused", "none", http.StatusUnauthorized},
		{"ingest request refused", "none", http.StatusUnauthorized},
		{"ingest request refused", "crm", http.StatusTooManyRequests},
		{"ingest body not read", "shop", http.StatusRequestTimeout},
	}
	var got []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; {
		got = got[:0]
		for _, e := range logs.entries(t) {
			if e["level"] == "warn" && strings.HasPrefix(e["msg"].(string), "ingest ") {
				got = append(got, e)
			}
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != len(want) {
		t.Fatalf("%d warnings of ingest, want %d:\n%s", len(got), len(want), logs)
	}
	for i, w := range want {
		e := got[i]
		if e["msg"] != w.msg || e["producer"] != w.producer || e["status"] != float64(w.status) || e["remote"] == nil {
			t.Errorf("warning %d = %v, want msg %q, producer %q, status %d and the client's address", i, e, w.msg, w.producer, w.status)
		}
	}
	for _, token := range []string{"crm-token", "shop-token", "Bearer"} {
		if strings.Contains(logs.String(), token) {
			t.Errorf("the log holds %q:\n%s", token, logs)
		}
	}

	// The counts, by producer and status.
	metrics := metricsOf(t, base.admin)
	for _, w := range []string{
		`datamill_extractor_ingest_requests_total{code="401",producer="none"} 2`,
		`datamill_extractor_ingest_requests_total{code="429",producer="crm"} 1`,
		`datamill_extractor_ingest_requests_total{code="408",producer="shop"} 1`,
	} {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}
