package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tokenServer is a loopback OAuth2 token endpoint for the client
// credentials grant, and an API that takes only its live tokens.
type tokenServer struct {
	token, api *server
	lifetime   int // expires_in of the tokens, in seconds; 0 leaves it out

	mu       sync.Mutex
	issued   map[string]time.Time // token → its expiry by the server's clock
	revoked  map[string]bool
	refuse   bool                // the API refuses every token
	forms    []map[string]string // the token requests' form values
	used     []string            // the token of each API request, in order
	rejected int                 // API requests answered 401
}

func newTokenServer(t testing.TB, lifetime int) *tokenServer {
	t.Helper()
	ts := &tokenServer{lifetime: lifetime, issued: map[string]time.Time{}, revoked: map[string]bool{}}
	ts.token = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("token request form: %v", err)
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if r.Method != http.MethodPost || id != "app" || secret != "s3cret" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		ts.mu.Lock()
		form := map[string]string{"realm": r.URL.Query().Get("realm")}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		ts.forms = append(ts.forms, form)
		tok := fmt.Sprintf("tok-%d", len(ts.forms))
		ts.issued[tok] = time.Now().Add(time.Duration(ts.lifetime) * time.Second)
		ts.mu.Unlock()
		answer := map[string]any{"access_token": tok, "token_type": "Bearer"}
		if ts.lifetime > 0 {
			answer["expires_in"] = ts.lifetime
		}
		writeJSON(t, w, answer)
	})
	ts.api = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ts.mu.Lock()
		ts.used = append(ts.used, tok)
		expiry, ok := ts.issued[tok]
		live := ok && !ts.refuse && !ts.revoked[tok] && (ts.lifetime == 0 || time.Now().Before(expiry))
		if !live {
			ts.rejected++
		}
		ts.mu.Unlock()
		if !live {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		writeJSON(t, w, map[string]any{"jobs": jobs(1, 2)})
	})
	return ts
}

