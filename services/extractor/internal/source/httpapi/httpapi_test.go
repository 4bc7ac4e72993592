package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hit is one request a test server saw.
type hit struct {
	at  time.Time
	url string
}

// server is a loopback API that records every request.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

func newServer(t testing.TB, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits = append(s.hits, hit{at: time.Now(), url: r.URL.RequestURI()})
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) seen() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

func (s *server) urls() []string {
	var out []string
	for _, h := range s.seen() {
		out = append(out, h.url)
	}
	return out
}

// jobs are n records {"id": 1…n, "title": "job i"}.
func jobs(from, to int) []map[string]any {
	out := []map[string]any{}
	for i := from; i <= to; i++ {
		out = append(out, map[string]any{"id": i, "title": fmt.Sprintf("job %d", i)})
	}
	return out
}

func writeJSON(t testing.TB, w http.ResponseWriter, v any) {
	t.Helper()
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		t.Errorf("encode answer: %v", err)
	}
}

// fetch runs f and returns the ids of its records, in order.
func fetch(t testing.TB, f *Fetcher) ([]string, Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	st, err := f.Fetch(ctx, func(r Record) error {
		if v := r.Values["id"]; v != nil {
			ids = append(ids, *v)
		} else {
			ids = append(ids, "-")
		}
		return nil
	})
	return ids, st, err
}

func seq(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// slice is data[from:from+n], clipped.
func slice(data []map[string]any, from, n int) []map[string]any {
	from = min(max(from, 0), len(data))
	return data[from:min(from+n, len(data))]
}

func TestPagingStopsWhereItShould(t *testing.T) {
	data := jobs(1, 7)
	tests := []struct {
		name    string
		cfg     Config
		handler func(t testing.TB, base string) http.HandlerFunc
		want    []string // the requests, in order
	}{{
		name: "none, records at a path",
		cfg:  Config{Records: "jobs", Query: map[string][]string{"category": {"dev"}}},
		handler: func(t testing.TB, _ string) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(t, w, map[string]any{"job-count": 7, "jobs": data})
			}
		},
		want: []string{"/api?category=dev"},
	}, {
		name: "next link, relative then absolute, until null",
		cfg:  Config{Records: "data", Paging: PagingNext, Next: "links.next"},
		handler: func(t testing.TB, base string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				n := max(atoi(r.URL.Query().Get("page")), 1)
				var next any
				switch n {
				case 1:
					next = "/api?page=2"
				case 2:
					next = base + "/api?page=3"
				}
				writeJSON(t, w, map[string]any{"data": slice(data, (n-1)*3, 3), "links": map[string]any{"next": next}})
			}
		},
		want: []string{"/api", "/api?page=2", "/api?page=3"},
	}, {
		name: "next link absent",
		cfg:  Config{Records: "data", Paging: PagingNext, Next: "links.next"},
		handler: func(t testing.TB, _ string) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(t, w, map[string]any{"data": data})
			}
		},
		want: []string{"/api"},
	}, {
		name: "page in the query, until an empty page",
		cfg:  Config{Records: "results", Paging: PagingPage, FirstPage: 1},
		handler: func(t testing.TB, _ string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				n := atoi(r.URL.Query().Get("page"))
				writeJSON(t, w, map[string]any{"results": slice(data, (n-1)*3, 3)})
			}
		},
		want: []string{"/api?page=1", "/api?page=2", "/api?page=3", "/api?page=4"},
	}, {
		name: "page in the path, until the total count",
		cfg: Config{
			URL: "/v1/api/jobs/gb/search/{page}", Records: "results", Paging: PagingPage, FirstPage: 1,
			Total: "count", Query: map[string][]string{"results_per_page": {"3"}},
		},
		handler: func(t testing.TB, _ string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				n := atoi(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
				writeJSON(t, w, map[string]any{"count": 7, "results": slice(data, (n-1)*3, 3)})
			}
		},
		want: []string{
			"/v1/api/jobs/gb/search/1?results_per_page=3",
			"/v1/api/jobs/gb/search/2?results_per_page=3",
			"/v1/api/jobs/gb/search/3?results_per_page=3",
		},
	}, {
		name: "offset and limit, until the total count as a string",
		cfg:  Config{Records: "items", Paging: PagingOffset, Limit: 3, Total: "meta.total"},
		handler: func(t testing.TB, _ string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				writeJSON(t, w, map[string]any{"meta": map[string]any{"total": "7"}, "items": slice(data, atoi(q.Get("offset")), atoi(q.Get("limit")))})
			}
		},
		want: []string{"/api?limit=3&offset=0", "/api?limit=3&offset=3", "/api?limit=3&offset=6"},
	}, {
		name: "offset moves on by the records received, until an empty page",
		cfg:  Config{Records: "items", Paging: PagingOffset, Limit: 5},
		handler: func(t testing.TB, _ string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				// The server caps the limit at 4, as APIs do.
				writeJSON(t, w, map[string]any{"items": slice(data, atoi(r.URL.Query().Get("offset")), 4)})
			}
		},
		want: []string{"/api?limit=5&offset=0", "/api?limit=5&offset=4", "/api?limit=5&offset=7"},
	}, {
		name:    "range, until the total of Content-Range",
		cfg:     Config{Records: "resultats", Paging: PagingRange, RangeSize: 3},
		handler: rangeHandler(data, len(data)),
		want:    []string{"/api?range=0-2", "/api?range=3-5", "/api?range=6-8"},
	}, {
		name: "range, until 204 past the end",
		cfg:  Config{Records: "resultats", Paging: PagingRange, RangeSize: 4},
		// The announced total is larger than what the server has.
		handler: rangeHandler(data, 20),
		want:    []string{"/api?range=0-3", "/api?range=4-7", "/api?range=7-10"},
	}, {
		name: "range answered whole with 200",
		cfg:  Config{Records: "resultats", Paging: PagingRange, RangeSize: 3},
		handler: func(t testing.TB, _ string) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(t, w, map[string]any{"resultats": data})
			}
		},
		want: []string{"/api?range=0-2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.HandlerFunc
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) { h(w, r) })
			h = tt.handler(t, s.URL)
			cfg := tt.cfg
			cfg.URL = s.URL + cmpOr(cfg.URL, "/api")
			f, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ids, st, err := fetch(t, f)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if diff := cmp.Diff(seq(1, 7), ids); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, s.urls()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if st.Records != 7 || st.Requests != len(tt.want) || st.Capped {
				t.Errorf("stats = %+v, want 7 records in %d requests, not capped", st, len(tt.want))
			}
		})
	}
}

