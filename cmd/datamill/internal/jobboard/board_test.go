package jobboard_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/cmd/datamill/internal/jobboard"
)

// jsonLDPosting mirrors the schema.org JobPosting fields the scraper reads.
type jsonLDPosting struct {
	Context            string `json:"@context"`
	Type               string `json:"@type"`
	Title              string `json:"title"`
	Description        string `json:"description"`
	DatePosted         string `json:"datePosted"`
	EmploymentType     string `json:"employmentType"`
	URL                string `json:"url"`
	HiringOrganization struct {
		Type string `json:"@type"`
		Name string `json:"name"`
	} `json:"hiringOrganization"`
	Identifier struct {
		Type  string `json:"@type"`
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"identifier"`
	JobLocationType string `json:"jobLocationType"`
	JobLocation     []struct {
		Type    string `json:"@type"`
		Address struct {
			Type            string `json:"@type"`
			AddressLocality string `json:"addressLocality"`
			AddressRegion   string `json:"addressRegion"`
			AddressCountry  string `json:"addressCountry"`
		} `json:"address"`
	} `json:"jobLocation"`
	ApplicantLocationRequirements []struct {
		Type string `json:"@type"`
		Name string `json:"name"`
	} `json:"applicantLocationRequirements"`
	BaseSalary *struct {
		Type     string `json:"@type"`
		Currency string `json:"currency"`
		Value    struct {
			Type     string  `json:"@type"`
			MinValue float64 `json:"minValue"`
			MaxValue float64 `json:"maxValue"`
			UnitText string  `json:"unitText"`
		} `json:"value"`
	} `json:"baseSalary"`
}

type listed struct {
	href, title, company string
	regions              []string
}

// scrapeList reads every list page of the board from the first, following
// a[rel=next], as a scraper does.
func scrapeList(t testing.TB, base string) (items []listed, pages int) {
	t.Helper()
	next := jobboard.PathBoardList
	for next != "" {
		if pages++; pages > 50 {
			t.Fatal("more than 50 list pages")
		}
		a := get(t, base+next)
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: status %d, %s", next, a.status, a.header.Get("Content-Type"))
		}
		doc := parseHTML(t, a.body)
		sections := doc.find(func(n *node) bool { return n.hasClass("section", "jobs") })
		if len(sections) != 1 {
			t.Fatalf("page %s: %d section.jobs", next, len(sections))
		}
		for _, li := range sections[0].find(func(n *node) bool { return n.hasClass("li", "feature") }) {
			links := li.find(func(n *node) bool { return n.name == "a" })
			titles := li.find(func(n *node) bool { return n.hasClass("span", "title") })
			companies := li.find(func(n *node) bool { return n.hasClass("span", "company") && !n.hasClass("span", "region") })
			if len(links) != 1 || len(titles) != 1 || len(companies) != 1 {
				t.Fatalf("page %s: item with %d links, %d titles, %d companies", next, len(links), len(titles), len(companies))
			}
			it := listed{href: links[0].attr["href"], title: titles[0].trimmed(), company: companies[0].trimmed()}
			for _, r := range li.find(func(n *node) bool { return n.hasClass("span", "region") }) {
				it.regions = append(it.regions, r.trimmed())
			}
			items = append(items, it)
		}
		next = ""
		for _, a := range doc.find(func(n *node) bool { return n.name == "a" && n.attr["rel"] == "next" }) {
			next = a.attr["href"]
		}
	}
	return items, pages
}

func detailPosting(t testing.TB, base, href string) jsonLDPosting {
	t.Helper()
	a := get(t, base+href)
	if a.status != http.StatusOK {
		t.Fatalf("GET %s: status %d", href, a.status)
	}
	scripts := parseHTML(t, a.body).find(func(n *node) bool { return n.name == "script" && n.attr["type"] == "application/ld+json" })
	if len(scripts) != 1 {
		t.Fatalf("%s: %d JSON-LD blocks, want 1", href, len(scripts))
	}
	var p jsonLDPosting
	strict(t, []byte(scripts[0].text.String()), &p)
	return p
}

func TestBoardListsEveryOfferOnPagesWithDetailPagesInJSONLD(t *testing.T) {
	b, base := serve(t, jobboard.Config{Rows: 300, Seed: 4, BoardPerPage: 10})
	items, pages := scrapeList(t, base)
	want := b.Counts()["weworkremotely"]
	if want < 20 || len(items) != want || pages != (want+9)/10 {
		t.Fatalf("%d items on %d pages, want %d (at least 20) on %d", len(items), pages, want, (want+9)/10)
	}
	salaries, reordered := 0, 0
	for _, it := range items {
		if !strings.HasPrefix(it.href, jobboard.PathBoardDetail) {
			t.Errorf("item %+v: link is not a detail page", it)
			continue
		}
		p := detailPosting(t, base, it.href)
		if p.Type != "JobPosting" || p.Title != it.title || p.HiringOrganization.Name != it.company {
			t.Errorf("%s: posting %q of %q, list says %q of %q", it.href, p.Title, p.HiringOrganization.Name, it.title, it.company)
		}
		if _, err := time.Parse(time.DateOnly, p.DatePosted); err != nil {
			t.Errorf("%s: datePosted %q: %v", it.href, p.DatePosted, err)
		}
		if p.Identifier.Value != strings.TrimPrefix(it.href, jobboard.PathBoardDetail) || !strings.HasPrefix(p.URL, "https://weworkremotely.com/") {
			t.Errorf("%s: identifier %+v, url %q", it.href, p.Identifier, p.URL)
		}
		if len(p.JobLocation) == 0 && len(p.ApplicantLocationRequirements) == 0 {
			t.Errorf("%s: neither jobLocation nor applicantLocationRequirements", it.href)
		}
		if s := p.BaseSalary; s != nil {
			salaries++
			if s.Type != "MonetaryAmount" || s.Value.MinValue <= 0 || s.Value.MinValue > s.Value.MaxValue || s.Value.UnitText != "YEAR" || s.Currency == "" {
				t.Errorf("%s: baseSalary %+v", it.href, *s)
			}
		}
		if len(p.JobLocation) > 0 && len(it.regions) > 1 && it.regions[0] != p.JobLocation[0].Address.AddressLocality {
			reordered++
		}
	}
	if salaries == 0 || salaries == len(items) {
		t.Errorf("%d of %d postings with a baseSalary, want some", salaries, len(items))
	}
	if reordered == 0 {
		t.Error("region chips always in the location's order, want no fixed order")
	}
	if a := get(t, base+jobboard.PathBoardDetail+"no-such-offer"); a.status != http.StatusNotFound {
		t.Errorf("unknown detail page: status %d, want 404", a.status)
	}
}

func TestRobotsDisallowsAdminAndSetsTheCrawlDelay(t *testing.T) {
	tests := []struct {
		delay time.Duration
		want  string
	}{
		{time.Second, "User-agent: *\nDisallow: /admin/\nCrawl-delay: 1\n"},
		{50 * time.Millisecond, "User-agent: *\nDisallow: /admin/\nCrawl-delay: 0.05\n"},
		{0, "User-agent: *\nDisallow: /admin/\n"},
	}
	for _, tt := range tests {
		t.Run(tt.delay.String(), func(t *testing.T) {
			b, base := serve(t, jobboard.Config{Offers: offersOn(t, "weworkremotely", 2), CrawlDelay: tt.delay})
			if a := get(t, base+"/robots.txt"); string(a.body) != tt.want {
				t.Errorf("robots.txt = %q, want %q", a.body, tt.want)
			}
			// The disallowed page exists, so a crawler ignoring robots.txt
			// would fetch it and the request log would show it.
			if a := get(t, base+jobboard.PathDisallowed); a.status != http.StatusOK {
				t.Errorf("GET %s: status %d, want 200", jobboard.PathDisallowed, a.status)
			}
			reqs := b.Requests()
			if last := reqs[len(reqs)-1]; last.Path != jobboard.PathDisallowed || last.Status != http.StatusOK {
				t.Errorf("last request %+v, want the admin page", last)
			}
		})
	}
}

func TestQuirksAnswerChallengesAnd429sAtTheirRatesPerAPI(t *testing.T) {
	var offers []gen.Job
	for _, s := range jobboard.Sources {
		offers = append(offers, offersOn(t, s, 2)...)
	}
	for i := range offers {
		id := fmt.Sprint(3_000_000 + i)
		offers[i].Values[1] = &id
	}
	_, base := serve(t, jobboard.Config{Offers: offers, ChallengeEvery: 3, TooManyEvery: 5})
	kinds := func(u string, n int) string {
		var s strings.Builder
		for range n {
			a := get(t, u)
			switch {
			case a.status == http.StatusTooManyRequests && a.header.Get("Retry-After") == "1":
				s.WriteByte('R')
			case a.status == http.StatusOK && strings.HasPrefix(a.header.Get("Content-Type"), "text/html") && bytes.Contains(a.body, []byte("<title>Just a moment...</title>")):
				s.WriteByte('C')
			case a.status == http.StatusOK && json.Valid(bytes.TrimPrefix(a.body, []byte("\xEF\xBB\xBF"))):
				s.WriteByte('.')
			default:
				s.WriteString(fmt.Sprintf("[%d]", a.status))
			}
		}
		return s.String()
	}
	// Each API counts its own requests: arbeitnow's do not move remoteok's turn.
	want := map[string]string{"remoteok": "..C.RC..CR.C..R", "arbeitnow": "..C.R"}
	got := map[string]string{"remoteok": kinds(base+jobboard.PathRemoteOK, 7)}
	got["arbeitnow"] = kinds(base+jobboard.PathArbeitnow, 5)
	got["remoteok"] += kinds(base+jobboard.PathRemoteOK, 8)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (. JSON, C challenge, R 429) (-want +got):\n%s", diff)
	}
	for _, u := range []string{jobboard.PathRemotive, "/v1/api/jobs/de/search/1?app_id=" + jobboard.DefaultAdzunaAppID + "&app_key=" + jobboard.DefaultAdzunaAppKey} {
		if k := kinds(base+u, 5); k != "..C.R" {
			t.Errorf("%s: answers %s, want ..C.R", u, k)
		}
	}
	// Nothing else has quirks.
	if k := kinds(base+"/_board/counts", 6); k != "......" {
		t.Errorf("counts: answers %s, want ......", k)
	}
}

func TestQuirksAreOffAtZero(t *testing.T) {
	_, base := serve(t, jobboard.Config{Offers: offersOn(t, "remoteok", 2)})
	for i := range 20 {
		if a := get(t, base+jobboard.PathRemoteOK); a.status != http.StatusOK || !json.Valid(a.body) {
			t.Fatalf("request %d: status %d, JSON %v", i+1, a.status, json.Valid(a.body))
		}
	}
}

// snapshot is every offer of every source, as each answers it, keyed by
// source and position.
func snapshot(t testing.TB, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(source string, offers []json.RawMessage) {
		for i, o := range offers {
			out[fmt.Sprintf("%s %d", source, i)] = string(o)
		}
	}
	var remotive struct{ Jobs []json.RawMessage }
	loose(t, bytes.TrimPrefix(get(t, base+jobboard.PathRemotive).body, []byte("\xEF\xBB\xBF")), &remotive)
	add("remotive", remotive.Jobs)
	var arbeitnow struct{ Data []json.RawMessage }
	loose(t, get(t, base+jobboard.PathArbeitnow).body, &arbeitnow)
	add("arbeitnow", arbeitnow.Data)
	var remoteOK []json.RawMessage
	loose(t, get(t, base+jobboard.PathRemoteOK).body, &remoteOK)
	add("remoteok", remoteOK[1:])
	var adzuna struct{ Results []json.RawMessage }
	loose(t, get(t, base+"/v1/api/jobs/de/search/1?results_per_page=50&app_id="+jobboard.DefaultAdzunaAppID+"&app_key="+jobboard.DefaultAdzunaAppKey).body, &adzuna)
	add("adzuna", adzuna.Results)
	tok := token(t, base, url.Values{"grant_type": {"client_credentials"}, "client_id": {jobboard.DefaultFTClientID}, "client_secret": {jobboard.DefaultFTClientSecret}})
	var grant struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(tok.body, &grant); err != nil {
		t.Fatal(err)
	}
	var ft struct{ Resultats []json.RawMessage }
	loose(t, get(t, base+jobboard.PathFTSearch, "Authorization", "Bearer "+grant.AccessToken).body, &ft)
	add("francetravail", ft.Resultats)
	items, _ := scrapeList(t, base)
	for i, it := range items {
		ld, err := json.Marshal(detailPosting(t, base, it.href))
		if err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("weworkremotely %d", i)] = fmt.Sprint(it) + string(ld)
	}
	return out
}

// loose decodes body into v, unknown fields ignored.
func loose(t testing.TB, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %T: %v\n%.300s", v, err, body)
	}
}

func TestChangeChangesExactlyOneOffer(t *testing.T) {
	b, base := serve(t, jobboard.Config{Rows: 60, Seed: 8})
	tests := []struct {
		source, id string
	}{
		{"remotive", b.IDs("remotive")[1]},
		{"arbeitnow", b.IDs("arbeitnow")[0]},
		{"remoteok", b.IDs("remoteok")[2]},
		{"adzuna", b.IDs("adzuna")[0]},
		{"francetravail", b.IDs("francetravail")[1]},
		{"weworkremotely", strings.TrimPrefix(b.IDs("weworkremotely")[1], "remote-jobs/")},
		{"weworkremotely", b.IDs("weworkremotely")[2]},
	}
	for _, tt := range tests {
		t.Run(tt.source+" "+tt.id, func(t *testing.T) {
			before := snapshot(t, base)
			if err := b.Change(tt.source, tt.id); err != nil {
				t.Fatal(err)
			}
			after := snapshot(t, base)
			var changed []string
			for k := range before {
				if before[k] != after[k] {
					changed = append(changed, k)
				}
			}
			if len(after) != len(before) || len(changed) != 1 || !strings.HasPrefix(changed[0], tt.source+" ") {
				t.Fatalf("%d offers then %d, changed %v; want %s's one", len(before), len(after), changed, tt.source)
			}
			if !strings.Contains(after[changed[0]], " (rev 1)") {
				t.Errorf("changed offer %s, want its title revised", after[changed[0]])
			}
		})
	}
	if err := b.Change("remotive", "nope"); err == nil {
		t.Error("Change of an unknown offer: no error")
	}
	if a := do(t, http.MethodPost, base+"/_board/change?source=remoteok&id="+b.IDs("remoteok")[0], nil); a.status != http.StatusNoContent {
		t.Errorf("POST /_board/change: status %d, want 204", a.status)
	}
	if a := do(t, http.MethodPost, base+"/_board/change?source=remoteok&id=nope", nil); a.status != http.StatusNotFound {
		t.Errorf("POST /_board/change of an unknown offer: status %d, want 404", a.status)
	}
}

func TestCountsAreTheOffersOfEachSourceAndAddUpToTheRows(t *testing.T) {
	g := gen.NewJobs(gen.JobsOptions{Offers: 400, Seed: 11, Dirty: 0.2})
	for {
		if _, ok := g.Next(); !ok {
			break
		}
	}
	b, base := serve(t, jobboard.Config{Rows: 400, Seed: 11, Dirty: 0.2})
	var counts map[string]int
	strict(t, get(t, base+"/_board/counts").body, &counts)
	if diff := cmp.Diff(b.Counts(), counts); diff != "" {
		t.Errorf("/_board/counts (-Counts() +got):\n%s", diff)
	}
	total := 0
	for _, s := range jobboard.Sources {
		if counts[s] == 0 {
			t.Errorf("%s: no offers", s)
		}
		if len(b.IDs(s)) != counts[s] {
			t.Errorf("%s: %d ids, count %d", s, len(b.IDs(s)), counts[s])
		}
		total += counts[s]
	}
	if total != g.Stats().Rows {
		t.Errorf("counts add up to %d, gen jobs writes %d rows", total, g.Stats().Rows)
	}
	// The same flags serve the same offers.
	again, err := jobboard.New(jobboard.Config{Rows: 400, Seed: 11, Dirty: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range jobboard.Sources {
		if !slices.Equal(again.IDs(s), b.IDs(s)) {
			t.Errorf("%s: another board of the same seed has other ids", s)
		}
	}
}

func TestDirtyOffersStillServeEveryShape(t *testing.T) {
	b, base := serve(t, jobboard.Config{Rows: 300, Seed: 6, Dirty: 1})
	var env remotiveEnvelope
	strict(t, bytes.TrimPrefix(get(t, base+jobboard.PathRemotive).body, []byte("\xEF\xBB\xBF")), &env)
	var items []json.RawMessage
	strict(t, get(t, base+jobboard.PathRemoteOK).body, &items)
	var p arbeitnowPage
	strict(t, get(t, base+jobboard.PathArbeitnow).body, &p)
	if len(env.Jobs) != b.Counts()["remotive"] || len(items)-1 != b.Counts()["remoteok"] || len(p.Data) != b.Counts()["arbeitnow"] {
		t.Errorf("remotive %d, remoteok %d, arbeitnow %d; counts %v", len(env.Jobs), len(items)-1, len(p.Data), b.Counts())
	}
	dirtyDates := 0
	for _, j := range env.Jobs {
		if _, err := time.Parse("2006-01-02T15:04:05", j.PublicationDate); err != nil {
			dirtyDates++
		}
	}
	if dirtyDates == 0 {
		t.Error("no dirty publication_date at --dirty 1: the generator's dirt is not served")
	}
}

func TestRequestsRecordsEveryRequest(t *testing.T) {
	clock := time.Date(2026, 7, 31, 9, 0, 0, 0, time.UTC)
	b, base := serve(t, jobboard.Config{Offers: offersOn(t, "remoteok", 2), TooManyEvery: 2, Now: func() time.Time { return clock }})
	get(t, base+jobboard.PathRemoteOK+"?x=1", "User-Agent", "datamill-test/1")
	get(t, base+jobboard.PathRemoteOK)
	get(t, base+"/nowhere")
	do(t, http.MethodPost, base+"/_board/change?source=remoteok&id=nope", nil)
	a := get(t, base+"/_board/requests")
	var got []jobboard.Request
	strict(t, a.body, &got)
	host := strings.TrimPrefix(base, "http://")
	want := []jobboard.Request{
		{Method: "GET", Path: "/api", Query: "x=1", Host: host, UserAgent: "datamill-test/1", Time: clock, Status: 200},
		{Method: "GET", Path: "/api", Host: host, UserAgent: "Go-http-client/1.1", Time: clock, Status: 429},
		{Method: "GET", Path: "/nowhere", Host: host, UserAgent: "Go-http-client/1.1", Time: clock, Status: 404},
		{Method: "POST", Path: "/_board/change", Query: "source=remoteok&id=nope", Host: host, UserAgent: "Go-http-client/1.1", Time: clock, Status: 404},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/_board/requests (-want +got):\n%s", diff)
	}
	if all := b.Requests(); len(all) != 5 || all[4].Path != "/_board/requests" {
		t.Errorf("Requests() has %d requests, last %+v; want 5, the last /_board/requests", len(all), all[len(all)-1])
	}
}

func TestBoardIsSafeForConcurrentUse(t *testing.T) {
	b, base := serve(t, jobboard.Config{Rows: 100, Seed: 1, ChallengeEvery: 7, TooManyEvery: 11})
	ids := b.IDs("remotive")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				resp, err := http.Get(base + []string{jobboard.PathRemotive, jobboard.PathRemoteOK, jobboard.PathArbeitnow, jobboard.PathBoardList}[(w+i)%4])
				if err != nil {
					t.Error(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err := b.Change("remotive", ids[(w+i)%len(ids)]); err != nil {
					t.Error(err)
				}
				_ = b.Counts()
			}
		})
	}
	wg.Wait()
	if n := len(b.Requests()); n != 40 {
		t.Errorf("%d requests recorded, want 40", n)
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	unknown := offersOn(t, "remotive", 1)
	src := "monster"
	unknown[0].Values[0] = &src
	twice := append(offersOn(t, "arbeitnow", 2), offersOn(t, "arbeitnow", 1)...)
	tests := []struct {
		name string
		cfg  jobboard.Config
		want string
	}{
		{"unknown source", jobboard.Config{Offers: unknown}, `source "monster"`},
		{"id twice", jobboard.Config{Offers: twice}, `arbeitnow id "2000000" is empty or taken`},
		{"negative rows", jobboard.Config{Rows: -1}, "rows -1"},
		{"dirty above 1", jobboard.Config{Dirty: 1.5}, "dirty 1.5"},
		{"negative quirk", jobboard.Config{ChallengeEvery: -1}, "challenge every -1"},
		{"empty page size", jobboard.Config{ArbeitnowPerPage: []int{10, 0}}, "arbeitnow page size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jobboard.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestAnswersStayTheSameAsTimePassesUntilAnOfferChanges(t *testing.T) {
	clock := &ftClock{now: time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)}
	b, base := serve(t, jobboard.Config{Rows: 80, Seed: 12, Now: clock.Now})
	bodies := func() map[string]string {
		out := map[string]string{}
		for _, p := range []string{jobboard.PathRemotive, jobboard.PathArbeitnow, jobboard.PathRemoteOK, jobboard.PathBoardList, jobboard.PathBoardDetail + b.IDs("weworkremotely")[0][len("remote-jobs/"):]} {
			out[p] = string(get(t, base+p).body)
		}
		return out
	}
	before := bodies()
	clock.now = clock.now.Add(49 * time.Hour)
	if diff := cmp.Diff(before, bodies()); diff != "" {
		t.Errorf("answers two days later (-before +after):\n%s", diff)
	}
	if err := b.Change("arbeitnow", b.IDs("arbeitnow")[0]); err != nil {
		t.Fatal(err)
	}
	after := bodies()
	var legal []struct {
		LastUpdated int64 `json:"last_updated"`
	}
	loose(t, []byte(after[jobboard.PathRemoteOK]), &legal)
	if legal[0].LastUpdated != clock.now.Unix() {
		t.Errorf("RemoteOK last_updated %d after a change at %d", legal[0].LastUpdated, clock.now.Unix())
	}
}

// The duplicates are gen's copies: one offer served twice, mostly on two
// sources (on one when the board moved both to adzuna or francetravail).
func TestDuplicatesAreTheCopiesOnSeveralSources(t *testing.T) {
	b, err := jobboard.New(jobboard.Config{Rows: 600, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	dups := b.Duplicates()
	if len(dups) < 20 {
		t.Fatalf("%d duplicate groups among 600 offers, want about 8 %%", len(dups))
	}
	ids := map[string]map[string]bool{}
	for _, src := range jobboard.Sources {
		ids[src] = map[string]bool{}
		for _, id := range b.IDs(src) {
			ids[src][id] = true
		}
	}
	for _, g := range dups {
		for _, s := range g {
			if !ids[s.Source][s.ID] {
				t.Errorf("group %v: %s serves no offer %s", g, s.Source, s.ID)
			}
		}
		if len(g) < 2 {
			t.Errorf("group %v: want one offer served twice", g)
		}
	}
}
