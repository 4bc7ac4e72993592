package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/extractor/internal/source/httpapi"
	"github.com/datamill/datamill/services/extractor/internal/source/poll"
	"github.com/datamill/datamill/services/extractor/internal/source/scrape"
)

// Defaults of the polled sources' options.
const (
	defaultEvery    = time.Hour
	defaultRate     = time.Second
	defaultMaxPages = 100
	defaultMaxBytes = 64 << 20
	defaultAttempts = 4
)

// polledOptions are the options the api and scrape kinds share.
type polledOptions struct {
	// Name is the source's name, unique in the dataset: its records'
	// source_name.
	Name string `yaml:"name"`
	// ID is the source field holding the offer's own id; Link the one
	// holding its URL.
	ID   string `yaml:"id"`
	Link string `yaml:"link"`
	// Map names, for a dataset field, the source field it takes; a field
	// not named takes the source field of its own name, but for the key
	// and the provenance fields, which the engine fills.
	Map map[string]string `yaml:"map"`
	// Set gives a dataset field a value when the source gives it none
	// (absent, null or empty): what the source leaves unsaid because it
	// goes without saying there (the currency of its salaries, the
	// location of a remote-only board's worldwide offers).
	Set map[string]string `yaml:"set"`
	// Every is the least time between two polls; Rate the least between
	// two requests to one host.
	Every time.Duration `yaml:"every"`
	Rate  time.Duration `yaml:"rate"`
	// MaxPages caps the pages of a poll.
	MaxPages int `yaml:"max_pages"`
}

// check reads the shared options of source s of a dataset.
func (o *polledOptions) check(s schemas.Source) error {
	if !validName(o.Name) {
		return fmt.Errorf("%s: a %s source needs a name: letters, digits, - and _ (got %q)", s.Where(), s.Kind, o.Name)
	}
	if o.Every < 0 || o.Rate < 0 || o.MaxPages < 0 {
		return fmt.Errorf("%s: every, rate and max_pages cannot be negative", s.Where())
	}
	for k := range o.Set {
		if slices.Contains(engineFields, k) {
			return fmt.Errorf("%s: set: %s is a provenance field, which the poll fills", s.Where(), k)
		}
	}
	o.Every = cmpOr(o.Every, defaultEvery)
	o.Rate = cmpOr(o.Rate, defaultRate)
	o.MaxPages = cmpOr(o.MaxPages, defaultMaxPages)
	return nil
}

