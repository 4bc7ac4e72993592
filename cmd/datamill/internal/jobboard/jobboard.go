// Package jobboard is a local job board: one http.Handler that serves
// generated job offers (see package gen) through the shapes of the real job
// APIs and boards the jobs dataset declares, each offer on its source_name,
// so that a declaration only changes the host to point at it:
//
//	GET  /api/remote-jobs                              Remotive (BOM, ETag)
//	GET  /api/job-board-api?page=N                     Arbeitnow (links.next, per_page varies)
//	GET  /api                                          RemoteOK (legal notice first)
//	GET  /v1/api/jobs/{country}/search/{page}          Adzuna (app_id, app_key)
//	POST /connexion/oauth2/access_token?realm=/partenaire
//	GET  /partenaire/offresdemploi/v2/offres/search    France Travail (OAuth2, range)
//	GET  /categories/remote-programming-jobs?page=N    We Work Remotely list pages
//	GET  /remote-jobs/{slug}                           its detail pages (JSON-LD)
//	GET  /robots.txt                                   Disallow: /admin/, Crawl-delay
//
// gen writes offers of four sources; a generated board moves a third of
// them, chosen by the seed, to adzuna and francetravail (half each), with
// those sources' ids and URLs.
//
// The JSON APIs have the quirks of real ones, deterministic and
// configurable: every Nth request of an API answers a 200 HTML challenge page,
// every Mth a 429 with Retry-After: 1. Under /_board/ the board answers
// what tests and the demo observe and change: the offers per source
// (/_board/counts), one offer changed (/_board/change), and every request
// it answered (/_board/requests). A Board is safe for concurrent use.
package jobboard

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
)

// Sources are the sources the board serves: gen's four plus two APIs with
// auth.
var Sources = []string{"remotive", "arbeitnow", "remoteok", "weworkremotely", "adzuna", "francetravail"}

// Credentials the board takes when Config names none.
const (
	DefaultAdzunaAppID    = "datamill-local"
	DefaultAdzunaAppKey   = "local-adzuna-key"
	DefaultFTClientID     = "PAR_datamill_local"
	DefaultFTClientSecret = "local-francetravail-secret"
)

// Paths of each source on the board, as on the real hosts.
const (
	PathRemotive      = "/api/remote-jobs"
	PathArbeitnow     = "/api/job-board-api"
	PathRemoteOK      = "/api"
	PathAdzuna        = "/v1/api/jobs/{country}/search/{page}"
	PathFTToken       = "/connexion/oauth2/access_token" // #nosec G101 -- a URL path of the local board, no credential
	PathFTSearch      = "/partenaire/offresdemploi/v2/offres/search"
	PathBoardList     = "/categories/remote-programming-jobs"
	PathBoardDetail   = "/remote-jobs/"
	PathDisallowed    = "/admin/"
	ftRealm           = "/partenaire"
	ftMaxRange        = 150
	adzunaMaxPerPage  = 50
	adzunaDefaultPage = 10
	adzunaSnippet     = 100 // runes of description Adzuna shows
)

// Config chooses the offers and the quirks of a board.
type Config struct {
	// Rows, Seed and Dirty are `gen jobs`'s: the board generates its
	// offers with them unless Offers is set.
	Rows  int
	Seed  uint64
	Dirty float64
	// Offers, when not nil, are served as they are, each on its
	// source_name (one of Sources); Rows, Seed and Dirty are then unused.
	Offers []gen.Job

	// ChallengeEvery makes every Nth request of each JSON API answer a
	// 200 HTML challenge page; TooManyEvery every Mth a 429 with
	// Retry-After: 1. The 429 wins when both fall on one request; 0 is
	// off. Each API counts its own requests, auth refusals included;
	// France Travail's token endpoint, the scraped board's pages and
	// /_board/ have no quirks.
	ChallengeEvery, TooManyEvery int
	// CrawlDelay is robots.txt's Crawl-delay, written in seconds (0.05
	// for 50ms); 0 leaves it out.
	CrawlDelay time.Duration

	// AdzunaAppID and AdzunaAppKey are the credentials Adzuna takes;
	// empty means DefaultAdzunaAppID and DefaultAdzunaAppKey.
	AdzunaAppID, AdzunaAppKey string
	// FTClientID and FTClientSecret are France Travail's client
	// credentials; empty means DefaultFTClientID and DefaultFTClientSecret.
	FTClientID, FTClientSecret string
	// TokenLifetime is how long a France Travail token is valid (its
	// expires_in, in whole seconds); 0 means 1499 s, as the real one.
	TokenLifetime time.Duration

	// ArbeitnowPerPage are the sizes of Arbeitnow's pages, taken in
	// turn; nil means 100 then 75.
	ArbeitnowPerPage []int
	// BoardPerPage is the offers on a list page of the scraped board; 0
	// means 25.
	BoardPerPage int

	// Now is the board's clock (token expiry, request times); nil is
	// time.Now.
	Now func() time.Time
}

