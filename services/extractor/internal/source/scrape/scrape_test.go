package scrape

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// request is what the board saw of one request.
type request struct {
	Path      string
	UserAgent string
	At        time.Time
}

// board is a local job board that answers pages by path and records every
// request, and the most requests it ever had in flight at once.
type board struct {
	*httptest.Server
	mu       sync.Mutex
	pages    map[string]string
	requests []request
	inFlight int
	maxIn    int
}

// newBoard serves pages (path → body; "/robots.txt" included if given);
// other paths answer 404. Page bodies may say {{base}} for the server URL.
func newBoard(t testing.TB, pages map[string]string) *board {
	t.Helper()
	b := &board{pages: pages}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.requests = append(b.requests, request{Path: r.URL.RequestURI(), UserAgent: r.UserAgent(), At: time.Now()})
		b.inFlight++
		b.maxIn = max(b.maxIn, b.inFlight)
		body, ok := b.pages[r.URL.RequestURI()]
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			b.inFlight--
			b.mu.Unlock()
		}()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if code, to, ok := strings.Cut(body, " "); ok && len(code) == 3 && code[0] == '3' || code == "500" {
			// "301 /elsewhere" redirects; "500 x" fails.
			n, _ := strconv.Atoi(code)
			if n >= 500 {
				http.Error(w, to, n)
				return
			}
			http.Redirect(w, r, strings.ReplaceAll(to, "{{base}}", "http://"+r.Host), n)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(strings.ReplaceAll(body, "{{base}}", "http://"+r.Host)))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *board) seen() []request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]request(nil), b.requests...)
}

func (b *board) paths() []string {
	var out []string
	for _, r := range b.seen() {
		out = append(out, r.Path)
	}
	return out
}

// listItem is one offer on a list page, in the shape of We Work Remotely's.
func listItem(href, title, company string, regions ...string) string {
	var chips strings.Builder
	for _, r := range regions {
		chips.WriteString(`<span class="region company">` + r + `</span>`)
	}
	return `<li class="feature"><a href="` + href + `">
	  <span class="title">` + title + `</span>
	  <span class="company">` + company + `</span>` + chips.String() + `
	  <span class="date"><time datetime="2026-07-2` + "3" + `T10:00:00Z">3d</time></span>
	</a></li>`
}

func listPage(next string, items ...string) string {
	p := `<html><body><section class="jobs"><ul>` + strings.Join(items, "\n") + `</ul></section>`
	if next != "" {
		p += `<div class="pagination"><a rel="next" href="` + next + `">Next ›</a></div>`
	}
	return p + `</body></html>`
}

func detailPage(ld string) string {
	p := `<html><head><title>offer</title>`
	if ld != "" {
		p += `<script type="application/ld+json">` + ld + `</script>`
	}
	return p + `</head><body><h1>offer</h1></body></html>`
}

// wwrConfig declares a board in the shape of We Work Remotely's listing.
func wwrConfig(listURL string) Config {
	return Config{
		ListURL: listURL,
		Item:    "section.jobs li.feature",
		Fields: []Field{
			{Name: "title", Selector: ".title", Required: true},
			{Name: "company", Selector: ".company:not(.region)"},
			{Name: "regions", Selector: ".region", All: true},
			{Name: "posted", Selector: "time", Attr: "datetime"},
			{Name: "link", Selector: "a", Attr: "href"},
		},
		Next:    `a[rel="next"]`,
		Detail:  "a",
		Contact: "https://datamill.example/contact",
	}
}

func scrapeBoard(t testing.TB, cfg Config) Result {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	res, err := s.Scrape(t.Context())
	if err != nil {
		t.Fatalf("Scrape: %v", err)
	}
	return res
}