func validName(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// apiOptions are the options of an api source: a JSON API polled.
type apiOptions struct {
	polledOptions `yaml:",inline"`
	URL           string            `yaml:"url"`
	Query         map[string]string `yaml:"query"`
	Headers       map[string]string `yaml:"headers"`
	// Records is the dotted path of the records' array in a page; empty
	// is the page itself.
	Records  string        `yaml:"records"`
	Paging   pagingOptions `yaml:"paging"`
	Auth     authOptions   `yaml:"auth"`
	MaxBytes int64         `yaml:"max_bytes"`
	Attempts int           `yaml:"attempts"`
}

// pagingOptions are an api source's pagination.
type pagingOptions struct {
	// Style is none, next, page, offset or range.
	Style string `yaml:"style"`
	// Next is the dotted path of the next page's link (next).
	Next string `yaml:"next"`
	// Param is the page, offset or range query parameter.
	Param string `yaml:"param"`
	// First is the first page's number (page).
	First int `yaml:"first"`
	// Total is the dotted path of the total count (page, offset).
	Total string `yaml:"total"`
	// Size is the records asked per page (offset, range), in the
	// parameter SizeParam (offset).
	Size      int    `yaml:"size"`
	SizeParam string `yaml:"size_param"`
}

// authOptions are an api source's credentials, each read from a secret
// file of EXTRACTOR_SECRETS_DIR by its name. A source whose secret files
// are not there is off.
type authOptions struct {
	// APIKey is sent in a header or a query parameter.
	APIKey *struct {
		Secret string `yaml:"secret"`
		Header string `yaml:"header"`
		Param  string `yaml:"param"`
	} `yaml:"api_key"`
	// QuerySecrets are query parameters read from secret files (an
	// application id beside its key), by parameter.
	QuerySecrets map[string]string `yaml:"query_secrets"`
	// OAuth2 is the client credentials grant.
	OAuth2 *struct {
		TokenURL     string            `yaml:"token_url"`
		ClientID     string            `yaml:"client_id"`     // a secret's name
		ClientSecret string            `yaml:"client_secret"` // a secret's name
		Scopes       []string          `yaml:"scopes"`
		Params       map[string]string `yaml:"params"`
	} `yaml:"oauth2"`
}

// secrets are the names of the secret files a source's auth reads.
func (a authOptions) secrets() []string {
	var out []string
	if a.APIKey != nil {
		out = append(out, a.APIKey.Secret)
	}
	for _, p := range slices.Sorted(maps.Keys(a.QuerySecrets)) {
		out = append(out, a.QuerySecrets[p])
	}
	if a.OAuth2 != nil {
		out = append(out, a.OAuth2.ClientID, a.OAuth2.ClientSecret)
	}
	return out
}

// declareAPI reads an api source.
func declareAPI(dataset string, s schemas.Source) (declaration, error) {
	var o apiOptions
	if err := s.Options(&o); err != nil {
		return declaration{}, err
	}
	if err := o.check(s); err != nil {
		return declaration{}, err
	}
	if o.ID == "" {
		return declaration{}, fmt.Errorf("%s: an api source needs id: the field holding each record's own id", s.Where())
	}
	if o.MaxBytes < 0 || o.Attempts < 0 {
		return declaration{}, fmt.Errorf("%s: max_bytes and attempts cannot be negative", s.Where())
	}
	o.MaxBytes = cmpOr(o.MaxBytes, defaultMaxBytes)
	o.Attempts = cmpOr(o.Attempts, defaultAttempts)
	a := o.Auth
	if a.APIKey != nil && (a.APIKey.Secret == "" || (a.APIKey.Header == "") == (a.APIKey.Param == "")) {
		return declaration{}, fmt.Errorf("%s: auth.api_key needs a secret and one of header or param", s.Where())
	}
	if a.OAuth2 != nil && (a.OAuth2.TokenURL == "" || a.OAuth2.ClientID == "" || a.OAuth2.ClientSecret == "") {
		return declaration{}, fmt.Errorf("%s: auth.oauth2 needs token_url, client_id and client_secret (the names of secret files)", s.Where())
	}
	for _, name := range a.secrets() {
		if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
			return declaration{}, fmt.Errorf("%s: secret %q: give the name of a file of EXTRACTOR_SECRETS_DIR, not a path", s.Where(), name)
		}
	}
	// The fetcher checks the URL and the paging once the secrets are in;
	// check them now, so that a mistake stops the start.
	if _, err := httpapi.New(o.fetchConfig(nil)); err != nil {
		return declaration{}, fmt.Errorf("%s: %w", s.Where(), err)
	}
	return declaration{dataset: dataset, kind: "api", name: o.Name, options: &o}, nil
}

// fetchConfig is the fetcher's configuration, with the secrets read.
func (o *apiOptions) fetchConfig(secrets map[string]string) httpapi.Config {
	p := o.Paging
	cfg := httpapi.Config{
		URL: o.URL, Query: url.Values{}, Header: http.Header{}, Records: o.Records,
		Paging: httpapi.Paging(p.Style), Next: p.Next, Total: p.Total,
		MaxPages: o.MaxPages, MaxBytes: o.MaxBytes, Attempts: o.Attempts,
		Backoff: retry.Backoff{First: time.Second, Max: 30 * time.Second, Jitter: 0.2},
	}
	for k, v := range o.Query {
		cfg.Query.Set(k, v)
	}
	for k, v := range o.Headers {
		cfg.Header.Set(k, v)
	}
	for param, name := range o.Auth.QuerySecrets {
		cfg.Query.Set(param, secrets[name])
	}
	switch cfg.Paging {
	case httpapi.PagingPage:
		cfg.PageParam, cfg.FirstPage = p.Param, p.First
	case httpapi.PagingOffset:
		cfg.OffsetParam, cfg.LimitParam, cfg.Limit = p.Param, p.SizeParam, p.Size
	case httpapi.PagingRange:
		cfg.RangeParam, cfg.RangeSize = p.Param, p.Size
	}
	return cfg
}

