package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Auth is how a Fetcher authenticates: an API key, OAuth2 client
// credentials, both, or neither (the zero value). Secrets are values here;
// the caller reads them from secret files with ReadSecret.
type Auth struct {
	// APIKey, when set, is sent in the header Header or the query
	// parameter Param of every request (one of the two). A key in the
	// query is redacted from the URLs in errors and is never in
	// Record.URL.
	APIKey        string
	Header, Param string
	// TokenURL, ClientID and ClientSecret, when TokenURL is set, get an
	// OAuth2 client credentials token, sent as "Authorization: Bearer".
	// Scopes are asked for; TokenParams are added to the token request's
	// form (a parameter the token endpoint wants in its query, such as
	// France Travail's realm=/partenaire, goes in TokenURL). The token is
	// fetched with the Fetcher's Client, cached by the Fetcher across
	// polls, and fetched again once a tenth of its lifetime (at most 10
	// s) is left, or when the API answers 401 to it.
	TokenURL, ClientID, ClientSecret string
	Scopes                           []string
	TokenParams                      url.Values
}

// check refuses an incomplete Auth.
func (a Auth) check() error {
	switch {
	case a.APIKey == "" && (a.Header != "" || a.Param != ""):
		return errors.New("auth: api key header or parameter named, but no api key")
	case a.APIKey != "" && (a.Header == "") == (a.Param == ""):
		return errors.New("auth: api key: name either its header or its query parameter")
	case a.TokenURL == "" && (a.ClientID != "" || a.ClientSecret != ""):
		return errors.New("auth: oauth2 client credentials without a token url")
	case a.TokenURL != "" && (a.ClientID == "" || a.ClientSecret == ""):
		return errors.New("auth: oauth2 token url without a client id and secret")
	}
	if a.TokenURL != "" {
		u, err := url.Parse(a.TokenURL)
		if err != nil {
			return fmt.Errorf("auth: token url: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("auth: token url %q: want http or https", u.Redacted())
		}
	}
	return nil
}

// ReadSecret reads a secret from the file at path: its text without the
// surrounding white space (an editor's final newline). An empty file, or
// one of more than one line, is an error, which names the path but never
// holds the file's content.
func ReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a secret file path the operator configures
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("read secret %s: empty", path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("read secret %s: more than one line", path)
	}
	return s, nil
}

// tokens caches one OAuth2 client credentials token for a Fetcher. It
// fetches with the caller's context, so a poll that ends ends its token
// request too.
type tokens struct {
	conf   *clientcredentials.Config
	client *http.Client

	mu    sync.Mutex
	tok   *oauth2.Token
	renew time.Time // when tok is replaced; zero: never, until a 401
}

func newTokens(a Auth, client *http.Client) *tokens {
	return &tokens{
		conf: &clientcredentials.Config{
			ClientID:       a.ClientID,
			ClientSecret:   a.ClientSecret,
			TokenURL:       a.TokenURL,
			Scopes:         a.Scopes,
			EndpointParams: a.TokenParams,
		},
		client: client,
	}
}

// token is the cached token, or a new one when there is none or it is
// near its expiry.
func (t *tokens) token(ctx context.Context) (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.tok != nil && (t.renew.IsZero() || now.Before(t.renew)) {
		return t.tok, nil
	}
	tok, err := t.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, t.client))
	if err != nil {
		return nil, fmt.Errorf("oauth2 token from %s: %w", redactURL(t.conf.TokenURL, ""), err)
	}
	t.tok, t.renew = tok, time.Time{}
	if !tok.Expiry.IsZero() {
		early := min(tok.Expiry.Sub(now)/10, 10*time.Second)
		t.renew = tok.Expiry.Add(-early)
	}
	return tok, nil
}

// drop forgets tok, if it is still the cached token.
func (t *tokens) drop(tok *oauth2.Token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok = nil
	}
}

// redacted is what a secret is replaced with in errors.
const redacted = "REDACTED"

// redactURL is s with its userinfo password and the value of the query
// parameter param (none when empty) replaced, for errors and logs.
func redactURL(s, param string) string {
	u, err := url.Parse(s)
	if err != nil {
		// An unparsable URL is left out whole rather than risk a key.
		return "(unparsable url)"
	}
	if param != "" {
		q := u.Query()
		if _, ok := q[param]; ok {
			q.Set(param, redacted)
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// redactErr replaces the URL of a *url.Error in err, as the HTTP client
// returns them, by its redaction.
func redactErr(err error, param string) error {
	var ue *url.Error
	if param != "" && errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL, param)
	}
	return err
}
