// Package scrape is the extractor's HTML scraping half: a Scraper walks a job
// board's list pages (an item selector, fields read from each item, a
// next-page link, a page limit), follows each item's detail page, and yields
// every item as a flat map of field name to text. A detail page carrying a
// schema.org JobPosting JSON-LD block wins over the list's fields for what it
// says (see JSONLDFields). An item missing a required field is dropped and
// the reason returned with the result, never silently.
//
// It is polite: robots.txt is read once per host and honoured (Disallow for
// the datamill agent, and Crawl-delay), every request carries a User-Agent
// naming datamill and a contact URL, and pages of one host are fetched one at
// a time, each starting at least the larger of the declared interval and the
// Crawl-delay after the previous one's response was read. Config.Observe
// sees every request's status, bytes and time waited, for metrics.
//
// It is not yet a declared extractor source: there is no Kafka, no
// checkpoint and no dedup here; it is what a `kind: scrape` source will call.
package scrape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"github.com/temoto/robotstxt"
)

// Agent is the product token robots.txt groups are matched against.
const Agent = "datamill"

// maxPageBytes bounds what is read of one page.
const maxPageBytes = 8 << 20

// ErrDisallowed marks a URL robots.txt forbids datamill to fetch.
var ErrDisallowed = errors.New("disallowed by robots.txt")

// Field is one value read from each list item.
type Field struct {
	// Name is the key of the value in the item's map.
	Name string
	// Selector is a CSS selector inside the item; empty means the item
	// itself. The first match is read, or every match with All.
	Selector string
	// Attr is the attribute read; empty reads the element's text, its
	// whitespace collapsed. href and src are resolved against the page URL.
	Attr string
	// All joins the values of every match with ", " (region chips in no
	// fixed order), instead of reading the first.
	All bool
	// Regex, when set, must have exactly one group: the value becomes what
	// the group matched, or empty when the regex does not match.
	Regex string
	// Required drops the item, with a reason, when the value is empty.
	Required bool
}

// Config declares what to scrape and how politely.
type Config struct {
	// ListURL is the first list page.
	ListURL string
	// Item selects each offer on a list page.
	Item string
	// Fields are read from each item.
	Fields []Field
	// Next selects the link to the next list page; empty reads one page.
	Next string
	// MaxPages bounds the list pages read; 0 means 1.
	MaxPages int
	// Detail selects, inside an item, the link to its detail page; empty
	// follows none.
	Detail string
	// Interval is the least time between two requests to one host; a
	// larger robots.txt Crawl-delay wins.
	Interval time.Duration
	// Contact is the URL named in the User-Agent (required).
	Contact string
	// UserAgent replaces the default "datamill/1.0 (+Contact)"; it must
	// still name datamill.
	UserAgent string
	// Client makes the requests; nil means a client with a 30 s timeout.
	Client *http.Client
	// Observe, when set, is called once per request (robots.txt's too),
	// when it is done: with its status (0 when no answer came; a followed
	// redirect's final status), the bytes of body read, and the time
	// waited before it for the host's interval or Crawl-delay. It is
	// called while the host's turn is held and should return quickly.
	Observe func(status int, bytes int64, waited time.Duration)
}

// Item is one scraped offer.
type Item struct {
	// URL is the item's detail page, or the list page it was on.
	URL string
	// Fields maps field names to values; empty values are left out.
	Fields map[string]string
}

// Drop is an item left out, or a page not fetched, and why.
type Drop struct {
	URL    string
	Index  int // the item's position on its list page, -1 for a page
	Reason string
}

// Result is what one scrape found.
type Result struct {
	Items   []Item
	Dropped []Drop
	// Pages is how many list pages were read.
	Pages int
}

type field struct {
	Field
	sel goquery.Matcher
	re  *regexp.Regexp
}

// Scraper scrapes one declared board. It is safe for concurrent use; pages
// of one host are still fetched one at a time.
type Scraper struct {
	cfg    Config
	list   *url.URL
	item   goquery.Matcher
	next   goquery.Matcher
	detail goquery.Matcher
	fields []field
	ua     string
	client *http.Client

	mu    sync.Mutex
	hosts map[string]*host
}

// host is the politeness state of one scheme://host.
type host struct {
	mu     sync.Mutex // held across a wait and its request
	robots *robotstxt.Group
	delay  time.Duration
	last   time.Time
}