// Request is one request the board answered.
type Request struct {
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Query     string    `json:"query"`
	Host      string    `json:"host"`
	UserAgent string    `json:"user_agent"`
	Time      time.Time `json:"time"`
	Status    int       `json:"status"`
}

// Board serves the offers; see the package doc.
type Board struct {
	cfg Config
	mux *http.ServeMux

	mu       sync.Mutex
	offers   map[string][]*offer // by source, in the order served
	hits     map[string]int      // requests per API, for the quirks
	tokens   map[string]time.Time
	tokenReq int
	log      []Request
	updated  time.Time // when the offers last changed
}

// New checks cfg, generates or takes the offers and returns the board.
func New(cfg Config) (*Board, error) {
	switch {
	case cfg.Offers == nil && cfg.Rows < 0:
		return nil, fmt.Errorf("jobboard: rows %d: want 0 or more", cfg.Rows)
	case cfg.Dirty < 0 || cfg.Dirty > 1:
		return nil, fmt.Errorf("jobboard: dirty %g: want a share in [0, 1]", cfg.Dirty)
	case cfg.ChallengeEvery < 0 || cfg.TooManyEvery < 0:
		return nil, fmt.Errorf("jobboard: challenge every %d, 429 every %d: want 0 (off) or more", cfg.ChallengeEvery, cfg.TooManyEvery)
	case cfg.CrawlDelay < 0 || cfg.TokenLifetime < 0 || cfg.BoardPerPage < 0:
		return nil, fmt.Errorf("jobboard: crawl delay %v, token lifetime %v, board page %d: want 0 or more", cfg.CrawlDelay, cfg.TokenLifetime, cfg.BoardPerPage)
	}
	for _, n := range cfg.ArbeitnowPerPage {
		if n < 1 {
			return nil, fmt.Errorf("jobboard: arbeitnow page size %d: want 1 or more", n)
		}
	}
	cfg.AdzunaAppID = cmpOr(cfg.AdzunaAppID, DefaultAdzunaAppID)
	cfg.AdzunaAppKey = cmpOr(cfg.AdzunaAppKey, DefaultAdzunaAppKey)
	cfg.FTClientID = cmpOr(cfg.FTClientID, DefaultFTClientID)
	cfg.FTClientSecret = cmpOr(cfg.FTClientSecret, DefaultFTClientSecret)
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = 1499 * time.Second
	}
	if cfg.ArbeitnowPerPage == nil {
		cfg.ArbeitnowPerPage = []int{100, 75}
	}
	if cfg.BoardPerPage == 0 {
		cfg.BoardPerPage = 25
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	jobs := cfg.Offers
	if jobs == nil {
		jobs = generate(cfg)
	}
	b := &Board{cfg: cfg, offers: map[string][]*offer{}, hits: map[string]int{}, tokens: map[string]time.Time{}, updated: cfg.Now()}
	for i, j := range jobs {
		o, err := newOffer(j, i)
		if err != nil {
			return nil, fmt.Errorf("jobboard: offer %d: %w", i+1, err)
		}
		if o.ID == "" || b.find(o.Source, o.ID) != nil {
			return nil, fmt.Errorf("jobboard: offer %d: %s id %q is empty or taken", i+1, o.Source, o.ID)
		}
		b.offers[o.Source] = append(b.offers[o.Source], o)
	}
	b.routes()
	return b, nil
}