func TestScrapeReadsItemsAndFollowsNextPagesUpToTheLimit(t *testing.T) {
	b := newBoard(t, map[string]string{
		"/jobs": listPage("/jobs?page=2",
			listItem("/remote-jobs/acme-go", "  Senior Go\n Engineer ", "Acme", "Anywhere in the World", "USA Only"),
			listItem("/remote-jobs/beta-data", "Data Analyst", "Beta")),
		"/jobs?page=2":           listPage("/jobs?page=3", listItem("/remote-jobs/gamma-ops", "SRE", "Gamma", "Europe Only")),
		"/jobs?page=3":           listPage("", listItem("/remote-jobs/delta-pm", "PM", "Delta")),
		"/remote-jobs/acme-go":   detailPage(""),
		"/remote-jobs/beta-data": detailPage(""),
		"/remote-jobs/gamma-ops": detailPage(""),
		"/remote-jobs/delta-pm":  detailPage(""),
	})
	cfg := wwrConfig(b.URL + "/jobs")
	cfg.MaxPages = 2
	res := scrapeBoard(t, cfg)

	want := []Item{
		{URL: b.URL + "/remote-jobs/acme-go", Fields: map[string]string{
			"title": "Senior Go Engineer", "company": "Acme", "regions": "Anywhere in the World, USA Only",
			"posted": "2026-07-23T10:00:00Z", "link": b.URL + "/remote-jobs/acme-go",
		}},
		{URL: b.URL + "/remote-jobs/beta-data", Fields: map[string]string{
			"title": "Data Analyst", "company": "Beta", "posted": "2026-07-23T10:00:00Z", "link": b.URL + "/remote-jobs/beta-data",
		}},
		{URL: b.URL + "/remote-jobs/gamma-ops", Fields: map[string]string{
			"title": "SRE", "company": "Gamma", "regions": "Europe Only",
			"posted": "2026-07-23T10:00:00Z", "link": b.URL + "/remote-jobs/gamma-ops",
		}},
	}
	if diff := cmp.Diff(want, res.Items); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if res.Pages != 2 {
		t.Errorf("pages = %d, want 2", res.Pages)
	}
	wantPaths := []string{
		"/robots.txt", "/jobs", "/remote-jobs/acme-go", "/remote-jobs/beta-data",
		"/jobs?page=2", "/remote-jobs/gamma-ops",
	}
	if diff := cmp.Diff(wantPaths, b.paths()); diff != "" {
		t.Errorf("requests (-want +got), page 3 must not be fetched:\n%s", diff)
	}
}