// scrapeOptions are the options of a scrape source: a job board's pages.
type scrapeOptions struct {
	polledOptions `yaml:",inline"`
	// List is the first list page; Item selects each offer on it, Next
	// the next page's link, Detail the link to an offer's own page.
	List   string `yaml:"list"`
	Item   string `yaml:"item"`
	Next   string `yaml:"next"`
	Detail string `yaml:"detail"`
	Fields []struct {
		Name     string `yaml:"name"`
		Selector string `yaml:"selector"`
		Attr     string `yaml:"attr"`
		All      bool   `yaml:"all"`
		Regex    string `yaml:"regex"`
		Required bool   `yaml:"required"`
	} `yaml:"fields"`
	// Contact is the URL the User-Agent names; EXTRACTOR_CONTACT_URL
	// when empty.
	Contact   string `yaml:"contact"`
	UserAgent string `yaml:"user_agent"`
}

// declareScrape reads a scrape source.
func declareScrape(dataset string, s schemas.Source) (declaration, error) {
	var o scrapeOptions
	if err := s.Options(&o); err != nil {
		return declaration{}, err
	}
	if err := o.check(s); err != nil {
		return declaration{}, err
	}
	cfg := o.scrapeConfig("https://example.invalid/contact")
	if _, err := scrape.New(cfg); err != nil {
		return declaration{}, fmt.Errorf("%s: %w", s.Where(), err)
	}
	return declaration{dataset: dataset, kind: "scrape", name: o.Name, options: &o}, nil
}

func (o *scrapeOptions) scrapeConfig(contact string) scrape.Config {
	cfg := scrape.Config{
		ListURL: o.List, Item: o.Item, Next: o.Next, Detail: o.Detail, MaxPages: o.MaxPages,
		Interval: o.Rate, Contact: cmpOr(o.Contact, contact), UserAgent: o.UserAgent,
	}
	for _, f := range o.Fields {
		cfg.Fields = append(cfg.Fields, scrape.Field{Name: f.Name, Selector: f.Selector, Attr: f.Attr, All: f.All, Regex: f.Regex, Required: f.Required})
	}
	return cfg
}

// buildAPI polls the api sources of decls.
func buildAPI(w *wiring, decls []declaration) (source, error) {
	hosts := map[string]*httpapi.Hosts{}
	var feeds []poll.Feed
	for _, d := range decls {
		o := d.options.(*apiOptions)
		secrets, missing, err := readSecrets(w.cfg.SecretsDir, o.Auth.secrets())
		if err != nil {
			return nil, fmt.Errorf("api source %s of dataset %s: %w", d.name, d.dataset, err)
		}
		if missing != "" {
			w.log.Warn("api source is off: its credentials are not there", zap.String("dataset", d.dataset),
				zap.String("source", d.name), zap.String("missing", filepath.Join(w.cfg.SecretsDir, missing)))
			continue
		}
		cfg := o.fetchConfig(secrets)
		applyAuth(&cfg, o.Auth, secrets)
		host := hostOf(o.URL)
		if hosts[host] == nil {
			hosts[host] = httpapi.NewHosts(maxRate(decls, host))
		}
		cfg.Hosts = hosts[host]
		metrics, err := w.pollMetrics()
		if err != nil {
			return nil, err
		}
		cfg.Observe = metrics.Observer(d.dataset, d.name)
		fetcher, err := httpapi.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("api source %s of dataset %s: %w", d.name, d.dataset, err)
		}
		ds := w.datasets[d.dataset]
		fields := ds.Fields() // once: Fields copies
		// Only an endpoint answered in one request can say that nothing
		// changed: a page of a paged one says it of itself alone.
		conditional := cfg.Paging == httpapi.PagingNone || cfg.Paging == ""
		feeds = append(feeds, poll.Feed{
			Dataset: d.dataset, Name: d.name, Kind: "api", Every: o.Every,
			Fetch: func(ctx context.Context, since poll.Validators, emit func(poll.Offer) error) (poll.Outcome, error) {
				var validators httpapi.Validators
				if conditional {
					validators = httpapi.Validators{ETag: since.ETag, LastModified: since.LastModified}
				}
				st, err := fetcher.FetchIfChanged(ctx, validators, func(r httpapi.Record) error {
					return emit(o.offer(fields, ds.KeyField, r))
				})
				return poll.Outcome{
					NotModified: st.NotModified, Pages: st.Pages,
					Validators: poll.Validators{ETag: st.Validators.ETag, LastModified: st.Validators.LastModified},
				}, err
			},
		})
	}
	return w.pollSource("api", feeds)
}