// generate writes cfg.Rows offers with gen and moves a third of them,
// chosen by the seed, to adzuna and francetravail.
func generate(cfg Config) []gen.Job {
	g := gen.NewJobs(gen.JobsOptions{Offers: cfg.Rows, Seed: cfg.Seed, Dirty: cfg.Dirty})
	rnd := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x3c6ef372fe94f82b)) // #nosec G404 -- seeded, reproducible test data
	ids := map[string]int{}
	var jobs []gen.Job
	for {
		j, ok := g.Next()
		if !ok {
			return jobs
		}
		switch x := rnd.Float64(); {
		case x < 1.0/6:
			relabel(&j, "adzuna", ids)
		case x < 2.0/6:
			relabel(&j, "francetravail", ids)
		}
		jobs = append(jobs, j)
	}
}

// relabel moves j to source, with that source's next id and its URL. Its
// date keeps its instant (or its dirt).
func relabel(j *gen.Job, source string, ids map[string]int) {
	ids[source]++
	n := ids[source]
	var id, u string
	switch source {
	case "adzuna":
		id = fmt.Sprint(4_100_000_000 + 7*n)
		u = "https://www.adzuna.de/details/" + id
	default: // francetravail
		id = fmt.Sprintf("%03d%s", 100+n%900, letters(n))
		u = "https://candidat.francetravail.fr/offres/recherche/detail/" + id
	}
	set := func(col int, v string) { j.Values[col] = &v }
	set(colSource, source)
	set(colSourceID, id)
	if j.Values[colURL] != nil {
		set(colURL, u)
	}
}

// letters writes n in base 26 with A to Z, at least four letters.
func letters(n int) string {
	var b []byte
	for i := 0; i < 4 || n > 0; i++ {
		b = append(b, byte('A'+n%26))
		n /= 26
	}
	slices.Reverse(b)
	return string(b)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (b *Board) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET "+PathRemotive, b.remotive)
	m.HandleFunc("GET "+PathArbeitnow, b.arbeitnow)
	m.HandleFunc("GET "+PathRemoteOK, b.remoteOK)
	m.HandleFunc("GET "+PathAdzuna, b.adzuna)
	m.HandleFunc("POST "+PathFTToken, b.ftToken)
	m.HandleFunc("GET "+PathFTSearch, b.ftSearch)
	m.HandleFunc("GET "+PathBoardList, b.boardList)
	m.HandleFunc("GET "+PathBoardDetail+"{slug}", b.boardDetail)
	m.HandleFunc("GET /robots.txt", b.robots)
	m.HandleFunc("GET "+PathDisallowed, b.admin)
	m.HandleFunc("GET /{$}", b.index)
	m.HandleFunc("GET /_board/counts", b.countsHandler)
	m.HandleFunc("POST /_board/change", b.changeHandler)
	m.HandleFunc("GET /_board/requests", b.requestsHandler)
	b.mux = m
}

// ServeHTTP answers r and records it.
func (b *Board) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := b.cfg.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	b.mux.ServeHTTP(sw, r)
	b.mu.Lock()
	b.log = append(b.log, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
		UserAgent: r.UserAgent(), Time: at, Status: sw.status,
	})
	b.mu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Requests returns every request answered so far, in order.
func (b *Board) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

// Counts returns the offers each source serves: what a full extraction
// of it yields. Dirty offers count too: a scraped offer whose title is
// missing (its title span is empty) is among weworkremotely's, so a
// declaration that requires a title drops it with a reason.
func (b *Board) Counts() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(Sources))
	for _, s := range Sources {
		out[s] = len(b.offers[s])
	}
	return out
}

// TokenRequests returns how many France Travail tokens were asked for,
// granted or not.
func (b *Board) TokenRequests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokenReq
}

