package httpapi

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/retry"
	"github.com/google/go-cmp/cmp"
)

// observation is one call of Config.Observe.
type observation struct {
	status int
	bytes  int64
	waited time.Duration
}

func TestObserveSeesEveryRequest(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		backoff  = 20 * time.Millisecond
	)
	var (
		mu    sync.Mutex
		calls int
		sent  []int64 // body bytes the server wrote, per request
	)
	body := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	page1 := body(map[string]any{"data": jobs(1, 2), "next": "/api?page=2"})
	page2 := body(map[string]any{"data": jobs(3, 4), "next": nil})
	slow := []byte("slow down, please\n")
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		var b []byte
		switch n {
		case 1: // a 429 with a body, asking for a second
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			b = slow
		case 2:
			// The next request takes a new connection, which drops:
			// on a reused one, the client would resend it unseen.
			w.Header().Set("Connection", "close")
			b = page1
		case 3: // the connection drops before any answer
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			_ = conn.Close()
		default:
			b = page2
		}
		_, _ = w.Write(b)
		mu.Lock()
		sent = append(sent, int64(len(b)))
		mu.Unlock()
	})
	var obs []observation
	f, err := New(Config{
		URL: s.URL + "/api", Records: "data", Paging: PagingNext, Next: "next",
		Attempts: 3, Backoff: retry.Backoff{First: backoff}, Hosts: NewHosts(interval),
		Observe: func(status int, n int64, waited time.Duration) {
			obs = append(obs, observation{status, n, waited})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, st, err := fetch(t, f)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if diff := cmp.Diff(seq(1, 4), ids); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	var statuses []int
	var bytesRead, pageBytes int64
	for _, o := range obs {
		statuses = append(statuses, o.status)
		bytesRead += o.bytes
		if o.status == http.StatusOK {
			pageBytes += o.bytes
		}
	}
	if diff := cmp.Diff([]int{429, 200, 0, 200}, statuses); diff != "" {
		t.Fatalf("observed statuses (-want +got):\n%s", diff)
	}
	mu.Lock()
	var written int64
	for _, n := range sent {
		written += n
	}
	mu.Unlock()
	if want := int64(len(slow) + len(page1) + len(page2)); bytesRead != want || written != want {
		t.Errorf("observed %d bytes, server wrote %d; want %d, the 429's body and the two pages", bytesRead, written, want)
	}
	if pageBytes != st.Bytes {
		t.Errorf("observed %d bytes of pages, stats say %d", pageBytes, st.Bytes)
	}
	// What was waited before each request: nothing before the first;
	// the Retry-After before the second; the host's spacing right after
	// the second; the backoff after the dropped connection.
	checks := []struct {
		what     string
		min, max time.Duration
	}{
		{"first request", 0, 0},
		{"after Retry-After: 1", time.Second, time.Second + interval},
		{"right after a request to the host", time.Nanosecond, interval},
		{"after a dropped connection", backoff, backoff + interval},
	}
	for i, c := range checks {
		if w := obs[i].waited; w < c.min || w > c.max {
			t.Errorf("request %d, %s: waited %s, want between %s and %s", i+1, c.what, w, c.min, c.max)
		}
	}
	if st.Requests != len(obs) {
		t.Errorf("observed %d requests, stats say %d", len(obs), st.Requests)
	}
}