// applyAuth sets the fetcher's credentials.
func applyAuth(cfg *httpapi.Config, a authOptions, secrets map[string]string) {
	if k := a.APIKey; k != nil {
		cfg.Auth.APIKey, cfg.Auth.Header, cfg.Auth.Param = secrets[k.Secret], k.Header, k.Param
	}
	if o := a.OAuth2; o != nil {
		cfg.Auth.TokenURL, cfg.Auth.Scopes = o.TokenURL, o.Scopes
		cfg.Auth.ClientID, cfg.Auth.ClientSecret = secrets[o.ClientID], secrets[o.ClientSecret]
		cfg.Auth.TokenParams = url.Values{}
		for k, v := range o.Params {
			cfg.Auth.TokenParams.Set(k, v)
		}
	}
}

// hostOf is the host of a declared URL ("" when it has none).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// maxRate is the largest rate the sources of decls on host declare: the
// one their shared spacing keeps.
func maxRate(decls []declaration, host string) time.Duration {
	var out time.Duration
	for _, d := range decls {
		if o, ok := d.options.(*apiOptions); ok && hostOf(o.URL) == host {
			out = max(out, o.Rate)
		}
	}
	return out
}

// offer is a fetched record as an offer of the dataset whose fields are
// fields and key key.
func (o *polledOptions) offer(fields []string, key string, r httpapi.Record) poll.Offer {
	return poll.Offer{
		ID: lookup(r.Values, o.ID), URL: lookup(r.Values, o.Link),
		Values:   o.mapped(fields, key, func(path string) *string { return lookupPtr(r.Values, path) }),
		Position: fmt.Sprintf("page %d item %d", r.Page, r.Item),
	}
}

// mapped are the dataset's values of a record whose source fields get
// reads: each field from the source field Map names for it, or from its
// own name, but for the key and the provenance fields, which the engine
// fills.
func (o *polledOptions) mapped(fields []string, key string, get func(path string) *string) map[string]*string {
	out := map[string]*string{}
	for _, f := range fields {
		path, ok := o.Map[f]
		if !ok {
			if f == key || slices.Contains(engineFields, f) {
				continue
			}
			path = f
		}
		if v := get(path); v != nil {
			out[f] = v
		}
	}
	for f, v := range o.Set {
		if (out[f] == nil || strings.TrimSpace(*out[f]) == "") && slices.Contains(fields, f) {
			out[f] = &v
		}
	}
	return out
}

// engineFields are the fields the poll engine fills.
var engineFields = []string{poll.FieldSourceName, poll.FieldSourceID, poll.FieldSourceURL, poll.FieldFetchedAt}

// lookup is the value at path in values, "" when absent.
func lookup(values map[string]*string, path string) string {
	if v := lookupPtr(values, path); v != nil {
		return *v
	}
	return ""
}

// lookupPtr is the value at path, a field name or a dotted path into a
// field holding a JSON object (company.display_name); nil when absent or
// null. Names are matched lower-cased, as the fetcher keeps them.
func lookupPtr(values map[string]*string, path string) *string {
	path = strings.ToLower(path)
	head, rest, nested := strings.Cut(path, ".")
	v := values[head]
	if !nested || v == nil {
		return v
	}
	var node any
	if json.Unmarshal([]byte(*v), &node) != nil {
		return nil
	}
	for _, part := range strings.Split(rest, ".") {
		obj, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = nil
		for k, child := range obj {
			if strings.ToLower(k) == part {
				node = child
				break
			}
		}
	}
	switch n := node.(type) {
	case nil:
		return nil
	case string:
		return &n
	case float64:
		s := strconv.FormatFloat(n, 'f', -1, 64)
		return &s
	case bool:
		s := strconv.FormatBool(n)
		return &s
	default:
		b, _ := json.Marshal(n)
		s := string(b)
		return &s
	}
}