func TestScrapeDropsAnItemMissingARequiredFieldAndSaysWhy(t *testing.T) {
	b := newBoard(t, map[string]string{
		"/jobs": listPage("",
			listItem("/a", "Go Engineer", "Acme"),
			listItem("/b", "   ", "Beta"),
			listItem("/c", "Salary hidden", "Gamma")),
	})
	cfg := wwrConfig(b.URL + "/jobs")
	cfg.Detail = ""
	cfg.Fields = append(cfg.Fields, Field{Name: "team", Selector: ".company", Regex: `^(Acme|Beta)$`, Required: true})
	res := scrapeBoard(t, cfg)

	var titles []string
	for _, it := range res.Items {
		titles = append(titles, it.Fields["title"])
	}
	if diff := cmp.Diff([]string{"Go Engineer"}, titles); diff != "" {
		t.Errorf("kept titles (-want +got):\n%s", diff)
	}
	want := []Drop{
		{URL: b.URL + "/jobs", Index: 1, Reason: `required field "title" is empty`},
		{URL: b.URL + "/jobs", Index: 2, Reason: `required field "team" is empty`},
	}
	if diff := cmp.Diff(want, res.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

const postingLD = `{
  "@context": "https://schema.org/",
  "@type": "JobPosting",
  "title": "Staff Go Engineer",
  "datePosted": "2026-07-20",
  "employmentType": ["FULL_TIME", "CONTRACTOR"],
  "hiringOrganization": {"@type": "Organization", "name": "Acme Corp"},
  "jobLocation": {"@type": "Place", "address": {"@type": "PostalAddress", "addressLocality": "Berlin", "addressCountry": "DE"}},
  "applicantLocationRequirements": [{"@type": "Country", "name": "Germany"}, {"@type": "Country", "name": "France"}],
  "baseSalary": {"@type": "MonetaryAmount", "currency": "EUR",
    "value": {"@type": "QuantitativeValue", "minValue": 90000, "maxValue": 120000, "unitText": "YEAR"}}
}`

func TestScrapePrefersTheDetailPagesJSONLDOverTheListsFields(t *testing.T) {
	b := newBoard(t, map[string]string{
		"/jobs": listPage("",
			listItem("/with-ld", "Go Engineer (list)", "Acme", "Europe Only"),
			listItem("/without-ld", "Analyst", "Beta")),
		"/with-ld":    detailPage(`{"@context":"https://schema.org","@type":"BreadcrumbList"}</script><script type="application/ld+json">` + postingLD),
		"/without-ld": detailPage(`not json`),
	})
	res := scrapeBoard(t, wwrConfig(b.URL+"/jobs"))

	want := []Item{
		{URL: b.URL + "/with-ld", Fields: map[string]string{
			"title": "Staff Go Engineer", "company": "Acme Corp", "regions": "Europe Only",
			"posted": "2026-07-23T10:00:00Z", "link": b.URL + "/with-ld",
			"date_posted": "2026-07-20", "employment_type": "FULL_TIME, CONTRACTOR",
			"location": "Berlin, DE", "applicant_location": "Germany, France",
			"salary_currency": "EUR", "salary_min": "90000", "salary_max": "120000", "salary_unit": "YEAR",
		}},
		{URL: b.URL + "/without-ld", Fields: map[string]string{
			"title": "Analyst", "company": "Beta", "posted": "2026-07-23T10:00:00Z", "link": b.URL + "/without-ld",
		}},
	}
	if diff := cmp.Diff(want, res.Items); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

func TestScrapeNeverFetchesADisallowedPath(t *testing.T) {
	b := newBoard(t, map[string]string{
		"/robots.txt": "User-agent: *\nDisallow: /\n\nUser-agent: datamill\nDisallow: /private/\nAllow: /\n",
		"/jobs": listPage("/private/jobs?page=2",
			listItem("/remote-jobs/open", "Open", "Acme"),
			listItem("/private/secret", "Secret", "Beta")),
		"/remote-jobs/open":    detailPage(postingLD),
		"/private/secret":      detailPage(postingLD),
		"/private/jobs?page=2": listPage("", listItem("/remote-jobs/x", "X", "X")),
	})
	cfg := wwrConfig(b.URL + "/jobs")
	cfg.MaxPages = 5
	res := scrapeBoard(t, cfg)

	for _, p := range b.paths() {
		if strings.HasPrefix(p, "/private/") {
			t.Errorf("fetched %s, which robots.txt disallows", p)
		}
	}
	var titles []string
	for _, it := range res.Items {
		titles = append(titles, it.Fields["title"])
	}
	// The secret offer keeps its list fields: only its page is off limits.
	if diff := cmp.Diff([]string{"Staff Go Engineer", "Secret"}, titles); diff != "" {
		t.Errorf("titles (-want +got):\n%s", diff)
	}
	want := []Drop{
		{URL: b.URL + "/private/secret", Index: -1, Reason: "detail page: get " + b.URL + "/private/secret: disallowed by robots.txt"},
		{URL: b.URL + "/private/jobs?page=2", Index: -1, Reason: "get " + b.URL + "/private/jobs?page=2: disallowed by robots.txt"},
	}
	if diff := cmp.Diff(want, res.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}

	// A first list page robots.txt forbids is an error, not zero offers.
	cfg.ListURL = b.URL + "/private/jobs?page=2"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scrape(t.Context()); err == nil || !strings.Contains(err.Error(), ErrDisallowed.Error()) {
		t.Errorf("Scrape of a disallowed first page: err = %v, want %v", err, ErrDisallowed)
	}
}

func TestScrapeWaitsBetweenRequestsToAHost(t *testing.T) {
	tests := map[string]struct {
		robots   string
		interval time.Duration
		want     time.Duration
	}{
		"crawl delay larger than the interval": {
			robots: "User-agent: *\nCrawl-delay: 0.15\n", interval: 20 * time.Millisecond, want: 150 * time.Millisecond,
		},
		"interval larger than the crawl delay": {
			robots: "User-agent: datamill\nCrawl-delay: 0.02\n", interval: 120 * time.Millisecond, want: 120 * time.Millisecond,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			b := newBoard(t, map[string]string{
				"/robots.txt":  tt.robots,
				"/jobs":        listPage("/jobs?page=2", listItem("/a", "A", "Acme"), listItem("/b", "B", "Beta")),
				"/jobs?page=2": listPage("", listItem("/c", "C", "Gamma")),
				"/a":           detailPage(""), "/b": detailPage(""), "/c": detailPage(""),
			})
			cfg := wwrConfig(b.URL + "/jobs")
			cfg.MaxPages = 2
			cfg.Interval = tt.interval
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Two scrapes at once still take turns on the one host.
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					if _, err := s.Scrape(t.Context()); err != nil {
						t.Errorf("Scrape: %v", err)
					}
				})
			}
			wg.Wait()
			reqs := b.seen()
			if len(reqs) != 11 { // robots.txt once, then 5 pages per scrape
				t.Errorf("%d requests, want 11: %v", len(reqs), b.paths())
			}
			for i := 1; i < len(reqs); i++ {
				if gap := reqs[i].At.Sub(reqs[i-1].At); gap < tt.want {
					t.Errorf("request %d (%s) came %v after the previous one, want at least %v", i, reqs[i].Path, gap, tt.want)
				}
			}
			if b.maxIn != 1 {
				t.Errorf("at most %d requests in flight, want 1", b.maxIn)
			}
		})
	}
}

