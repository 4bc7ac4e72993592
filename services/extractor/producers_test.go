package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

// tokensFile writes a tokens file of the producers of tokens, by id, and
// returns its path.
func tokensFile(t testing.TB, tokens map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# producers of the ingest endpoint\n\n")
	for id, token := range tokens {
		sum := sha256.Sum256([]byte(token))
		b.WriteString(id + " " + hex.EncodeToString(sum[:]) + "\n")
	}
	path := filepath.Join(t.TempDir(), "ingest-tokens")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// metricsOf returns the extractor's /metrics text.
func metricsOf(t testing.TB, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Each producer of the tokens file, and the one of EXTRACTOR_HTTP_TOKEN
// (id "default"), is taken and counted under its id; a wrong token is
// answered 401 and counted under "none"; no token shows in the metrics.
func TestIngestTakesEachProducer(t *testing.T) {
	file := tokensFile(t, map[string]string{"crm": "crm-token", "shop": "shop-token"})
	base, k, _ := startExtractor(t, "EXTRACTOR_INGEST_TOKENS_FILE="+file, "EXTRACTOR_HTTP_TOKEN=s3cret")
	url := base.ingest + "/v1/datasets/users/events"
	tests := map[string]struct {
		token  string
		status int
	}{
		"crm":           {"crm-token", 202},
		"shop":          {"shop-token", 202},
		"default":       {"s3cret", 202},
		"hash as token": {hashOf("crm-token"), 401},
		"wrong":         {"crm-token2", 401},
		"none":          {"", 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if status, body := post(t, url, tc.token, `{"id":"1"}`); status != tc.status {
				t.Fatalf("token %q: status %d (%v), want %d", tc.token, status, body, tc.status)
			}
		})
	}
	testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 3)
	metrics := metricsOf(t, base.admin)
	for _, want := range []string{
		`datamill_extractor_ingest_requests_total{code="202",producer="crm"} 1`,
		`datamill_extractor_ingest_requests_total{code="202",producer="shop"} 1`,
		`datamill_extractor_ingest_requests_total{code="202",producer="default"} 1`,
		`datamill_extractor_ingest_requests_total{code="401",producer="none"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, token := range []string{"crm-token", "shop-token", "s3cret"} {
		if strings.Contains(metrics, token) {
			t.Errorf("metrics show the token %q", token)
		}
	}
}

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// A producer over its rate is answered 429 with Retry-After in whole
// seconds, rounded up, and nothing of its body is published; another
// producer is not held back by it.
func TestIngestLimitsEachProducersRate(t *testing.T) {
	file := tokensFile(t, map[string]string{"crm": "crm-token", "shop": "shop-token"})
	// 0.1 requests a second: a burst of 1, and the next request 10 s on.
	base, k, registry := startExtractor(t, "EXTRACTOR_INGEST_TOKENS_FILE="+file, "EXTRACTOR_INGEST_RATE=0.1")
	url := base.ingest + "/v1/datasets/users/events"
	start := time.Now()
	if status, body := post(t, url, "crm-token", `{"id":"1"}`); status != 202 {
		t.Fatalf("first request: %d (%v), want 202", status, body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{"id":"2"}`))
	req.Header.Set("Authorization", "Bearer crm-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The wait left, 10 s less the time since the first request, rounded
	// up: 10 when that took less than a second.
	least := int(math.Ceil(10 - time.Since(start).Seconds()))
	after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || err != nil || after < least || after > 10 {
		t.Fatalf("second request: %d, Retry-After %q; want 429 with Retry-After from %d to 10", resp.StatusCode, resp.Header.Get("Retry-After"), least)
	}
	if status, body := post(t, url, "shop-token", `{"id":"3"}`); status != 202 {
		t.Fatalf("another producer: %d (%v), want 202", status, body)
	}
	recs := testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 2)
	for _, raw := range rawUsers(t, registry, recs) {
		if raw.ID == nil || *raw.ID == "2" {
			t.Errorf("raw.users holds %+v, a record of the request over the rate", raw)
		}
	}
	if want := `datamill_extractor_ingest_requests_total{code="429",producer="crm"} 1`; !strings.Contains(metricsOf(t, base.admin), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// A malformed tokens file stops the start, naming the file and the line.
func TestMalformedTokensFileStopsTheStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ingest-tokens")
	if err := os.WriteFile(path, []byte("# producers\ncrm "+hashOf("crm-token")+"\nshop shop-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Without the check the start goes on, to a broker that is not there.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := run(ctx, nil, []string{
		"KAFKA_BROKERS=127.0.0.1:1", "SCHEMA_REGISTRY_URL=http://127.0.0.1:1", "HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0",
		"LOG_LEVEL=error", "EXTRACTOR_INGEST_TOKENS_FILE=" + path,
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path+":3:") || strings.Contains(err.Error(), "shop-token") {
		t.Fatalf("run with a malformed tokens file = %v, want an error naming %s:3 and not the token", err, path)
	}
}

// Without tokens the ingest endpoint refuses to start on an address other
// than loopback, naming it and both ways out, unless told it is open.
func TestOpenIngestOnlyOnLoopbackOrWhenAsked(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := run(ctx, nil, []string{
			"KAFKA_BROKERS=127.0.0.1:1", "SCHEMA_REGISTRY_URL=http://127.0.0.1:1", "HTTP_ADDR=" + addr, "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=error",
		}, io.Discard)
		cancel()
		for _, want := range []string{`"` + addr + `"`, "EXTRACTOR_INGEST_TOKENS_FILE", "EXTRACTOR_INGEST_OPEN=true"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("run on %s without tokens = %v, want an error with %s", addr, err, want)
			}
		}
	}
	tests := map[string][]string{
		"open on every interface": {"HTTP_ADDR=0.0.0.0", "EXTRACTOR_INGEST_OPEN=true"},
		"loopback":                nil,
	}
	for name, extra := range tests {
		t.Run(name, func(t *testing.T) {
			base, _, _ := startExtractor(t, extra...)
			if status, body := post(t, base.ingest+"/v1/datasets/users/events", "", `{"id":"1"}`); status != 202 {
				t.Errorf("%d (%v), want 202", status, body)
			}
		})
	}
}