func (ts *tokenServer) fetcher(t testing.TB) *Fetcher {
	t.Helper()
	f, err := New(Config{
		URL: ts.api.URL, Records: "jobs",
		Auth: Auth{
			TokenURL: ts.token.URL + "/token?realm=%2Fpartenaire", ClientID: "app", ClientSecret: "s3cret",
			Scopes: []string{"api_offresdemploiv2", "o2dsoffre"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// counts are the token requests made, and the API requests made with
// each token and answered 401.
func (ts *tokenServer) counts() (tokenRequests int, used map[string]int, rejected int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	used = map[string]int{}
	for _, tok := range ts.used {
		used[tok]++
	}
	return len(ts.forms), used, ts.rejected
}

func TestOAuth2TokenIsReusedUntilItExpires(t *testing.T) {
	ts := newTokenServer(t, 2)
	f := ts.fetcher(t)
	// Poll every 50 ms until a poll carries a second token: the polls
	// before it, for most of the first token's 2 s, carry the first.
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ids, _, err := fetch(t, f)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if diff := cmp.Diff(seq(1, 2), ids); diff != "" {
			t.Fatalf("records (-want +got):\n%s", diff)
		}
		if _, used, _ := ts.counts(); used["tok-2"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no second token 15 s after the first, which expires in 2 s")
		}
		<-tick.C
	}
	requests, used, rejected := ts.counts()
	if requests != 2 {
		t.Errorf("token requests = %d, want 2: one per token lifetime", requests)
	}
	// 2 s less the tenth renewed early is 36 ticks; a busy machine
	// misses some.
	if used["tok-1"] < 5 {
		t.Errorf("polls with the first token = %d, want it reused by several polls", used["tok-1"])
	}
	if rejected != 0 {
		t.Errorf("API requests answered 401 = %d, want 0: an expired token was sent", rejected)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	want := map[string]string{"grant_type": "client_credentials", "scope": "api_offresdemploiv2 o2dsoffre", "realm": "/partenaire"}
	for i, form := range ts.forms {
		got := map[string]string{"grant_type": form["grant_type"], "scope": form["scope"], "realm": form["realm"]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("token request %d (-want +got):\n%s", i+1, diff)
		}
	}
}

func TestA401RenewsTheTokenOnce(t *testing.T) {
	t.Run("revoked token", func(t *testing.T) {
		ts := newTokenServer(t, 3600)
		f := ts.fetcher(t)
		if _, _, err := fetch(t, f); err != nil {
			t.Fatalf("first fetch: %v", err)
		}
		ts.mu.Lock()
		ts.revoked["tok-1"] = true
		ts.mu.Unlock()
		ids, _, err := fetch(t, f)
		if err != nil {
			t.Fatalf("fetch after the token was revoked: %v", err)
		}
		if diff := cmp.Diff(seq(1, 2), ids); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if diff := cmp.Diff([]string{"tok-1", "tok-1", "tok-2"}, ts.used); diff != "" {
			t.Errorf("tokens of the API requests (-want +got):\n%s", diff)
		}
	})
	t.Run("every token refused", func(t *testing.T) {
		ts := newTokenServer(t, 3600)
		ts.refuse = true
		f := ts.fetcher(t)
		if _, _, err := fetch(t, f); !errors.Is(err, ErrStatus) {
			t.Errorf("fetch error = %v, want ErrStatus", err)
		}
		if requests, _, _ := ts.counts(); requests != 2 {
			t.Errorf("token requests = %d, want 2: the first and one renewal", requests)
		}
	})
}

func TestAnOAuth2TokenRefusedEndsThePoll(t *testing.T) {
	ts := newTokenServer(t, 3600)
	f, err := New(Config{
		URL: ts.api.URL, Records: "jobs", Attempts: 3,
		Auth: Auth{TokenURL: ts.token.URL + "/token", ClientID: "app", ClientSecret: "wrong-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = fetch(t, f)
	if err == nil {
		t.Fatal("fetch with a wrong client secret ended without an error")
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("fetch error %q holds the client secret", err)
	}
	// oauth2 sends the credentials in a header, then, refused, in the
	// form, to learn which the endpoint takes; no more with Attempts 3.
	if n := len(ts.token.seen()); n != 2 {
		t.Errorf("token requests = %d, want 2: a refusal is not retried", n)
	}
	if n := len(ts.api.seen()); n != 0 {
		t.Errorf("API requests = %d, want 0 without a token", n)
	}
}

func TestAPIKey(t *testing.T) {
	const key = "k3y-abc123"
	// answer is 200 when the request carries the key where auth says,
	// else 403.
	answer := func(auth Auth) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got := r.Header.Get(auth.Header)
			if auth.Param != "" {
				got = r.URL.Query().Get(auth.Param)
			}
			if auth.APIKey == "" || got != key {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			writeJSON(t, w, map[string]any{"results": jobs(1, 3), "next": nil})
		}
	}
	tests := []struct {
		name string
		auth Auth
	}{
		{"in a header", Auth{APIKey: key, Header: "X-Api-Key"}},
		{"in the query", Auth{APIKey: key, Param: "app_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, answer(tt.auth))
			f, err := New(Config{URL: s.URL + "/search?what=go", Records: "results", Auth: tt.auth})
			if err != nil {
				t.Fatal(err)
			}
			var urls []string
			st, err := f.Fetch(t.Context(), func(r Record) error {
				urls = append(urls, r.URL)
				return nil
			})
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if st.Records != 3 {
				t.Errorf("records = %d, want 3", st.Records)
			}
			for _, u := range urls {
				if strings.Contains(u, key) {
					t.Errorf("record URL %s holds the key", u)
				}
			}
		})
		t.Run(tt.name+", refused", func(t *testing.T) {
			// The server wants another key: its 403 is an error that
			// must not show the key sent.
			want := tt.auth
			want.APIKey = ""
			s := newServer(t, answer(want))
			f, err := New(Config{URL: s.URL + "/search?what=go", Records: "results", Auth: tt.auth})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = fetch(t, f)
			if !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "403") {
				t.Fatalf("fetch error = %v, want ErrStatus 403", err)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("fetch error %q holds the key", err)
			}
		})
	}
	t.Run("in the query, repeated in next links", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("app_key") != key {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			n := max(atoi(r.URL.Query().Get("page")), 1)
			var next any
			if n < 3 {
				next = fmt.Sprintf("/search?page=%d&app_key=%s", n+1, key)
			}
			writeJSON(t, w, map[string]any{"results": jobs(n, n), "next": next})
		})
		f, err := New(Config{
			URL: s.URL + "/search", Records: "results", Paging: PagingNext, Next: "next",
			Auth: Auth{APIKey: key, Param: "app_key"},
		})
		if err != nil {
			t.Fatal(err)
		}
		var urls []string
		if _, err := f.Fetch(t.Context(), func(r Record) error {
			urls = append(urls, strings.TrimPrefix(r.URL, s.URL))
			return nil
		}); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if diff := cmp.Diff([]string{"/search", "/search?page=2", "/search?page=3"}, urls); diff != "" {
			t.Errorf("record URLs (-want +got):\n%s", diff)
		}
	})
	t.Run("in the query, no answer", func(t *testing.T) {
		s := newServer(t, answer(Auth{}))
		addr := s.URL
		s.Close()
		f, err := New(Config{URL: addr + "/search", Auth: Auth{APIKey: key, Param: "app_key"}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = fetch(t, f)
		if err == nil {
			t.Fatal("fetch from a closed server ended without an error")
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("fetch error %q holds the key", err)
		}
		if !strings.Contains(err.Error(), "app_key="+redacted) {
			t.Errorf("fetch error %q does not show the key's parameter redacted", err)
		}
	})
}

func TestNewRefusesIncompleteAuth(t *testing.T) {
	tests := []struct {
		name string
		auth Auth
	}{
		{"key without a place", Auth{APIKey: "k"}},
		{"key in two places", Auth{APIKey: "k", Header: "X-Key", Param: "key"}},
		{"header without a key", Auth{Header: "X-Key"}},
		{"client without a token url", Auth{ClientID: "a", ClientSecret: "b"}},
		{"token url without a secret", Auth{TokenURL: "http://127.0.0.1/token", ClientID: "a"}},
		{"token url not http", Auth{TokenURL: "ftp://127.0.0.1/token", ClientID: "a", ClientSecret: "b"}},
	}
	for _, tt := range tests {
		if _, err := New(Config{URL: "http://127.0.0.1/api", Auth: tt.auth}); err == nil {
			t.Errorf("%s: New took it", tt.name)
		}
	}
}

func TestReadSecret(t *testing.T) {
	tests := []struct {
		name, content string
		want          string // empty: an error
	}{
		{"final newline", "s3cret\n", "s3cret"},
		{"crlf and spaces", "  s3cret \r\n", "s3cret"},
		{"no newline", "s3cret", "s3cret"},
		{"empty", "", ""},
		{"only a newline", "\n", ""},
		{"two lines", "s3cret\nother\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSecret(path)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ReadSecret(%q) = %q, want an error", tt.content, got)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the path", err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q holds the secret", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ReadSecret(%q) = %q, %v, want %q", tt.content, got, err, tt.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "absent")
		if _, err := ReadSecret(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("ReadSecret of a missing file: error %v, want one naming %s", err, path)
		}
	})
}

// The token request is made with the poll's context: a poll that ends
// ends it, rather than waiting on a token endpoint that does not answer.
func TestATokenRequestEndsWithThePoll(t *testing.T) {
	release := make(chan struct{})
	hang := newServer(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	f, err := New(Config{URL: "http://127.0.0.1:1/api", Auth: Auth{TokenURL: hang.URL, ClientID: "a", ClientSecret: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = f.Fetch(ctx, func(Record) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("fetch error = %v, want the poll's deadline", err)
	}
}
