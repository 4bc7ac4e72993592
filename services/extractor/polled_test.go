package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/extractor/internal/source/poll"
)

// board is a job board on loopback: a JSON API whose pages link to the
// next one, and the same offers as HTML list and detail pages, with a
// robots.txt. It records every request.
type board struct {
	srv  *httptest.Server
	per  int // offers per API page
	mu   sync.Mutex
	jobs []boardJob
	// hold, when set, holds API page holdPage until it is closed.
	hold     chan struct{}
	holdPage int
	held     chan struct{} // closed once a request for holdPage is held
	// challenges is how many API requests still get a challenge page.
	challenges int
	requests   []string // method path?query
}

type boardJob struct {
	Slug, Title, Company, Location string
}

func newBoard(t *testing.T, n, per int) *board {
	b := &board{per: per}
	for i := range n {
		b.jobs = append(b.jobs, boardJob{
			Slug: fmt.Sprintf("job-%03d", i), Title: fmt.Sprintf("Engineer %d", i),
			Company: fmt.Sprintf("Company %d ", i%7), Location: []string{"Berlin", "Remote", "Paris, France"}[i%3],
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/offers", b.api)
	mux.HandleFunc("GET /board/list", b.list)
	mux.HandleFunc("GET /board/job/{slug}", b.detail)
	mux.HandleFunc("GET /robots.txt", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "User-agent: *\nDisallow: /board/job/job-001\n")
	})
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.requests = append(b.requests, r.Method+" "+r.URL.RequestURI())
		b.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *board) api(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	b.mu.Lock()
	if b.challenges > 0 {
		b.challenges--
		b.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><title>Just a moment...</title></html>")
		return
	}
	hold, held := b.hold, b.held
	if page == b.holdPage && hold != nil {
		b.held = nil
	}
	b.mu.Unlock()
	if page == b.holdPage && hold != nil {
		if held != nil {
			close(held)
		}
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var data []map[string]any
	if page == 1 {
		data = append(data, map[string]any{"legal": "a notice, not an offer"})
	}
	for i := (page - 1) * b.per; i < min(page*b.per, len(b.jobs)); i++ {
		j := b.jobs[i]
		data = append(data, map[string]any{
			"slug": j.Slug, "title": j.Title, "company_name": j.Company, "location": j.Location,
			"url": b.srv.URL + "/board/job/" + j.Slug, "remote": i%2 == 0,
		})
	}
	var next any
	if page*b.per < len(b.jobs) {
		next = fmt.Sprintf("%s/api/offers?page=%d", b.srv.URL, page+1)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "links": map[string]any{"next": next}})
}

func (b *board) list(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprint(w, "<html><body><ul>")
	for _, j := range b.jobs {
		fmt.Fprintf(w, `<li class="job"><a href="/board/job/%s"><span class="title">%s</span><span class="company">%s</span></a></li>`, j.Slug, j.Title, j.Company)
	}
	fmt.Fprint(w, "</ul></body></html>")
}

func (b *board) detail(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, j := range b.jobs {
		if j.Slug == r.PathValue("slug") {
			ld, _ := json.Marshal(map[string]any{
				"@context": "https://schema.org", "@type": "JobPosting", "title": j.Title,
				"hiringOrganization": map[string]any{"name": j.Company},
				"baseSalary": map[string]any{
					"@type": "MonetaryAmount", "currency": "EUR",
					"value": map[string]any{"minValue": 50000, "maxValue": 60000, "unitText": "YEAR"},
				},
			})
			fmt.Fprintf(w, `<html><head><script type="application/ld+json">%s</script></head><body>%s</body></html>`, ld, j.Title)
			return
		}
	}
	http.NotFound(w, r)
}

// change gives offer i a new title.
func (b *board) change(i int, title string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.jobs[i].Title = title
}

// requested counts the requests whose path starts with prefix.
func (b *board) requested(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.requests {
		if strings.HasPrefix(strings.TrimPrefix(r, "GET "), prefix) {
			n++
		}
	}
	return n
}

// offersDir writes a DATASETS_DIR whose dataset offers (testdata/offers)
// declares sources.
func offersDir(t *testing.T, sources string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "offers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"raw.avsc", "clean.avsc"} {
		b, err := os.ReadFile(filepath.Join("testdata", "offers", name))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name), string(b))
	}
	write(t, filepath.Join(dir, schemas.DeclarationFile), "description: offers polled by the tests\nsources:\n"+sources)
	return filepath.Dir(dir)
}

