// Package httpapi fetches the records of an HTTP JSON API: it walks the
// pages of one declared endpoint and passes each record on as a flat map
// of its JSON values. It only fetches; publishing and checkpoints are the
// caller's.
//
// A Fetcher follows one pagination style (PagingNone, PagingNext,
// PagingPage, PagingOffset, PagingRange) and stops where that style says
// the results end, or at MaxPages (a clean stop, reported in Stats). A
// poll reads at most MaxBytes of bodies: a page that would go past it ends
// the poll with ErrMaxBytes. A 200 whose body is not JSON (an anti-bot
// challenge page, say) is ErrNotJSON, never an empty page; a leading UTF-8
// byte order mark is skipped. 429 and 503 answers and network errors are
// retried through pkg/retry, waiting at least what Retry-After asks
// (seconds or an HTTP date), for at most Attempts attempts. Requests to
// one host are at least Hosts' interval apart, across every Fetcher
// sharing the Hosts.
//
// Auth sends an API key, in a header or a query parameter, and an OAuth2
// client credentials token, fetched once and reused across polls until
// shortly before it expires, or until the API answers 401 to it. Secrets
// never appear in errors or in Record.URL; ReadSecret reads them from
// files.
//
// FetchIfChanged makes a poll's first request conditional on the ETag and
// Last-Modified the previous poll reported in Stats.Validators: a 304 ends
// the poll with Stats.NotModified and no records.
//
// Config.Observe sees every request's status, bytes and time waited, for
// metrics.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/datamill/datamill/pkg/retry"
	"golang.org/x/oauth2"
)

// Paging is a pagination style.
type Paging string

const (
	// PagingNone is one request.
	PagingNone Paging = "none"
	// PagingNext follows the link at the dotted path Next of each body,
	// until it is null, empty or absent.
	PagingNext Paging = "next"
	// PagingPage counts pages from FirstPage, in the query parameter
	// PageParam or in the URL's {page}, until a page has no records or
	// the records seen reach the count at the dotted path Total.
	PagingPage Paging = "page"
	// PagingOffset asks Limit records from an offset (OffsetParam,
	// LimitParam) that moves on by the records received, until a page
	// has no records or the offset reaches the count at Total.
	PagingOffset Paging = "offset"
	// PagingRange asks RangeParam=first-last, RangeSize at a time; the
	// answer is 206 with Content-Range "unit first-last/total", 204 past
	// the end, or 200 when the whole result fits in one page.
	PagingRange Paging = "range"
)

// Errors of a poll, matched with errors.Is.
var (
	// ErrNotJSON is a 200 whose body is not JSON.
	ErrNotJSON = errors.New("body is not JSON")
	// ErrMaxBytes is a poll whose bodies would go past MaxBytes.
	ErrMaxBytes = errors.New("poll reads more than its byte limit")
	// ErrStatus is an answer whose status the poll does not take.
	ErrStatus = errors.New("unexpected status")
)

