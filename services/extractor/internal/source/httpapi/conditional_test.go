package httpapi

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// versioned is an API of three linked pages whose content has a version:
// it answers 304 to a first-page request whose validators match the
// version, and counts the bodies it sends and the conditional headers of
// each request.
type versioned struct {
	*server
	etag, lastModified bool // which validators it sends

	mu      sync.Mutex
	version int
	bodies  int
	conds   []string // "If-None-Match|If-Modified-Since" of each request
}

func newVersioned(t testing.TB, etag, lastModified bool) *versioned {
	t.Helper()
	v := &versioned{etag: etag, lastModified: lastModified, version: 1}
	changed := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	v.server = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		defer v.mu.Unlock()
		inm, ims := r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since")
		v.conds = append(v.conds, inm+"|"+ims)
		tag := fmt.Sprintf(`"v%d"`, v.version)
		modified := changed.Add(time.Duration(v.version) * time.Hour)
		if v.etag {
			w.Header().Set("ETag", tag)
		}
		if v.lastModified {
			w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		}
		// If-None-Match wins over If-Modified-Since, as RFC 9110 says.
		switch since, err := http.ParseTime(ims); {
		case v.etag && inm != "":
			if inm == tag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		case v.lastModified && err == nil && !modified.After(since):
			w.WriteHeader(http.StatusNotModified)
			return
		}
		v.bodies++
		n := max(atoi(r.URL.Query().Get("page")), 1)
		var next any
		if n < 3 {
			next = fmt.Sprintf("/api?page=%d", n+1)
		}
		writeJSON(t, w, map[string]any{"data": jobs(n, n), "links": map[string]any{"next": next}})
	})
	return v
}

func (v *versioned) counts() (bodies int, conds []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bodies, v.conds
}

func TestConditionalRequests(t *testing.T) {
	tests := []struct {
		name               string
		etag, lastModified bool
	}{
		{"etag", true, false},
		{"last-modified", false, true},
		{"both", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVersioned(t, tt.etag, tt.lastModified)
			f, err := New(Config{URL: v.URL + "/api", Records: "data", Paging: PagingNext, Next: "links.next"})
			if err != nil {
				t.Fatal(err)
			}
			poll := func(since Validators) ([]string, Stats) {
				t.Helper()
				var ids []string
				st, err := f.FetchIfChanged(t.Context(), since, func(r Record) error {
					ids = append(ids, *r.Values["id"])
					return nil
				})
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				return ids, st
			}
			// The first poll has no validators: it reads every page.
			ids, st := poll(Validators{})
			if diff := cmp.Diff(seq(1, 3), ids); diff != "" {
				t.Fatalf("first poll records (-want +got):\n%s", diff)
			}
			first := st.Validators
			want := Validators{}
			if tt.etag {
				want.ETag = `"v1"`
			}
			if tt.lastModified {
				want.LastModified = "Sat, 05 Dec 2026 09:00:00 GMT"
			}
			if first != want || st.NotModified {
				t.Errorf("first poll validators %+v, not modified %t; want %+v, false", first, st.NotModified, want)
			}
			// Unchanged: one request, answered 304 without a body.
			ids, st = poll(first)
			if len(ids) != 0 || !st.NotModified || st.Requests != 1 || st.Pages != 0 {
				t.Errorf("unchanged poll: records %v, stats %+v; want none, not modified after 1 request", ids, st)
			}
			if st.Validators != first {
				t.Errorf("unchanged poll validators %+v, want those given, %+v", st.Validators, first)
			}
			if bodies, _ := v.counts(); bodies != 3 {
				t.Errorf("bodies sent = %d after an unchanged poll, want the first poll's 3", bodies)
			}
			// Changed: every page again, and the new validators.
			v.mu.Lock()
			v.version = 2
			v.mu.Unlock()
			ids, st = poll(first)
			if diff := cmp.Diff(seq(1, 3), ids); diff != "" {
				t.Errorf("changed poll records (-want +got):\n%s", diff)
			}
			if st.NotModified || st.Validators == first {
				t.Errorf("changed poll: stats %+v, want modified with new validators", st)
			}
			bodies, conds := v.counts()
			if bodies != 6 {
				t.Errorf("bodies sent = %d, want 6", bodies)
			}
			// Only the first request of a poll is conditional.
			cond := first.ETag + "|" + first.LastModified
			wantConds := []string{"|", "|", "|", cond, cond, "|", "|"}
			if diff := cmp.Diff(wantConds, conds); diff != "" {
				t.Errorf("conditional headers per request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestA304NotAskedForIsAnError(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotModified) })
	f, err := New(Config{URL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	ids, st, err := fetch(t, f)
	if err == nil || st.NotModified || len(ids) != 0 {
		t.Errorf("fetch answered 304 without validators: records %v, stats %+v, error %v; want an error", ids, st, err)
	}
}