// buildScrape polls the scrape sources of decls.
func buildScrape(w *wiring, decls []declaration) (source, error) {
	var feeds []poll.Feed
	for _, d := range decls {
		o := d.options.(*scrapeOptions)
		metrics, err := w.pollMetrics()
		if err != nil {
			return nil, err
		}
		cfg := o.scrapeConfig(w.cfg.ContactURL)
		cfg.Observe = metrics.Observer(d.dataset, d.name)
		scraper, err := scrape.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("scrape source %s of dataset %s: %w", d.name, d.dataset, err)
		}
		ds := w.datasets[d.dataset]
		fields := ds.Fields() // once: Fields copies
		feeds = append(feeds, poll.Feed{
			Dataset: d.dataset, Name: d.name, Kind: "scrape", Every: o.Every,
			Fetch: func(ctx context.Context, _ poll.Validators, emit func(poll.Offer) error) (poll.Outcome, error) {
				res, err := scraper.Scrape(ctx)
				out := poll.Outcome{Pages: res.Pages}
				for _, drop := range res.Dropped {
					if drop.Index < 0 { // a page not fetched; its item, if any, stays
						w.log.Debug("page not fetched", zap.String("source", d.name), zap.String("url", drop.URL), zap.String("why", drop.Reason))
						continue
					}
					out.Dropped = append(out.Dropped, drop.URL+": "+drop.Reason)
				}
				if err != nil {
					return out, err
				}
				for i, it := range res.Items {
					get := func(path string) *string {
						if v, ok := it.Fields[path]; ok {
							return &v
						}
						return nil
					}
					id := it.URL
					if o.ID != "" {
						id = it.Fields[o.ID]
					}
					link := it.URL
					if o.Link != "" {
						link = it.Fields[o.Link]
					}
					if err := emit(poll.Offer{
						ID: id, URL: link, Values: o.mapped(fields, ds.KeyField, get),
						Position: fmt.Sprintf("%s item %d", it.URL, i+1),
					}); err != nil {
						return out, err
					}
				}
				return out, nil
			},
		})
	}
	return w.pollSource("scrape", feeds)
}

// pollSource is the poll engine over feeds.
func (w *wiring) pollSource(kind string, feeds []poll.Feed) (source, error) {
	metrics, err := w.pollMetrics()
	if err != nil {
		return nil, err
	}
	return poll.New(poll.Config{
		Log: w.log.Named(kind), Kafka: w.cfg.Kafka, Out: w.out, Datasets: w.datasets, Feeds: feeds,
		Batch: w.cfg.FileBatch, Retry: retry.Backoff{First: w.cfg.PollRetry, Max: 32 * w.cfg.PollRetry, Jitter: 0.2},
		Terminal: os.Stderr, Metrics: metrics,
	})
}

// pollMetrics are the metrics the polled kinds share, registered by the
// first to ask.
func (w *wiring) pollMetrics() (poll.Metrics, error) {
	if w.polls == nil {
		m, err := poll.NewMetrics(w.metrics, w.dead)
		if err != nil {
			return poll.Metrics{}, err
		}
		w.polls = &m
	}
	return *w.polls, nil
}

// readSecrets reads the secret files names in dir. A file that is not
// there is returned as missing (the source is then off); one that cannot
// be read, or is empty, is an error.
func readSecrets(dir string, names []string) (map[string]string, string, error) {
	out := map[string]string{}
	for _, name := range names {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, name, nil
		}
		v, err := httpapi.ReadSecret(path)
		if err != nil {
			return nil, "", err
		}
		out[name] = v
	}
	return out, "", nil
}