// New checks the declaration and compiles its selectors and regexes.
func New(cfg Config) (*Scraper, error) {
	s := &Scraper{cfg: cfg, hosts: map[string]*host{}, client: cfg.Client}
	var err error
	if s.list, err = url.Parse(cfg.ListURL); err != nil || s.list.Host == "" ||
		(s.list.Scheme != "http" && s.list.Scheme != "https") {
		return nil, fmt.Errorf("list url %q: not an absolute http(s) url", cfg.ListURL)
	}
	if cfg.Contact == "" {
		return nil, errors.New("contact: required, the User-Agent names it")
	}
	s.ua = cfg.UserAgent
	if s.ua == "" {
		s.ua = "datamill/1.0 (+" + cfg.Contact + ")"
	}
	if !strings.Contains(strings.ToLower(s.ua), Agent) {
		return nil, fmt.Errorf("user agent %q: must name %s", s.ua, Agent)
	}
	if cfg.Item == "" {
		return nil, errors.New("item selector: required")
	}
	if s.item, err = cascadia.Compile(cfg.Item); err != nil {
		return nil, fmt.Errorf("item selector %q: %w", cfg.Item, err)
	}
	if cfg.Next != "" {
		if s.next, err = cascadia.Compile(cfg.Next); err != nil {
			return nil, fmt.Errorf("next selector %q: %w", cfg.Next, err)
		}
	}
	if cfg.Detail != "" {
		if s.detail, err = cascadia.Compile(cfg.Detail); err != nil {
			return nil, fmt.Errorf("detail selector %q: %w", cfg.Detail, err)
		}
	}
	if cfg.MaxPages < 0 {
		return nil, fmt.Errorf("max pages %d: negative", cfg.MaxPages)
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("interval %v: negative", cfg.Interval)
	}
	seen := map[string]bool{}
	for _, f := range cfg.Fields {
		c, err := compileField(f)
		if err != nil {
			return nil, err
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("field %q: declared twice", f.Name)
		}
		seen[f.Name] = true
		s.fields = append(s.fields, c)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	c := *s.client
	c.CheckRedirect = s.checkRedirect
	s.client = &c
	return s, nil
}

func compileField(f Field) (field, error) {
	c := field{Field: f}
	if f.Name == "" {
		return c, errors.New("field: name required")
	}
	if f.Selector != "" {
		sel, err := cascadia.Compile(f.Selector)
		if err != nil {
			return c, fmt.Errorf("field %q: selector %q: %w", f.Name, f.Selector, err)
		}
		c.sel = sel
	}
	if f.Regex != "" {
		re, err := regexp.Compile(f.Regex)
		if err != nil {
			return c, fmt.Errorf("field %q: regex: %w", f.Name, err)
		}
		if re.NumSubexp() != 1 {
			return c, fmt.Errorf("field %q: regex %q has %d groups, want 1", f.Name, f.Regex, re.NumSubexp())
		}
		c.re = re
	}
	return c, nil
}

// Scrape reads the list pages and the detail pages of their items. A list
// page that cannot be fetched is an error (a first page robots.txt forbids
// too); a detail page robots.txt forbids, or answering 4xx, leaves the item
// with its list fields and a Drop saying why; a 5xx or network error stops
// the scrape with an error, returned with what was read so far. Redirects
// are followed only on the same host and to paths robots.txt allows; one to
// another host is answered as its 3xx status.
func (s *Scraper) Scrape(ctx context.Context) (Result, error) {
	var res Result
	pages := max(s.cfg.MaxPages, 1)
	visited := map[string]bool{}
	for page := s.list; page != nil && res.Pages < pages; {
		if visited[page.String()] {
			break
		}
		visited[page.String()] = true
		doc, err := s.get(ctx, page)
		if errors.Is(err, ErrDisallowed) && res.Pages > 0 {
			res.Dropped = append(res.Dropped, Drop{URL: page.String(), Index: -1, Reason: err.Error()})
			break
		}
		if err != nil {
			return res, fmt.Errorf("list page %d: %w", res.Pages+1, err)
		}
		res.Pages++
		for i, node := range doc.FindMatcher(s.item).EachIter() {
			if err := s.scrapeItem(ctx, &res, page, i, node); err != nil {
				return res, err
			}
		}
		page = s.nextPage(doc, page)
	}
	return res, nil
}

// nextPage is the page the next link points to, or nil.
func (s *Scraper) nextPage(doc *goquery.Document, page *url.URL) *url.URL {
	if s.next == nil {
		return nil
	}
	href, ok := doc.FindMatcher(s.next).First().Attr("href")
	if !ok || strings.TrimSpace(href) == "" {
		return nil
	}
	u, err := page.Parse(strings.TrimSpace(href))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil
	}
	u.Fragment = ""
	return u
}

// scrapeItem reads item i of a list page, follows its detail page, and adds
// it to res, or drops it with a reason.
func (s *Scraper) scrapeItem(ctx context.Context, res *Result, page *url.URL, i int, node *goquery.Selection) error {
	values := extract(node, s.fields, page)
	it := Item{URL: page.String(), Fields: values}
	if s.detail != nil {
		href, ok := node.FindMatcher(s.detail).First().Attr("href")
		if d, err := page.Parse(strings.TrimSpace(href)); ok && err == nil && (d.Scheme == "http" || d.Scheme == "https") {
			d.Fragment = ""
			it.URL = d.String()
			doc, err := s.get(ctx, d)
			var st statusError
			switch {
			case errors.Is(err, ErrDisallowed), errors.As(err, &st) && st.code < 500:
				res.Dropped = append(res.Dropped, Drop{URL: d.String(), Index: -1, Reason: "detail page: " + err.Error()})
			case err != nil:
				return fmt.Errorf("detail page of item %d of %s: %w", i, page, err)
			default:
				for k, v := range JSONLDFields(doc.Selection) {
					values[k] = v
				}
			}
		}
	}
	// A required value the detail page supplied keeps the item.
	if reason := missing(values, s.fields); reason != "" {
		res.Dropped = append(res.Dropped, Drop{URL: it.URL, Index: i, Reason: reason})
		return nil
	}
	res.Items = append(res.Items, it)
	return nil
}