// apiSource and scrapeSource declare the board's API and pages.
func apiSource(b *board, every string) string {
	return fmt.Sprintf(`  - kind: api
    name: board-api
    url: %s/api/offers
    records: data
    id: slug
    link: url
    map: {company: company_name}
    paging: {style: next, next: links.next}
    every: %s
    rate: 1ms
`, b.srv.URL, every)
}

func scrapeSource(b *board, every string) string {
	return fmt.Sprintf(`  - kind: scrape
    name: board-pages
    list: %s/board/list
    item: li.job
    detail: a
    fields:
      - {name: title, selector: span.title, required: true}
      - {name: company, selector: span.company}
    map: {salary: salary_max}
    every: %s
    rate: 1ms
    contact: https://example.org/contact
`, b.srv.URL, every)
}

// offer is a record of raw.offers, decoded.
type offer struct {
	ID, SourceName, SourceID, SourceURL, FetchedAt, Title, Company, Location, Salary *string
	EventID, Source                                                                  string
}

func (o offer) String() string {
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	return fmt.Sprintf("%s %s/%s %q %q", s(o.ID), s(o.SourceName), s(o.SourceID), s(o.Title), s(o.Company))
}

// rawOffers reads every committed record of raw.offers.
func rawOffers(t *testing.T, kcfg kafka.Config, registry string) []offer {
	t.Helper()
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	var out []offer
	err = kafka.ReadCommitted(t.Context(), kcfg, zap.NewNop(), "raw.offers", nil, func(r *kgo.Record) {
		_, decoded, err := reg.DecodeAny(t.Context(), r.Value)
		if err != nil {
			t.Fatalf("decode raw.offers at %d: %v", r.Offset, err)
		}
		v := decoded.(map[string]any)
		str := func(k string) *string {
			switch s := v[k].(type) {
			case string:
				return &s
			case map[string]any: // a union's branch
				if s, ok := s["string"].(string); ok {
					return &s
				}
			}
			return nil
		}
		out = append(out, offer{
			ID: str("id"), SourceName: str("source_name"), SourceID: str("source_id"), SourceURL: str("source_url"),
			FetchedAt: str("fetched_at"), Title: str("title"), Company: str("company"), Location: str("location"),
			Salary: str("salary"), EventID: *str("event_id"), Source: *str("source"),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitOffers waits until raw.offers holds n records, and returns them.
func waitOffers(t *testing.T, kcfg kafka.Config, registry string, n int) []offer {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := rawOffers(t, kcfg, registry)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("raw.offers holds %d records after a minute, want %d", len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPolls waits until the extractor at base has counted at least n polls
// of source name with result.
func waitPolls(t *testing.T, base, name, result string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	want := fmt.Sprintf(`datamill_extractor_polls_total{dataset="offers",result=%q,source_name=%q} `, result, name)
	for {
		resp, err := http.Get(base + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(line, want); ok {
					if got, _ := strconv.ParseFloat(v, 64); got >= float64(n) {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d %s polls of %s within a minute", n, result, name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Both polled kinds publish each offer once with its provenance; polls that
// see the same offers publish nothing; a changed offer publishes one new
// event; a path robots.txt disallows is never fetched.
func TestPolledSourcesPublishEachOfferOnceAndEachChangeOnce(t *testing.T) {
	b := newBoard(t, 12, 5)
	dir := offersDir(t, apiSource(b, "100ms")+scrapeSource(b, "100ms"))
	base, k, registry := startExtractor(t, "DATASETS=offers", "DATASETS_DIR="+dir)
	kcfg := k.ClientConfig(kafka.Admin)

	// 12 offers by the API; 11 by the pages (robots.txt keeps job-001's
	// detail page out, and the item without it has no required title?
	// it has: the list gives the title, so it stays, without salary).
	waitPolls(t, base.admin, "board-api", "unchanged", 2)
	waitPolls(t, base.admin, "board-pages", "unchanged", 2)
	got := rawOffers(t, kcfg, registry)
	byID := map[string]offer{}
	for _, o := range got {
		if _, dup := byID[*o.ID]; dup {
			t.Errorf("offer %s published twice", o)
		}
		byID[*o.ID] = o
	}
	if len(got) != 24 {
		t.Fatalf("raw.offers holds %d records, want 24 (12 offers from each source): %v", len(got), got)
	}
	api, pages := byID["board-api:job-003"], byID["board-pages:"+b.srv.URL+"/board/job/job-003"]
	if api.SourceName == nil || *api.SourceName != "board-api" || *api.SourceID != "job-003" ||
		*api.SourceURL != b.srv.URL+"/board/job/job-003" || api.FetchedAt == nil || api.Source != "api:board-api" ||
		*api.Company != "Company 3 " || *api.Title != "Engineer 3" {
		t.Errorf("api offer = %+v, want its provenance and values as the API gave them", api)
	}
	if pages.Title == nil || *pages.Title != "Engineer 3" || pages.Salary == nil || *pages.Salary != "60000" || pages.Source != "scrape:board-pages" {
		t.Errorf("scraped offer = %+v, want its title and the JSON-LD salary", pages)
	}
	if n := b.requested("/board/job/job-001"); n != 0 {
		t.Errorf("the disallowed detail page was fetched %d times", n)
	}

	b.change(4, "Staff Engineer 4")
	want := len(got) + 2 // one new event from each source
	waitOffers(t, kcfg, registry, want)
	waitPolls(t, base.admin, "board-api", "unchanged", 4)
	waitPolls(t, base.admin, "board-pages", "unchanged", 4)
	got = rawOffers(t, kcfg, registry)
	if len(got) != want {
		t.Fatalf("after one offer changed raw.offers holds %d records, want %d", len(got), want)
	}
	events := map[string][]string{}
	for _, o := range got {
		events[*o.SourceID] = append(events[*o.SourceID], *o.Title)
	}
	for id, titles := range events {
		want := []string{strings.TrimPrefix(titles[0], "Staff ")}
		if strings.HasSuffix(id, "job-004") {
			want = []string{"Engineer 4", "Staff Engineer 4"}
		}
		if !slices.Equal(titles, want) {
			t.Errorf("events of offer %s: titles %q, want %q", id, titles, want)
		}
	}
}

// A challenge page in place of the API's JSON publishes nothing and makes
// the source not ready; the poll is tried again and then publishes.
func TestAChallengePagePublishesNothingAndIsTriedAgain(t *testing.T) {
	b := newBoard(t, 3, 5)
	b.challenges = 1 << 30
	dir := offersDir(t, apiSource(b, "1h"))
	base, k, registry := startExtractorUntil(t, "/metrics", "DATASETS=offers", "DATASETS_DIR="+dir, "EXTRACTOR_POLL_RETRY=50ms")
	waitPolls(t, base.admin, "board-api", "failed", 2)
	if got := rawOffers(t, k.ClientConfig(kafka.Admin), registry); len(got) != 0 {
		t.Errorf("a challenge page published %d records", len(got))
	}
	if ok, reason := readiness(t, base.admin); ok || !strings.Contains(reason, "not JSON") {
		t.Errorf("readiness while the API answers challenges = %v %q, want not ready, saying the body is not JSON", ok, reason)
	}
	b.mu.Lock()
	b.challenges = 0
	b.mu.Unlock()
	waitPolls(t, base.admin, "board-api", "published", 1)
	if got := rawOffers(t, k.ClientConfig(kafka.Admin), registry); len(got) != 3 {
		t.Errorf("after the challenge raw.offers holds %d records, want the 3 offers", len(got))
	}
}

// An extractor killed with SIGKILL mid-poll, restarted, publishes every
// offer exactly once; one started after the poll completed does not poll
// again before the declared interval.
func TestPollKilledMidwayPublishesEachOfferOnce(t *testing.T) {
	k := testkit.KafkaCluster(t)
	registry := testkit.Registry(t)
	b := newBoard(t, 40, 10)
	b.hold, b.holdPage, b.held = make(chan struct{}), 3, make(chan struct{})
	dir := offersDir(t, apiSource(b, "1h"))
	env := append(append(os.Environ(), testkit.KafkaEnv(k.ClientConfig("extractor"))...), childEnv+"=1", "SCHEMA_REGISTRY_URL="+registry,
		"HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=warn", "EXTRACTOR_INSTANCE_ID=poll-kill",
		"DATASETS=offers", "DATASETS_DIR="+dir, "EXTRACTOR_FILE_BATCH=4")
	start := func(extra ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(slices.Clone(env), extra...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	first := start()
	select {
	case <-b.held:
	case <-time.After(60 * time.Second):
		t.Fatal("the poll never reached page 3")
	}
	// Pages 1 and 2 are in batches of 4: 20 offers, all committed.
	waitOffers(t, k.ClientConfig(kafka.Admin), registry, 20)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	close(b.hold)

	second := start()
	waitOffers(t, k.ClientConfig(kafka.Admin), registry, 40)
	waitMark(t, k.ClientConfig(kafka.Admin))
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("extractor after SIGTERM: %v", err)
	}
	got := rawOffers(t, k.ClientConfig(kafka.Admin), registry)
	seen := map[string]int{}
	for _, o := range got {
		seen[*o.ID]++
	}
	if len(got) != 40 || len(seen) != 40 {
		t.Errorf("raw.offers holds %d records of %d offers, want each of the 40 once", len(got), len(seen))
	}

	// Within the hour, a restart does not poll again: once it is ready
	// (its poll state loaded, its feeds scheduled), no request comes.
	before := b.requested("/api/offers")
	addr := testkit.FreeAddr(t)
	third := start("ADMIN_ADDR=" + addr)
	deadline := time.Now().Add(30 * time.Second)
	for ok, _ := readinessOf("http://" + addr); !ok; ok, _ = readinessOf("http://" + addr) {
		if time.Now().After(deadline) {
			t.Fatal("the third extractor not ready within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for quiet := time.Now().Add(500 * time.Millisecond); time.Now().Before(quiet); time.Sleep(20 * time.Millisecond) {
		if b.requested("/api/offers") != before {
			break
		}
	}
	if err := third.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := third.Wait(); err != nil {
		t.Errorf("third extractor: %v", err)
	}
	if n := b.requested("/api/offers"); n != before {
		t.Errorf("a restart within the poll interval made %d requests, want none", n-before)
	}
}

// readiness is the extractor's /readyz: ready or not, and its body.
func readiness(t *testing.T, base string) (bool, string) {
	t.Helper()
	ok, body := readinessOf(base)
	if body == "" && !ok {
		t.Fatalf("no answer from %s/readyz", base)
	}
	return ok, body
}

// readinessOf is /readyz at base; false and "" while nothing answers.
func readinessOf(base string) (bool, string) {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return false, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK, string(body)
}

// waitMark waits for the committed mark of a complete poll.
func waitMark(t *testing.T, kcfg kafka.Config) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		found := false
		err := kafka.ReadCommitted(t.Context(), kcfg, zap.NewNop(), poll.StateTopic, nil, func(r *kgo.Record) {
			found = found || strings.HasPrefix(string(r.Key), "mark\x00")
		})
		if err == nil && found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete poll within a minute (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