func TestScrapeSendsAUserAgentNamingDatamillAndTheContact(t *testing.T) {
	tests := map[string]struct {
		userAgent, want string
	}{
		"default": {want: "datamill/1.0 (+https://datamill.example/contact)"},
		"configured": {
			userAgent: "datamill-jobs/2 (+https://ops.example/bots; bots@ops.example)",
			want:      "datamill-jobs/2 (+https://ops.example/bots; bots@ops.example)",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			b := newBoard(t, map[string]string{
				"/jobs": listPage("", listItem("/a", "A", "Acme")),
				"/a":    detailPage(""),
			})
			cfg := wwrConfig(b.URL + "/jobs")
			cfg.UserAgent = tt.userAgent
			scrapeBoard(t, cfg)
			reqs := b.seen()
			if len(reqs) != 3 {
				t.Errorf("%d requests, want 3: %v", len(reqs), b.paths())
			}
			for _, r := range reqs {
				if r.UserAgent != tt.want {
					t.Errorf("%s sent User-Agent %q, want %q", r.Path, r.UserAgent, tt.want)
				}
			}
		})
	}
}

func TestNewRejectsABadDeclaration(t *testing.T) {
	tests := map[string]struct {
		edit func(*Config)
		want string
	}{
		"no contact":          {func(c *Config) { c.Contact = "" }, "contact: required"},
		"agent not datamill":  {func(c *Config) { c.UserAgent = "Mozilla/5.0" }, "must name datamill"},
		"relative list url":   {func(c *Config) { c.ListURL = "/jobs" }, "not an absolute http(s) url"},
		"bad item selector":   {func(c *Config) { c.Item = "li[" }, "item selector"},
		"regex without group": {func(c *Config) { c.Fields[0].Regex = `\d+` }, "has 0 groups, want 1"},
		"regex two groups":    {func(c *Config) { c.Fields[0].Regex = `(\d+)-(\d+)` }, "has 2 groups, want 1"},
		"field twice":         {func(c *Config) { c.Fields = append(c.Fields, Field{Name: "title"}) }, "declared twice"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := wwrConfig("http://127.0.0.1:1/jobs")
			tt.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestScrapeFollowsNoRedirectToADisallowedPathOrAnotherHost(t *testing.T) {
	other := newBoard(t, map[string]string{"/offer": detailPage(postingLD)})
	b := newBoard(t, map[string]string{
		"/robots.txt": "User-agent: datamill\nDisallow: /private/\n",
		"/jobs": listPage("",
			listItem("/moved", "Moved", "Acme"),
			listItem("/away", "Away", "Beta"),
			listItem("/renamed", "Renamed", "Gamma")),
		"/moved":               "301 /private/offer",
		"/away":                "302 " + other.URL + "/offer",
		"/renamed":             "301 {{base}}/remote-jobs/renamed",
		"/private/offer":       detailPage(postingLD),
		"/remote-jobs/renamed": detailPage(postingLD),
	})
	res := scrapeBoard(t, wwrConfig(b.URL+"/jobs"))

	wantPaths := []string{"/robots.txt", "/jobs", "/moved", "/away", "/renamed", "/remote-jobs/renamed"}
	if diff := cmp.Diff(wantPaths, b.paths()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got := other.paths(); len(got) != 0 {
		t.Errorf("the other host got %v, want nothing", got)
	}
	var titles []string
	for _, it := range res.Items {
		titles = append(titles, it.Fields["title"])
	}
	if diff := cmp.Diff([]string{"Moved", "Away", "Staff Go Engineer"}, titles); diff != "" {
		t.Errorf("titles (-want +got):\n%s", diff)
	}
	if len(res.Dropped) != 2 || !strings.Contains(res.Dropped[0].Reason, ErrDisallowed.Error()) ||
		!strings.Contains(res.Dropped[1].Reason, "status 302") {
		t.Errorf("dropped = %+v, want the disallowed redirect then the other host's 302", res.Dropped)
	}
}

func TestScrapeKeepsAnItemWhoseDetailPageIsGoneButFailsOnAServerError(t *testing.T) {
	b := newBoard(t, map[string]string{
		"/jobs":   listPage("", listItem("/gone", "Gone", "Acme"), listItem("/broken", "Broken", "Beta")),
		"/broken": "500 boom",
	})
	s, err := New(wwrConfig(b.URL + "/jobs"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Scrape(t.Context())
	if err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("Scrape: err = %v, want the detail page's status 500", err)
	}
	if len(res.Items) != 1 || res.Items[0].Fields["title"] != "Gone" {
		t.Errorf("items = %+v, want the one whose detail page is gone, with its list fields", res.Items)
	}
	want := []Drop{{URL: b.URL + "/gone", Index: -1, Reason: "detail page: get " + b.URL + "/gone: status 404"}}
	if diff := cmp.Diff(want, res.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

func TestScrapeObservesEveryRequest(t *testing.T) {
	const delay = 100 * time.Millisecond
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	pages := map[string]string{
		"/robots.txt": "User-agent: *\nCrawl-delay: 0.1\n",
		"/jobs": listPage("",
			listItem("/a", "A", "Acme"), listItem("/missing", "B", "Beta"), listItem(closed.URL+"/c", "C", "Gamma")),
		"/a": detailPage(""),
	}
	b := newBoard(t, pages)
	type observation struct {
		status int
		bytes  int64
		waited time.Duration
	}
	var obs []observation
	cfg := wwrConfig(b.URL + "/jobs")
	cfg.Observe = func(status int, n int64, waited time.Duration) {
		obs = append(obs, observation{status, n, waited})
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The item on a host that does not answer stops the scrape.
	if _, err := s.Scrape(t.Context()); err == nil {
		t.Error("Scrape with a detail page on a closed host ended without an error")
	}
	var statuses []int
	var total int64
	for _, o := range obs {
		statuses = append(statuses, o.status)
		total += o.bytes
	}
	// robots.txt, the list, /a, /missing, and the closed host's robots.txt.
	if diff := cmp.Diff([]int{200, 200, 200, 404, 0}, statuses); diff != "" {
		t.Fatalf("observed statuses (-want +got):\n%s", diff)
	}
	if want := int64(len(pages["/robots.txt"]) + len(pages["/jobs"]) + len(pages["/a"]) + len("404 page not found\n")); total != want {
		t.Errorf("observed %d bytes, want %d", total, want)
	}
	// Each request to the board but the first waited for the Crawl-delay
	// after the one before; the first to the closed host waited not.
	for i, o := range obs {
		least, most := time.Nanosecond, delay
		if i == 0 || i == 4 {
			least, most = 0, 0
		}
		if o.waited < least || o.waited > most {
			t.Errorf("request %d waited %s, want between %s and %s", i+1, o.waited, least, most)
		}
	}
}