// extract reads the fields from one item; empty values are left out.
func extract(node *goquery.Selection, fields []field, base *url.URL) map[string]string {
	values := map[string]string{}
	for _, f := range fields {
		if v := f.value(node, base); v != "" {
			values[f.Name] = v
		}
	}
	return values
}

// missing names the first required field without a value, or is empty.
func missing(values map[string]string, fields []field) string {
	for _, f := range fields {
		if f.Required && values[f.Name] == "" {
			return fmt.Sprintf("required field %q is empty", f.Name)
		}
	}
	return ""
}

func (f field) value(node *goquery.Selection, base *url.URL) string {
	matches := node
	if f.sel != nil {
		matches = node.FindMatcher(f.sel)
	}
	if !f.All {
		matches = matches.First()
	}
	var parts []string
	for _, m := range matches.EachIter() {
		var v string
		if f.Attr == "" {
			v = strings.Join(strings.Fields(m.Text()), " ")
		} else {
			a, ok := m.Attr(f.Attr)
			if !ok {
				continue
			}
			v = strings.TrimSpace(a)
			if (f.Attr == "href" || f.Attr == "src") && v != "" && base != nil {
				if u, err := base.Parse(v); err == nil {
					v = u.String()
				}
			}
		}
		if f.re != nil {
			m := f.re.FindStringSubmatch(v)
			if m == nil {
				continue
			}
			v = strings.TrimSpace(m[1])
		}
		if v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, ", ")
}

// checkRedirect follows a redirect only on the same host and to a path
// robots.txt allows; another host's redirect is answered as its 3xx status.
func (s *Scraper) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("redirect to %s: stopped after %d redirects", req.URL, len(via))
	}
	if first := via[0].URL; req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	s.mu.Lock()
	h := s.hosts[req.URL.Scheme+"://"+req.URL.Host]
	s.mu.Unlock()
	// The host's lock is held by this request, so its robots are settled
	// (nil while robots.txt itself is being read).
	if h != nil && h.robots != nil && !h.robots.Test(req.URL.RequestURI()) {
		return fmt.Errorf("redirect to %s: %w", req.URL, ErrDisallowed)
	}
	return nil
}

// statusError is a page answered with a status other than 200.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// get fetches one page politely and parses it.
func (s *Scraper) get(ctx context.Context, u *url.URL) (*goquery.Document, error) {
	h, err := s.host(ctx, u)
	if err != nil {
		return nil, err
	}
	if !h.robots.Test(u.RequestURI()) {
		return nil, fmt.Errorf("get %s: %w", u, ErrDisallowed)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	status, body, err := s.fetch(ctx, h, u)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("get %s: %w", u, statusError{status})
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", u, err)
	}
	return doc, nil
}

// host returns the politeness state of u's host, reading its robots.txt
// the first time.
func (s *Scraper) host(ctx context.Context, u *url.URL) (*host, error) {
	key := u.Scheme + "://" + u.Host
	s.mu.Lock()
	h, ok := s.hosts[key]
	if !ok {
		h = &host{delay: s.cfg.Interval}
		s.hosts[key] = h
	}
	s.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.robots != nil {
		return h, nil
	}
	robotsURL := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/robots.txt"}
	status, body, err := s.fetch(ctx, h, robotsURL)
	if err != nil {
		return nil, err
	}
	// A 4xx allows everything, a 5xx nothing; an unparsable file allows
	// nothing either, rather than guess.
	data, err := robotstxt.FromStatusAndBytes(status, body)
	if err != nil {
		data, _ = robotstxt.FromStatusAndBytes(http.StatusServiceUnavailable, nil)
	}
	h.robots = data.FindGroup(Agent)
	h.delay = max(s.cfg.Interval, h.robots.CrawlDelay)
	return h, nil
}

// fetch waits for h's turn, sends one GET and reads its body; h.mu is held
// by the caller. The next turn is counted from when the body was read, so
// the server sees requests at least the delay apart.
func (s *Scraper) fetch(ctx context.Context, h *host, u *url.URL) (status int, body []byte, err error) {
	defer func() { h.last = time.Now() }()
	var waited time.Duration
	if !h.last.IsZero() {
		if wait := time.Until(h.last.Add(h.delay)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, nil, fmt.Errorf("wait to get %s: %w", u, ctx.Err())
			case <-t.C:
			}
			waited = wait
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("request %s: %w", u, err)
	}
	if s.cfg.Observe != nil {
		defer func() { s.cfg.Observe(status, int64(len(body)), waited) }()
	}
	req.Header.Set("User-Agent", s.ua)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxPageBytes))
	if err != nil {
		return resp.StatusCode, body, fmt.Errorf("read %s: %w", u, err)
	}
	return resp.StatusCode, body, nil
}