// Config declares an endpoint and how to walk it.
type Config struct {
	// URL is the first page's URL; with PagingPage it may hold {page}.
	URL string
	// Query is added to every request's query but a next link's.
	Query url.Values
	// Header is sent with every request.
	Header http.Header
	// Records is the dotted path of the records' array in the body;
	// empty is the body itself.
	Records string
	// Paging is the pagination style; empty is PagingNone.
	Paging Paging
	// Next is PagingNext's dotted path of the next page's link, which
	// may be relative to the page it is in.
	Next string
	// PageParam is PagingPage's query parameter, "page" when empty; not
	// used when URL holds {page}.
	PageParam string
	// FirstPage is PagingPage's first page number.
	FirstPage int
	// Total is the dotted path of the total count of records, for
	// PagingPage and PagingOffset; empty stops at an empty page only.
	Total string
	// OffsetParam and LimitParam are PagingOffset's parameters, "offset"
	// and "limit" when empty; Limit is the records asked per page.
	OffsetParam, LimitParam string
	Limit                   int
	// RangeParam is PagingRange's parameter, "range" when empty;
	// RangeSize the records asked per page.
	RangeParam string
	RangeSize  int
	// MaxPages caps the pages of a poll; zero is no cap.
	MaxPages int
	// MaxBytes caps the bytes of bodies a poll reads; zero is no cap.
	MaxBytes int64
	// Attempts bounds the attempts at each request; below 1 is 1.
	Attempts int
	// Backoff paces retries that name no Retry-After.
	Backoff retry.Backoff
	// MaxRetryAfter is the longest Retry-After waited for; a longer one
	// ends the poll with the answer's error. Zero is one minute.
	MaxRetryAfter time.Duration
	// Hosts spaces the requests per host; nil is no spacing.
	Hosts *Hosts
	// Client sends the requests, and gets OAuth2 tokens; nil is
	// http.DefaultClient.
	Client *http.Client
	// Auth authenticates the requests; the zero value sends none.
	Auth Auth
	// Observe, when set, is called once per request to the API, when it
	// is done: with its status (0 when no answer came), the bytes of body
	// read, and the time waited before it, on Hosts and on a retry's
	// Retry-After or backoff. Token requests are not observed. It is
	// called on the polling goroutine and should return quickly.
	Observe func(status int, bytes int64, waited time.Duration)
}

// Record is one record of a page.
type Record struct {
	// Values are the record's fields, by lower-cased name: strings
	// decoded, numbers and booleans as written, arrays and objects as
	// their compact JSON text; null is absent.
	Values map[string]*string
	// URL is the page's URL, Page its number from 1 in the poll and
	// Item the record's from 1 in the page.
	URL        string
	Page, Item int
}

// Stats sum up a poll.
type Stats struct {
	Requests, Pages, Records int
	Bytes                    int64
	// Capped is set when the poll stopped at MaxPages.
	Capped bool
	// NotModified is set when the first page was answered 304 to the
	// validators of FetchIfChanged: the poll read no page.
	NotModified bool
	// Validators are the first page's, to give the next poll; after a
	// 304, those given, updated by what the 304 repeated.
	Validators Validators
}

// Validators are a first page's ETag and Last-Modified, as the server
// sent them; the zero value makes no request conditional.
type Validators struct {
	ETag, LastModified string
}

// Hosts spaces requests to each host by at least an interval. It is safe
// for concurrent use; share one between Fetchers to space them together.
type Hosts struct {
	interval time.Duration
	mu       sync.Mutex
	next     map[string]time.Time // host → earliest time of its next request
}

// NewHosts returns Hosts spacing requests to a host by interval.
func NewHosts(interval time.Duration) *Hosts {
	return &Hosts{interval: interval, next: make(map[string]time.Time)}
}

// Wait waits until a request to host may go, and books its slot; it
// returns how long it waited, or ctx's error.
func (h *Hosts) Wait(ctx context.Context, host string) (time.Duration, error) {
	h.mu.Lock()
	now := time.Now()
	at := h.next[host]
	if at.Before(now) {
		at = now
	}
	h.next[host] = at.Add(h.interval)
	h.mu.Unlock()
	d := at.Sub(now)
	if d > 0 && !retry.Sleep(ctx, d) {
		return d, fmt.Errorf("wait for host %s: %w", host, ctx.Err())
	}
	return d, nil
}

// Fetcher walks one endpoint's pages.
type Fetcher struct {
	cfg    Config
	url    *url.URL
	tokens *tokens // nil without OAuth2
}