// IDs returns the ids of a source's offers, in the order served.
func (b *Board) IDs(source string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, o := range b.offers[source] {
		out = append(out, o.ID)
	}
	return out
}

// Served is an offer as a source serves it: the source and its own id.
type Served struct{ Source, ID string }

// Duplicates are the offers the board serves twice (gen's copies: on two
// sources, or on one when it moved both to adzuna or francetravail), one
// group each, sorted, for the groups whose title and company are served:
// those a cleaner can match.
func (b *Board) Duplicates() [][]Served {
	b.mu.Lock()
	defer b.mu.Unlock()
	groups := map[int][]Served{}
	known := map[int]bool{}
	for _, src := range Sources {
		for _, o := range b.offers[src] {
			if _, ok := known[o.Offer]; !ok {
				known[o.Offer] = true
			}
			known[o.Offer] = known[o.Offer] && strings.TrimSpace(o.Title) != "" && strings.TrimSpace(o.Company) != ""
			groups[o.Offer] = append(groups[o.Offer], Served{Source: src, ID: o.ID})
		}
	}
	var out [][]Served
	for n, g := range groups {
		if len(g) > 1 && known[n] {
			slices.SortFunc(g, func(a, b Served) int { return strings.Compare(a.Source+a.ID, b.Source+b.ID) })
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b []Served) int { return strings.Compare(a[0].Source+a[0].ID, b[0].Source+b[0].ID) })
	return out
}

// Change changes the title of one offer, so that the next poll of its
// source sees it changed; id is the source's own id (for weworkremotely
// its slug, with or without "remote-jobs/").
func (b *Board) Change(source, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.find(source, id)
	if o == nil {
		return fmt.Errorf("change %s offer %q: no such offer", source, id)
	}
	o.Rev++
	b.updated = b.cfg.Now()
	return nil
}

// find is the offer of source with id, or nil; b.mu is held.
func (b *Board) find(source, id string) *offer {
	for _, o := range b.offers[source] {
		if o.ID == id || source == "weworkremotely" && o.slug() == id {
			return o
		}
	}
	return nil
}

// URLs returns each source's URL on a board served at base, plus
// francetravail_token, the URL of France Travail's token endpoint.
func URLs(base string) map[string]string {
	base = strings.TrimSuffix(base, "/")
	return map[string]string{
		"remotive":            base + PathRemotive,
		"arbeitnow":           base + PathArbeitnow,
		"remoteok":            base + PathRemoteOK,
		"adzuna":              base + strings.ReplaceAll(PathAdzuna, "{country}", "de"),
		"francetravail":       base + PathFTSearch,
		"francetravail_token": base + PathFTToken + "?realm=" + ftRealm,
		"weworkremotely":      base + PathBoardList,
	}
}

// quirk counts a request of api and answers it with a challenge page or
// a 429 when its turn has come; it tells whether it answered.
func (b *Board) quirk(w http.ResponseWriter, api string) bool {
	b.mu.Lock()
	b.hits[api]++
	n := b.hits[api]
	b.mu.Unlock()
	switch {
	case b.cfg.TooManyEvery > 0 && n%b.cfg.TooManyEvery == 0:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintln(w, "Too Many Requests")
		return true
	case b.cfg.ChallengeEvery > 0 && n%b.cfg.ChallengeEvery == 0:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, challengePage)
		return true
	}
	return false
}

const challengePage = `<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>` +
	`<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta name="robots" content="noindex,nofollow"></head>` +
	`<body><div class="main-wrapper"><h1>Checking if the site connection is secure</h1>` +
	`<p>Enable JavaScript and cookies to continue</p></div></body></html>`

func (b *Board) countsHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, b.Counts())
}

func (b *Board) requestsHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, b.Requests())
}

func (b *Board) changeHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := b.Change(q.Get("source"), q.Get("id")); err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Board) index(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, URLs("http://"+r.Host))
}

// writeJSON writes v as the body, HTML left unescaped as job APIs do.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func marshal(v any) ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	return []byte(sb.String()), nil
}
