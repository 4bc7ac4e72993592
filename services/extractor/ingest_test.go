package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
)

// bases are a running extractor's base URLs: its ingest endpoint's
// (HTTP_ADDR) and its admin address's (ADMIN_ADDR: /metrics, /readyz).
type bases struct{ ingest, admin string }

// startExtractor runs the extractor on its own in-process broker and
// returns its base URLs and the broker.
func startExtractor(t *testing.T, extra ...string) (bases, *embedded.Kafka, string) {
	t.Helper()
	return startExtractorUntil(t, "/readyz", extra...)
}

// startExtractorUntil starts the extractor as startExtractor does, and
// waits until its path on the admin address answers 200: /readyz, or
// /metrics for one that may start unready.
func startExtractorUntil(t *testing.T, path string, extra ...string) (bases, *embedded.Kafka, string) {
	t.Helper()
	k := testkit.KafkaCluster(t)
	registry := testkit.Registry(t)
	kcfg := k.ClientConfig(kafka.Admin)
	kcfg.Partitions = 3
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, kcfg, kafka.PipelineTopics("users")...); err != nil {
		t.Fatal(err)
	}
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	// HTTP_ADDR=0.0.0.0 in extra listens on every interface, at the port
	// of addr.
	for i, e := range extra {
		if e == "HTTP_ADDR=0.0.0.0" {
			_, port, _ := net.SplitHostPort(addr)
			extra[i] = "HTTP_ADDR=0.0.0.0:" + port
		}
	}
	env := append(append(k.Env("extractor"), "SCHEMA_REGISTRY_URL="+registry,
		"HTTP_ADDR="+addr, "ADMIN_ADDR="+admin, "LOG_LEVEL=error", "EXTRACTOR_PUBLISH_TIMEOUT=2s",
	), extra...)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("extractor: %v", err)
		}
	})
	base := bases{ingest: "http://" + addr, admin: "http://" + admin}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base.admin + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("extractor's %s not 200 within 30 s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return base, k, registry
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestIngestEndpoint(t *testing.T) {
	base, k, registry := startExtractor(t, "EXTRACTOR_HTTP_TOKEN=s3cret", "EXTRACTOR_MAX_BODY_BYTES=2048")
	url := base.ingest + "/v1/datasets/users/events"
	tests := map[string]struct {
		url, token, body string
		status           int
		message          string
	}{
		"array":          {url, "s3cret", `[{"id":"1","age":" 31 ","country":"FR"},{"id":2,"email":"a@b.org"}]`, 202, ""},
		"ndjson":         {url, "s3cret", "{\"id\":\"3\"}\n{\"id\":\"4\",\"city\":\"Lyon\"}\n", 202, ""},
		"object":         {url, "s3cret", `{"id":"5"}`, 202, ""},
		"missing token":  {url, "", `{"id":"6"}`, 401, "bearer token"},
		"wrong token":    {url, "nope", `{"id":"6"}`, 401, "bearer token"},
		"wrong dataset":  {base.ingest + "/v1/datasets/jobs/events", "s3cret", `{"id":"6"}`, 404, `unknown dataset "jobs"`},
		"malformed JSON": {url, "s3cret", `[{"id":"6"},{"id":]`, 400, "item 2"},
		"bad ndjson":     {url, "s3cret", "{\"id\":\"6\"}\n{\"id\":\n", 400, "line 2"},
		"unknown field":  {url, "s3cret", `[{"id":"6"},{"id":"7","shoe":"44"}]`, 400, "unknown fields shoe"},
		"nested value":   {url, "s3cret", `{"id":{"x":1}}`, 400, `line 1: field "id" holds a nested object`},
		"two objects":    {url, "s3cret", `{"id":"6"}{"id":"7"}`, 400, "line 1: data after the JSON object"},
		"two arrays":     {url, "s3cret", `[{"id":"6"}][{"id":"7"}]`, 400, "end: data after the end of the JSON array"},
		"colliding keys": {url, "s3cret", `{"id":"6","ID":"7"}`, 400, `line 1: fields "id" and "ID" are both the field "id"`},
		"binary":         {url, "s3cret", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 400, "start: not a text file (gzip data"},
		"empty":          {url, "s3cret", ``, 400, "empty body"},
		"oversize":       {url, "s3cret", `[` + strings.Repeat(`{"id":"9"},`, 300) + `{"id":"9"}]`, 413, "larger than 2048 bytes"},
	}
	accepted := 0
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := post(t, tc.url, tc.token, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%v), want %d", status, body, tc.status)
			}
			if tc.status == 202 {
				accepted += int(body["accepted"].(float64))
				return
			}
			if msg, _ := body["error"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("error %q, want it to mention %q", msg, tc.message)
			}
		})
	}
	if accepted != 5 {
		t.Fatalf("accepted %d records, want 5", accepted)
	}

	// Exactly the accepted records are on raw.users: nothing partial from
	// the refused bodies.
	recs := testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 5)
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := serde.NewKeyCodec(t.Context(), reg, "raw.users")
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range rawUsers(t, registry, recs) {
		r := recs[i]
		if k, err := keys.Decode(r.Key); err != nil || raw.Source != "http" || raw.EventID == "" || raw.ID == nil || string(k) != *raw.ID {
			t.Errorf("raw record %+v keyed %q", raw, r.Key)
		}
		if *raw.ID == "1" && (raw.Age == nil || *raw.Age != " 31 ") {
			t.Errorf("the source value was not kept as it came: %+v", raw)
		}
	}
}