// New checks cfg and returns its Fetcher.
func New(cfg Config) (*Fetcher, error) {
	if cfg.Paging == "" {
		cfg.Paging = PagingNone
	}
	u, err := url.Parse(strings.ReplaceAll(cfg.URL, "{page}", "1"))
	if err != nil {
		return nil, fmt.Errorf("api url %q: %w", cfg.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("api url %q: want http or https", cfg.URL)
	}
	switch cfg.Paging {
	case PagingNone:
	case PagingNext:
		if cfg.Next == "" {
			return nil, errors.New("paging next: no path of the next link")
		}
	case PagingPage:
		cfg.PageParam = cmpOr(cfg.PageParam, "page")
	case PagingOffset:
		cfg.OffsetParam = cmpOr(cfg.OffsetParam, "offset")
		cfg.LimitParam = cmpOr(cfg.LimitParam, "limit")
		if cfg.Limit < 1 {
			return nil, errors.New("paging offset: limit below 1")
		}
	case PagingRange:
		cfg.RangeParam = cmpOr(cfg.RangeParam, "range")
		if cfg.RangeSize < 1 {
			return nil, errors.New("paging range: range size below 1")
		}
	default:
		return nil, fmt.Errorf("paging %q: want none, next, page, offset or range", cfg.Paging)
	}
	cfg.Attempts = max(cfg.Attempts, 1)
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if err := cfg.Auth.check(); err != nil {
		return nil, err
	}
	f := &Fetcher{cfg: cfg, url: u}
	if cfg.Auth.TokenURL != "" {
		f.tokens = newTokens(cfg.Auth, cfg.Client)
	}
	return f, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// page is one answer.
type page struct {
	status int
	header http.Header
	body   []byte
	token  *oauth2.Token // the OAuth2 token the request carried
}

// Fetch walks the pages and calls fn for every record, in order. It stops
// at the first error of fn or of a request, after passing on the records
// of the pages before.
func (f *Fetcher) Fetch(ctx context.Context, fn func(Record) error) (Stats, error) {
	return f.FetchIfChanged(ctx, Validators{}, fn)
}

// FetchIfChanged is Fetch with the first request conditional on since,
// the Stats.Validators of a previous poll: sent as If-None-Match and
// If-Modified-Since, they make a server whose first page is unchanged
// answer 304, which ends the poll with Stats.NotModified and no records.
// Only the first page is conditional; when it changed, every page is read.
func (f *Fetcher) FetchIfChanged(ctx context.Context, since Validators, fn func(Record) error) (Stats, error) {
	var st Stats
	c := &f.cfg
	next := f.first()
	seen := map[string]bool{}
	pageNo, offset, seenRecords := c.FirstPage, 0, 0
	for n := 1; ; n++ {
		if c.MaxPages > 0 && n > c.MaxPages {
			st.Capped = true
			return st, nil
		}
		u := next
		switch c.Paging {
		case PagingPage:
			u = f.pageURL(pageNo)
		case PagingOffset:
			u = f.withQuery(c.OffsetParam, strconv.Itoa(offset), c.LimitParam, strconv.Itoa(c.Limit))
		case PagingRange:
			u = f.withQuery(c.RangeParam, fmt.Sprintf("%d-%d", offset, offset+c.RangeSize-1))
		}
		var cond *Validators
		if n == 1 {
			cond = &since
		}
		p, err := f.get(ctx, u, &st, cond)
		if err != nil {
			return st, err
		}
		if n == 1 {
			st.Validators = Validators{ETag: p.header.Get("ETag"), LastModified: p.header.Get("Last-Modified")}
			if p.status == http.StatusNotModified {
				st.NotModified = true
				st.Validators.ETag = cmpOr(st.Validators.ETag, since.ETag)
				st.Validators.LastModified = cmpOr(st.Validators.LastModified, since.LastModified)
				return st, nil
			}
		}
		if c.Paging == PagingRange && p.status == http.StatusNoContent {
			return st, nil
		}
		st.Pages++
		recs, err := records(p.body, c.Records)
		if err != nil {
			return st, fmt.Errorf("page %d of %s: %w", n, u, err)
		}
		for i, v := range recs {
			if err := fn(Record{Values: v, URL: u, Page: n, Item: i + 1}); err != nil {
				return st, err
			}
			st.Records++
		}
		seenRecords += len(recs)
		switch c.Paging {
		case PagingNone:
			return st, nil
		case PagingNext:
			seen[u] = true
			link, err := lookupString(p.body, c.Next)
			if err != nil {
				return st, fmt.Errorf("page %d of %s: next link: %w", n, u, err)
			}
			if link == "" {
				return st, nil
			}
			ref, err := url.Parse(link)
			if err != nil {
				return st, fmt.Errorf("page %d of %s: next link %q: %w", n, u, link, err)
			}
			next = f.withoutKey(mustParse(u).ResolveReference(ref))
			if seen[next] {
				return st, fmt.Errorf("page %d of %s: next link %s was fetched already", n, u, next)
			}
		case PagingPage, PagingOffset:
			if len(recs) == 0 {
				return st, nil
			}
			if c.Total != "" {
				total, err := lookupCount(p.body, c.Total)
				if err != nil {
					return st, fmt.Errorf("page %d of %s: total: %w", n, u, err)
				}
				if seenRecords >= total {
					return st, nil
				}
			}
			pageNo++
			offset += len(recs)
		case PagingRange:
			if p.status == http.StatusOK {
				return st, nil
			}
			last, total, err := contentRange(p.header.Get("Content-Range"))
			if err != nil {
				return st, fmt.Errorf("page %d of %s: %w", n, u, err)
			}
			if last < offset || last+1 >= total {
				return st, nil
			}
			offset = last + 1
		}
	}
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}

// withoutKey is u without the API key's query parameter, which a server
// may repeat in its next links: the request adds it again, and it stays
// out of Record.URL and errors.
func (f *Fetcher) withoutKey(u *url.URL) string {
	if p := f.cfg.Auth.Param; p != "" {
		q := u.Query()
		if _, ok := q[p]; ok {
			q.Del(p)
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// first is the first page's URL with Query added.
func (f *Fetcher) first() string { return f.withQuery() }

// withQuery is the URL with Query and the pairs kv added.
func (f *Fetcher) withQuery(kv ...string) string {
	u := *f.url
	q := u.Query()
	for k, vs := range f.cfg.Query {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (f *Fetcher) pageURL(n int) string {
	if !strings.Contains(f.cfg.URL, "{page}") {
		return f.withQuery(f.cfg.PageParam, strconv.Itoa(n))
	}
	u := mustParse(strings.ReplaceAll(f.cfg.URL, "{page}", strconv.Itoa(n)))
	q := u.Query()
	for k, vs := range f.cfg.Query {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// get fetches u, retrying 429, 503 and network errors, and checks the
// answer: 200, or 206 and 204 with PagingRange, whose body is JSON.
//
// A 401 to a request that carried an OAuth2 token drops the token and is
// tried again at once with a new one, once per page.
//
// With cond, the request is conditional on its validators, and a 304 is
// an answer.
func (f *Fetcher) get(ctx context.Context, u string, st *Stats, cond *Validators) (page, error) {
	c := &f.cfg
	renewed := false
	var slept time.Duration // before the next try
	for attempt := 1; ; attempt++ {
		p, wait, err := f.try(ctx, u, st, cond, slept)
		slept = 0
		if err == nil {
			return p, nil
		}
		if p.status == http.StatusUnauthorized && p.token != nil && !renewed {
			f.tokens.drop(p.token)
			renewed = true
			attempt--
			continue
		}
		if wait < 0 || ctx.Err() != nil {
			return page{}, err
		}
		if attempt >= c.Attempts {
			return page{}, fmt.Errorf("attempt %d of %d: %w", attempt, c.Attempts, err)
		}
		if wait == 0 {
			wait = c.Backoff.Delay(attempt)
		}
		if wait > c.MaxRetryAfter {
			return page{}, fmt.Errorf("get %s: retry after %s, longer than %s: %w", u, wait, c.MaxRetryAfter, err)
		}
		if !retry.Sleep(ctx, wait) {
			return page{}, fmt.Errorf("get %s: %w", u, ctx.Err())
		}
		slept = wait
	}
}

// try makes one request, slept after the one before. A retryable error
// comes with the wait its answer asks (zero: none asked), a permanent one
// with a negative wait.
func (f *Fetcher) try(ctx context.Context, u string, st *Stats, cond *Validators, slept time.Duration) (page, time.Duration, error) {
	c := &f.cfg
	var (
		sent   bool
		status int
		read   int64
		waited = slept
	)
	defer func() {
		if sent && c.Observe != nil {
			c.Observe(status, read, waited)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, -1, fmt.Errorf("get %s: %w", u, err)
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	conditional := false
	if cond != nil && cond.ETag != "" {
		req.Header.Set("If-None-Match", cond.ETag)
		conditional = true
	}
	if cond != nil && cond.LastModified != "" {
		req.Header.Set("If-Modified-Since", cond.LastModified)
		conditional = true
	}
	var p page
	if err := f.authorize(ctx, req, &p); err != nil {
		return page{}, authWait(ctx, err), err
	}
	if c.Hosts != nil {
		d, err := c.Hosts.Wait(ctx, req.URL.Host)
		if err != nil {
			return page{}, -1, err
		}
		waited += d
	}
	st.Requests++
	sent = true
	resp, err := c.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return page{}, -1, fmt.Errorf("get %s: %w", u, ctx.Err())
		}
		return page{}, 0, fmt.Errorf("get %s: %w", u, redactErr(err, c.Auth.Param))
	}
	defer resp.Body.Close()
	p.status, status = resp.StatusCode, resp.StatusCode
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		read, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return page{}, retryAfter(resp.Header.Get("Retry-After"), time.Now()),
			fmt.Errorf("get %s: %w %s", u, ErrStatus, resp.Status)
	case http.StatusOK:
	case http.StatusNotModified:
		if !conditional {
			return page{}, -1, fmt.Errorf("get %s: %w %s", u, ErrStatus, resp.Status)
		}
		p.header = resp.Header
		return p, 0, nil
	case http.StatusPartialContent, http.StatusNoContent:
		if c.Paging != PagingRange {
			return page{}, -1, fmt.Errorf("get %s: %w %s", u, ErrStatus, resp.Status)
		}
	default:
		return p, -1, fmt.Errorf("get %s: %w %s", u, ErrStatus, resp.Status)
	}
	var r io.Reader = resp.Body
	if c.MaxBytes > 0 {
		r = io.LimitReader(resp.Body, c.MaxBytes-st.Bytes+1)
	}
	body, err := io.ReadAll(r)
	read = int64(len(body))
	st.Bytes += read
	if c.MaxBytes > 0 && st.Bytes > c.MaxBytes {
		return page{}, -1, fmt.Errorf("get %s: %w (%d bytes)", u, ErrMaxBytes, c.MaxBytes)
	}
	if err != nil {
		if ctx.Err() != nil {
			return page{}, -1, fmt.Errorf("read %s: %w", u, ctx.Err())
		}
		return page{}, 0, fmt.Errorf("read %s: %w", u, redactErr(err, c.Auth.Param))
	}
	p.header = resp.Header
	if resp.StatusCode == http.StatusNoContent {
		return p, 0, nil
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return page{}, -1, fmt.Errorf("get %s: %w (content type %q)", u, ErrNotJSON, resp.Header.Get("Content-Type"))
	}
	p.body = body
	return p, 0, nil
}

// authorize adds the API key and the OAuth2 token to req, noting the
// token in p.
func (f *Fetcher) authorize(ctx context.Context, req *http.Request, p *page) error {
	a := &f.cfg.Auth
	switch {
	case a.APIKey != "" && a.Header != "":
		req.Header.Set(a.Header, a.APIKey)
	case a.APIKey != "" && a.Param != "":
		q := req.URL.Query()
		q.Set(a.Param, a.APIKey)
		req.URL.RawQuery = q.Encode()
	}
	if f.tokens == nil {
		return nil
	}
	tok, err := f.tokens.token(ctx)
	if err != nil {
		return err
	}
	tok.SetAuthHeader(req)
	p.token = tok
	return nil
}

// authWait is the retry wait of a token request's error: a network error
// is retried, an answer of the token endpoint is not.
func authWait(ctx context.Context, err error) time.Duration {
	var re *oauth2.RetrieveError
	if ctx.Err() != nil || errors.As(err, &re) {
		return -1
	}
	return 0
}

// retryAfter reads a Retry-After value, seconds or an HTTP date, as a
// wait from now; zero when there is none or it is past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// contentRange reads "unit first-last/total".
func contentRange(v string) (last, total int, err error) {
	_, spec, ok := strings.Cut(strings.TrimSpace(v), " ")
	rng, tot, ok2 := strings.Cut(spec, "/")
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("content-range %q: want \"unit first-last/total\"", v)
	}
	total, err = strconv.Atoi(tot)
	if err != nil {
		return 0, 0, fmt.Errorf("content-range %q: total: %w", v, err)
	}
	i := strings.LastIndex(rng, "-")
	if i < 0 {
		return 0, 0, fmt.Errorf("content-range %q: want first-last", v)
	}
	last, err = strconv.Atoi(rng[i+1:])
	if err != nil {
		return 0, 0, fmt.Errorf("content-range %q: last: %w", v, err)
	}
	return last, total, nil
}

// records reads the array at the dotted path of body as flat records.
func records(body []byte, path string) ([]map[string]*string, error) {
	raw, err := lookup(body, path)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("records at %q: absent", path)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("records at %q: not an array: %w", path, err)
	}
	out := make([]map[string]*string, 0, len(items))
	for i, it := range items {
		v, err := flat(it)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// flat reads one JSON object as a flat record.
func flat(b []byte) (map[string]*string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	out := make(map[string]*string, len(obj))
	names := make(map[string]string, len(obj))
	for name, v := range obj {
		key := strings.ToLower(strings.TrimSpace(name))
		if first, dup := names[key]; dup {
			return nil, fmt.Errorf("fields %q and %q are both the field %q", first, name, key)
		}
		names[key] = name
		s, ok, err := text(v)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", name, err)
		}
		if ok {
			out[key] = &s
		}
	}
	return out, nil
}

// text is a JSON value as record text: false for null.
func text(v json.RawMessage) (string, bool, error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || string(v) == "null":
		return "", false, nil
	case v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case v[0] == '{' || v[0] == '[':
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return "", false, err
		}
		return b.String(), true, nil
	}
	return string(v), true, nil
}

// lookup is the value at the dotted path of body (empty: body itself),
// nil when absent. A segment indexes an object by name, or an array by
// number.
func lookup(body []byte, path string) (json.RawMessage, error) {
	cur := json.RawMessage(bytes.TrimSpace(body))
	if !json.Valid(cur) {
		return nil, fmt.Errorf("%w: invalid JSON", ErrNotJSON)
	}
	if path == "" {
		return cur, nil
	}
	for seg := range strings.SplitSeq(path, ".") {
		switch {
		case len(cur) > 0 && cur[0] == '{':
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(cur, &obj); err != nil {
				return nil, fmt.Errorf("path %q: %w", path, err)
			}
			v, ok := obj[seg]
			if !ok {
				return nil, nil
			}
			cur = v
		case len(cur) > 0 && cur[0] == '[':
			i, err := strconv.Atoi(seg)
			if err != nil {
				return nil, nil
			}
			var arr []json.RawMessage
			if err := json.Unmarshal(cur, &arr); err != nil {
				return nil, fmt.Errorf("path %q: %w", path, err)
			}
			if i < 0 || i >= len(arr) {
				return nil, nil
			}
			cur = arr[i]
		default:
			return nil, nil
		}
	}
	if string(cur) == "null" {
		return nil, nil
	}
	return cur, nil
}

// lookupString is the string at path; empty when absent or null.
func lookupString(body []byte, path string) (string, error) {
	v, err := lookup(body, path)
	if err != nil || v == nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("path %q: not a string", path)
	}
	return s, nil
}

// lookupCount is the count at path, a number or a string of digits.
func lookupCount(body []byte, path string) (int, error) {
	v, err := lookup(body, path)
	if err != nil {
		return 0, err
	}
	if v == nil {
		return 0, fmt.Errorf("path %q: absent", path)
	}
	s, _, _ := text(v)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("path %q: not a count: %s", path, v)
	}
	return int(n), nil
}