// rangeHandler answers range=first-last as France Travail does: 206 with
// Content-Range "offres first-last/total", 204 past the end of data.
func rangeHandler(data []map[string]any, total int) func(testing.TB, string) http.HandlerFunc {
	return func(t testing.TB, _ string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			a, b, _ := strings.Cut(r.URL.Query().Get("range"), "-")
			first, last := atoi(a), atoi(b)
			if first >= len(data) {
				w.Header().Set("Content-Range", fmt.Sprintf("offres -1--1/%d", total))
				w.WriteHeader(http.StatusNoContent)
				return
			}
			page := slice(data, first, last-first+1)
			w.Header().Set("Content-Range", fmt.Sprintf("offres %d-%d/%d", first, first+len(page)-1, total))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPartialContent)
			if err := json.NewEncoder(w).Encode(map[string]any{"resultats": page}); err != nil {
				t.Errorf("encode answer: %v", err)
			}
		}
	}
}

func TestRecordValues(t *testing.T) {
	// RemoteOK's shape: a top-level array, a legal notice first.
	body := "\xef\xbb\xbf" + `[{"legal":"API terms"},
	 {"ID":"1093", "position":"Go dev", "salary_min":0, "tags":["go", "k8s"], "remote":true,
	  "company":{"name":"Acme "}, "location":null, "note":"caf\u00e9 \"x\""}]`
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	})
	f, err := New(Config{URL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]string
	if _, err := f.Fetch(context.Background(), func(r Record) error {
		m := map[string]string{}
		for k, v := range r.Values {
			m[k] = *v
		}
		got = append(got, m)
		return nil
	}); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	want := []map[string]string{
		{"legal": "API terms"},
		{
			"id": "1093", "position": "Go dev", "salary_min": "0", "tags": `["go","k8s"]`, "remote": "true",
			"company": `{"name":"Acme "}`, "note": `café "x"`,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestANonJSONAnswerIsAnError(t *testing.T) {
	tests := []struct {
		name, contentType, body string
	}{
		{"challenge page", "text/html", "<!DOCTYPE html><html><title>Just a moment...</title></html>"},
		{"empty body", "application/json", ""},
		{"byte order mark then html", "text/html", "\xef\xbb\xbf<html></html>"},
		{"truncated JSON", "application/json", `{"jobs": [{"id": 1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = w.Write([]byte(tt.body))
			})
			f, err := New(Config{URL: s.URL, Records: "jobs", Attempts: 3})
			if err != nil {
				t.Fatal(err)
			}
			ids, _, err := fetch(t, f)
			if !errors.Is(err, ErrNotJSON) {
				t.Errorf("fetch error = %v, want ErrNotJSON", err)
			}
			if len(ids) != 0 {
				t.Errorf("records = %v, want none", ids)
			}
			if n := len(s.seen()); n != 1 {
				t.Errorf("requests = %d, want 1: a challenge page is not retried within a poll", n)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	tests := []struct {
		name   string
		status int
		// after is the Retry-After of the first answer, from the time of
		// the first request, and the earliest time of the second.
		after func(first time.Time) (string, time.Time)
	}{{
		name:   "429, seconds",
		status: http.StatusTooManyRequests,
		after: func(first time.Time) (string, time.Time) {
			return "1", first.Add(time.Second)
		},
	}, {
		name:   "503, HTTP date",
		status: http.StatusServiceUnavailable,
		after: func(first time.Time) (string, time.Time) {
			d := first.Add(2 * time.Second).UTC().Truncate(time.Second)
			return d.Format(http.TimeFormat), d
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				calls    int
				earliest time.Time
			)
			s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == 1 {
					var v string
					v, earliest = tt.after(time.Now())
					w.Header().Set("Retry-After", v)
					w.WriteHeader(tt.status)
					return
				}
				writeJSON(t, w, map[string]any{"jobs": jobs(1, 2)})
			})
			// No backoff of its own: only Retry-After makes it wait.
			f, err := New(Config{URL: s.URL, Records: "jobs", Attempts: 3})
			if err != nil {
				t.Fatal(err)
			}
			ids, _, err := fetch(t, f)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if diff := cmp.Diff(seq(1, 2), ids); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			hits := s.seen()
			if len(hits) != 2 {
				t.Fatalf("requests = %d, want 2", len(hits))
			}
			mu.Lock()
			defer mu.Unlock()
			if hits[1].at.Before(earliest) {
				t.Errorf("second request at %s, before the Retry-After %s", hits[1].at.Format(time.StampMilli), earliest.Format(time.StampMilli))
			}
		})
	}
}

func TestRetriesAreBounded(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   int // requests
	}{
		{"503 is retried", http.StatusServiceUnavailable, 3},
		{"429 is retried", http.StatusTooManyRequests, 3},
		{"404 is not", http.StatusNotFound, 1},
		{"500 is not", http.StatusInternalServerError, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.status) })
			f, err := New(Config{URL: s.URL, Attempts: 3})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := fetch(t, f); !errors.Is(err, ErrStatus) {
				t.Errorf("fetch error = %v, want ErrStatus", err)
			}
			if n := len(s.seen()); n != tt.want {
				t.Errorf("requests = %d, want %d", n, tt.want)
			}
		})
	}
}

func TestARetryAfterBeyondTheCapEndsThePoll(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	f, err := New(Config{URL: s.URL, Attempts: 3, MaxRetryAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fetch(t, f); !errors.Is(err, ErrStatus) {
		t.Errorf("fetch error = %v, want ErrStatus", err)
	}
	if n := len(s.seen()); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestRetryAfterValues(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"-3", 0},
		{"Sat, 05 Dec 2026 08:00:30 GMT", 30 * time.Second},
		{"Sat, 05 Dec 2026 07:59:00 GMT", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// nextPages serves 3 pages of 3 records of about the same size, linked by
// links.next.
func nextPages(t testing.TB) *server {
	t.Helper()
	data := jobs(1, 9)
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := max(atoi(r.URL.Query().Get("page")), 1)
		var next any
		if n < 3 {
			next = fmt.Sprintf("/api?page=%d", n+1)
		}
		writeJSON(t, w, map[string]any{"data": slice(data, (n-1)*3, 3), "links": map[string]any{"next": next}})
	})
}

func TestCapsPerPoll(t *testing.T) {
	t.Run("pages", func(t *testing.T) {
		s := nextPages(t)
		f, err := New(Config{URL: s.URL + "/api", Records: "data", Paging: PagingNext, Next: "links.next", MaxPages: 2})
		if err != nil {
			t.Fatal(err)
		}
		ids, st, err := fetch(t, f)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if diff := cmp.Diff(seq(1, 6), ids); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if !st.Capped || len(s.seen()) != 2 {
			t.Errorf("stats = %+v after %d requests, want capped after 2", st, len(s.seen()))
		}
	})
	t.Run("bytes", func(t *testing.T) {
		s := nextPages(t)
		// One page is about 110 bytes: 250 takes two, not three.
		f, err := New(Config{URL: s.URL + "/api", Records: "data", Paging: PagingNext, Next: "links.next", MaxBytes: 250})
		if err != nil {
			t.Fatal(err)
		}
		ids, st, err := fetch(t, f)
		if !errors.Is(err, ErrMaxBytes) {
			t.Fatalf("fetch error = %v, want ErrMaxBytes", err)
		}
		if diff := cmp.Diff(seq(1, 6), ids); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if st.Bytes > 251 {
			t.Errorf("read %d bytes, want at most the cap and one", st.Bytes)
		}
	})
}

func TestHostsSpaceRequestsToAHost(t *testing.T) {
	const interval = 100 * time.Millisecond
	s := nextPages(t)
	hosts := NewHosts(interval)
	// Two fetchers of the same host, polling at once, share the spacing.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		f, err := New(Config{URL: s.URL + "/api", Records: "data", Paging: PagingNext, Next: "links.next", Hosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _, _, errs[i] = fetch(t, f) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	hits := s.seen()
	if len(hits) != 6 {
		t.Fatalf("requests = %d, want 6", len(hits))
	}
	slices.SortFunc(hits, func(a, b hit) int { return a.at.Compare(b.at) })
	// The server sees a request a little after the client sends it; allow
	// a tenth of the interval for that.
	for i := 1; i < len(hits); i++ {
		if gap := hits[i].at.Sub(hits[i-1].at); gap < interval*9/10 {
			t.Errorf("requests %d and %d %s apart, want at least %s", i, i+1, gap, interval)
		}
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no scheme", Config{URL: "example.com/api"}},
		{"unknown paging", Config{URL: "http://127.0.0.1/api", Paging: "cursor"}},
		{"next without a path", Config{URL: "http://127.0.0.1/api", Paging: PagingNext}},
		{"offset without a limit", Config{URL: "http://127.0.0.1/api", Paging: PagingOffset}},
		{"range without a size", Config{URL: "http://127.0.0.1/api", Paging: PagingRange}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: New took it", tt.name)
		}
	}
}

func TestANextLinkSeenBeforeIsAnError(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(t, w, map[string]any{"data": jobs(1, 1), "next": "/api"})
	})
	f, err := New(Config{URL: s.URL + "/api", Records: "data", Paging: PagingNext, Next: "next"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fetch(t, f); err == nil {
		t.Error("fetch of a page linking to itself ended without an error")
	}
	if n := len(s.seen()); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestANetworkErrorIsRetried(t *testing.T) {
	var (
		mu    sync.Mutex
		calls int
	)
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			// The connection drops before any answer.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			_ = conn.Close()
			return
		}
		writeJSON(t, w, map[string]any{"jobs": jobs(1, 3)})
	})
	f, err := New(Config{URL: s.URL, Records: "jobs", Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids, _, err := fetch(t, f)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if diff := cmp.Diff(seq(1, 3), ids); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if n := len(s.seen()); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}