func TestIngestAnswers503WhenKafkaIsDown(t *testing.T) {
	base, k, _ := startExtractor(t)
	k.Close()
	status, body := post(t, base.ingest+"/v1/datasets/users/events", "", `{"id":"1"}`)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%v), want 503", status, body)
	}
	if msg, _ := body["error"].(string); !strings.Contains(msg, "nothing was published") {
		t.Errorf("error %q", msg)
	}
}

// A wrong token is answered 401 with a WWW-Authenticate challenge, the
// same whatever its length; a request past the cap of bodies read at once
// is answered 503 with Retry-After before its body is read, and taken
// once a body is done; a client that stalls mid-body is cut off after
// HTTP_READ_TIMEOUT, freeing its slot.
func TestIngestBodiesAreCappedAndTimedOut(t *testing.T) {
	base, _, _ := startExtractor(t, "EXTRACTOR_HTTP_TOKEN=s3cret", "EXTRACTOR_MAX_CONCURRENT_BODIES=2", "HTTP_READ_TIMEOUT=2s")
	url := base.ingest + "/v1/datasets/users/events"
	for _, token := range []string{"", "s", "s3cre", "s3cret-and-more", strings.Repeat("x", 4096)} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{"id":"1"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("token %.10q: %d, WWW-Authenticate %q; want 401 with a Bearer challenge", token, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Two clients send their headers and part of their bodies, and stall.
	host := strings.TrimPrefix(base.ingest, "http://")
	stall := func() net.Conn {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/datasets/users/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer s3cret\r\nContent-Length: 1000\r\n\r\n[{\"id\":\"1\"}", host)
		return c
	}
	a, b := stall(), stall()
	defer b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := post(t, url, "s3cret", `{"id":"2"}`)
		if status == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with two bodies stalled a third request got %d, want 503", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{"id":"2"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the cap: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// One client gives up: its slot is free again.
	a.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if status, _ := post(t, url, "s3cret", `{"id":"3"}`); status == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a slot was not freed when its client went away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The other stays stalled: the server cuts it off after the read
	// timeout, answering nothing or 400.
	if err := b.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(b); err != nil {
		t.Errorf("the stalled connection was not closed by the server within 30 s: %v", err)
	}
}

// The ingest address serves the ingest endpoint alone: its clients reach
// neither the metrics, the health nor Go's profiles, which are on the
// admin address, the profiles only with ADMIN_PPROF=true.
func TestIngestAddressServesNoAdminEndpoints(t *testing.T) {
	tests := map[string]struct {
		extra      []string
		adminPprof int
	}{
		"pprof off by default": {nil, http.StatusNotFound},
		"pprof asked for":      {[]string{"ADMIN_PPROF=true"}, http.StatusOK},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			base, _, _ := startExtractor(t, append([]string{"EXTRACTOR_HTTP_TOKEN=s3cret"}, tt.extra...)...)
			get := func(url string) int {
				t.Helper()
				resp, err := http.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode
			}
			for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
				if code := get(base.ingest + path); code != http.StatusNotFound {
					t.Errorf("GET %s on the ingest address = %d, want 404", path, code)
				}
			}
			for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
				if code := get(base.admin + path); code != http.StatusOK {
					t.Errorf("GET %s on the admin address = %d, want 200", path, code)
				}
			}
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
				if code := get(base.admin + path); code != tt.adminPprof {
					t.Errorf("GET %s on the admin address = %d, want %d", path, code, tt.adminPprof)
				}
			}
			if status, body := post(t, base.ingest+"/v1/datasets/users/events", "s3cret", `{"id":"1"}`); status != http.StatusAccepted {
				t.Errorf("POST on the ingest address = %d %v, want 202", status, body)
			}
			if status, _ := post(t, base.admin+"/v1/datasets/users/events", "s3cret", `{"id":"1"}`); status == http.StatusAccepted {
				t.Error("POST on the admin address was taken")
			}
		})
	}
}
