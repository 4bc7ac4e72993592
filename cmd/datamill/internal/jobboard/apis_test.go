package jobboard_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/datamill/datamill/cmd/datamill/internal/jobboard"
)

// The structs below mirror the real APIs' fields, as a client decodes them.

type remotiveEnvelope struct {
	Warning    string `json:"00-warning"`
	Legal      string `json:"0-legal-notice"`
	JobCount   int    `json:"job-count"`
	TotalCount int    `json:"total-job-count"`
	Jobs       []struct {
		ID              int      `json:"id"`
		URL             string   `json:"url"`
		Title           string   `json:"title"`
		CompanyName     string   `json:"company_name"`
		CompanyLogo     string   `json:"company_logo"`
		Category        string   `json:"category"`
		Tags            []string `json:"tags"`
		JobType         string   `json:"job_type"`
		PublicationDate string   `json:"publication_date"`
		Location        string   `json:"candidate_required_location"`
		Salary          string   `json:"salary"`
		Description     string   `json:"description"`
	} `json:"jobs"`
}

func strict(t testing.TB, body []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decode %T: %v\n%.300s", v, err, body)
	}
}

func TestRemotiveServesItsEnvelopeAfterABOM(t *testing.T) {
	b, base := serve(t, jobboard.Config{Rows: 300, Seed: 5})
	a := get(t, base+jobboard.PathRemotive)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", a.status, a.header.Get("Content-Type"))
	}
	body, ok := bytes.CutPrefix(a.body, []byte("\xEF\xBB\xBF"))
	if !ok {
		t.Fatalf("body starts %q, want a UTF-8 BOM", a.body[:min(8, len(a.body))])
	}
	if json.Valid(a.body) {
		t.Error("the body with its BOM is valid JSON: the BOM quirk is not there")
	}
	var env remotiveEnvelope
	strict(t, body, &env)
	want := b.Counts()["remotive"]
	if want == 0 || env.JobCount != want || env.TotalCount != want || len(env.Jobs) != want {
		t.Fatalf("job-count %d, total-job-count %d, jobs %d; want %d (non-zero)", env.JobCount, env.TotalCount, len(env.Jobs), want)
	}
	if env.Warning == "" || env.Legal == "" {
		t.Errorf("warning %q, legal notice %q: want both", env.Warning, env.Legal)
	}
	trailing := 0
	for _, j := range env.Jobs {
		if j.ID <= 0 || !strings.HasPrefix(j.URL, "https://remotive.com/remote-jobs/") || j.Category == "" || j.Tags == nil {
			t.Errorf("job %+v: want an id, a Remotive URL, a category and tags", j)
		}
		if !slices.Contains([]string{"full_time", "contract", "part_time", "freelance", "internship", "other", ""}, j.JobType) {
			t.Errorf("job %d: job_type %q", j.ID, j.JobType)
		}
		if _, err := time.Parse("2006-01-02T15:04:05", j.PublicationDate); err != nil {
			t.Errorf("job %d: publication_date %q: %v", j.ID, j.PublicationDate, err)
		}
		if !strings.Contains(j.Description, `<img src="https://remotive.com/job/track/`+strconv.Itoa(j.ID)+"/") || !strings.HasSuffix(j.Description, `/>`) {
			t.Errorf("job %d: description does not end in a tracking pixel: %q", j.ID, j.Description)
		}
		if strings.HasSuffix(j.CompanyName, " ") {
			trailing++
		}
	}
	if trailing == 0 || trailing == len(env.Jobs) {
		t.Errorf("%d of %d company names end in a space, want some", trailing, len(env.Jobs))
	}
}

func TestRemotiveAnswers304ToItsETagUntilAnOfferChanges(t *testing.T) {
	b, base := serve(t, jobboard.Config{Offers: offersOn(t, "remotive", 5)})
	first := get(t, base+jobboard.PathRemotive)
	etag := first.header.Get("ETag")
	if etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q, want a quoted tag", etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		if a := get(t, base+jobboard.PathRemotive, "If-None-Match", inm); a.status != http.StatusNotModified || len(a.body) != 0 {
			t.Errorf("If-None-Match %s: status %d, %d bytes; want 304 and no body", inm, a.status, len(a.body))
		}
	}
	if a := get(t, base+jobboard.PathRemotive, "If-None-Match", `"other"`); a.status != http.StatusOK {
		t.Errorf("If-None-Match another tag: status %d, want 200", a.status)
	}
	if err := b.Change("remotive", "2000003"); err != nil {
		t.Fatal(err)
	}
	a := get(t, base+jobboard.PathRemotive, "If-None-Match", etag)
	if a.status != http.StatusOK || a.header.Get("ETag") == etag {
		t.Errorf("after a change: status %d, ETag %q (was %q); want 200 and a new tag", a.status, a.header.Get("ETag"), etag)
	}
}

type arbeitnowPage struct {
	Data []struct {
		Slug        string   `json:"slug"`
		CompanyName string   `json:"company_name"`
		Title       string   `json:"title"`
		Description string   `json:"description"`
		Remote      bool     `json:"remote"`
		URL         string   `json:"url"`
		Tags        []string `json:"tags"`
		JobTypes    []string `json:"job_types"`
		Location    string   `json:"location"`
		CreatedAt   int64    `json:"created_at"`
	} `json:"data"`
	Links struct {
		First string  `json:"first"`
		Last  string  `json:"last"`
		Prev  *string `json:"prev"`
		Next  *string `json:"next"`
	} `json:"links"`
	Meta struct {
		CurrentPage int    `json:"current_page"`
		From        *int   `json:"from"`
		Path        string `json:"path"`
		PerPage     int    `json:"per_page"`
		To          *int   `json:"to"`
		Terms       string `json:"terms"`
		Info        string `json:"info"`
	} `json:"meta"`
}

func TestArbeitnowPagesFollowNextLinksOfVaryingSizesUntilNull(t *testing.T) {
	tests := []struct {
		name      string
		offers    int
		sizes     []int
		wantSizes []int
	}{
		{"alternating sizes", 12, []int{3, 2}, []int{3, 2, 3, 2, 2}},
		{"last page full", 5, []int{3, 2}, []int{3, 2}},
		{"one page", 2, nil, []int{2}},
		{"no offers", 0, []int{3}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := serve(t, jobboard.Config{Offers: offersOn(t, "arbeitnow", tt.offers), ArbeitnowPerPage: tt.sizes})
			var got []int
			var slugs []string
			next := base + jobboard.PathArbeitnow
			for page := 1; ; page++ {
				if page > 10 {
					t.Fatal("more than 10 pages: next never null")
				}
				a := get(t, next)
				var p arbeitnowPage
				strict(t, a.body, &p)
				if p.Meta.CurrentPage != page {
					t.Errorf("page %d says current_page %d", page, p.Meta.CurrentPage)
				}
				got = append(got, len(p.Data))
				for _, d := range p.Data {
					slugs = append(slugs, d.Slug)
					if d.CreatedAt < 1_700_000_000 || d.Tags == nil || d.JobTypes == nil {
						t.Errorf("offer %s: created_at %d, tags %v, job_types %v", d.Slug, d.CreatedAt, d.Tags, d.JobTypes)
					}
				}
				if p.Links.Next == nil {
					break
				}
				if !strings.HasPrefix(*p.Links.Next, base+jobboard.PathArbeitnow+"?page=") {
					t.Fatalf("next %q is not an absolute URL of the board", *p.Links.Next)
				}
				next = *p.Links.Next
			}
			if diff := cmp.Diff(tt.wantSizes, got); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
			if len(slugs) != tt.offers || len(slices.Compact(slices.Sorted(slices.Values(slugs)))) != tt.offers {
				t.Errorf("%d slugs, distinct or not, want %d distinct", len(slugs), tt.offers)
			}
			// Past the last page: no offers, next still null.
			var p arbeitnowPage
			strict(t, get(t, base+jobboard.PathArbeitnow+"?page=9").body, &p)
			if len(p.Data) != 0 || p.Links.Next != nil {
				t.Errorf("page 9: %d offers, next %v; want none and null", len(p.Data), p.Links.Next)
			}
		})
	}
}

func TestArbeitnowPerPageVariesAndMetaCountsOffers(t *testing.T) {
	_, base := serve(t, jobboard.Config{Offers: offersOn(t, "arbeitnow", 7), ArbeitnowPerPage: []int{4, 2}})
	var p1, p2 arbeitnowPage
	strict(t, get(t, base+jobboard.PathArbeitnow+"?page=1").body, &p1)
	strict(t, get(t, base+jobboard.PathArbeitnow+"?page=2").body, &p2)
	if p1.Meta.PerPage != 4 || p2.Meta.PerPage != 2 || *p2.Meta.From != 5 || *p2.Meta.To != 6 {
		t.Errorf("per_page %d then %d, page 2 from %v to %v; want 4, 2, 5, 6", p1.Meta.PerPage, p2.Meta.PerPage, *p2.Meta.From, *p2.Meta.To)
	}
	if p1.Links.Prev != nil || p2.Links.Prev == nil || p1.Links.Last != base+jobboard.PathArbeitnow+"?page=3" {
		t.Errorf("prev %v then %v, last %q", p1.Links.Prev, p2.Links.Prev, p1.Links.Last)
	}
}

type remoteOKOffer struct {
	Slug        string   `json:"slug"`
	ID          string   `json:"id"`
	Epoch       int64    `json:"epoch"`
	Date        string   `json:"date"`
	Company     string   `json:"company"`
	CompanyLogo string   `json:"company_logo"`
	Position    string   `json:"position"`
	Tags        []string `json:"tags"`
	Description string   `json:"description"`
	Location    string   `json:"location"`
	SalaryMin   int      `json:"salary_min"`
	SalaryMax   int      `json:"salary_max"`
	ApplyURL    string   `json:"apply_url"`
	URL         string   `json:"url"`
}

func TestRemoteOKStartsWithALegalNoticeThenOffersWithStringIDs(t *testing.T) {
	b, base := serve(t, jobboard.Config{Rows: 300, Seed: 9})
	var items []json.RawMessage
	strict(t, get(t, base+jobboard.PathRemoteOK).body, &items)
	if len(items) == 0 {
		t.Fatal("empty array")
	}
	var legal map[string]any
	strict(t, items[0], &legal)
	if _, hasID := legal["id"]; hasID || legal["legal"] == "" || legal["last_updated"] == nil {
		t.Errorf("first element %v: want a legal notice with last_updated and no id", legal)
	}
	offers := items[1:]
	if want := b.Counts()["remoteok"]; want == 0 || len(offers) != want {
		t.Fatalf("%d offers, want %d (non-zero)", len(offers), want)
	}
	known, empty := 0, 0
	for _, raw := range offers {
		var o remoteOKOffer
		strict(t, raw, &o)
		if o.ID == "" || !strings.HasSuffix(o.Slug, "-"+o.ID) || o.Position == "" || o.URL == "" {
			t.Errorf("offer %+v: want a string id ending its slug, a position and a URL", o)
		}
		if d, err := time.Parse(time.RFC3339, o.Date); err != nil || d.Unix() != o.Epoch {
			t.Errorf("offer %s: date %q (%v) and epoch %d disagree", o.ID, o.Date, err, o.Epoch)
		}
		switch {
		case o.SalaryMin == 0 && o.SalaryMax == 0:
		case o.SalaryMin > 10_000 && o.SalaryMin <= o.SalaryMax:
			known++
		default:
			t.Errorf("offer %s: salary %d to %d", o.ID, o.SalaryMin, o.SalaryMax)
		}
		if o.Location == "" {
			empty++
		}
	}
	if known == 0 || known == len(offers) || empty == 0 {
		t.Errorf("%d of %d offers with a salary, %d with no location; want some of each", known, len(offers), empty)
	}
}

type adzunaResults struct {
	Class   string  `json:"__CLASS__"`
	Count   int     `json:"count"`
	Mean    float64 `json:"mean"`
	Results []struct {
		Class       string `json:"__CLASS__"`
		ID          string `json:"id"`
		Title       string `json:"title"`
		Description string `json:"description"`
		RedirectURL string `json:"redirect_url"`
		Created     string `json:"created"`
		Company     struct {
			Class       string `json:"__CLASS__"`
			DisplayName string `json:"display_name"`
		} `json:"company"`
		Location struct {
			Class       string   `json:"__CLASS__"`
			DisplayName string   `json:"display_name"`
			Area        []string `json:"area"`
		} `json:"location"`
		SalaryMin         *float64 `json:"salary_min"`
		SalaryMax         *float64 `json:"salary_max"`
		SalaryIsPredicted string   `json:"salary_is_predicted"`
		ContractTime      string   `json:"contract_time"`
		ContractType      string   `json:"contract_type"`
		Category          struct {
			Class string `json:"__CLASS__"`
			Label string `json:"label"`
			Tag   string `json:"tag"`
		} `json:"category"`
	} `json:"results"`
}

func adzunaURL(base string, page int, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return base + "/v1/api/jobs/de/search/" + strconv.Itoa(page) + "?" + q.Encode()
}

func TestAdzunaRefusesWrongCredentialsAndTooLargePages(t *testing.T) {
	_, base := serve(t, jobboard.Config{Offers: offersOn(t, "adzuna", 3), AdzunaAppID: "app", AdzunaAppKey: "key"})
	tests := []struct {
		name string
		url  string
		want int
	}{
		{"no credentials", adzunaURL(base, 1), http.StatusUnauthorized},
		{"wrong key", adzunaURL(base, 1, "app_id", "app", "app_key", "nope"), http.StatusUnauthorized},
		{"wrong id", adzunaURL(base, 1, "app_id", "other", "app_key", "key"), http.StatusUnauthorized},
		{"51 per page", adzunaURL(base, 1, "app_id", "app", "app_key", "key", "results_per_page", "51"), http.StatusBadRequest},
		{"page 0", adzunaURL(base, 0, "app_id", "app", "app_key", "key"), http.StatusBadRequest},
		{"50 per page", adzunaURL(base, 1, "app_id", "app", "app_key", "key", "results_per_page", "50"), http.StatusOK},
		{"default credentials refused", adzunaURL(base, 1, "app_id", jobboard.DefaultAdzunaAppID, "app_key", jobboard.DefaultAdzunaAppKey), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := get(t, tt.url); a.status != tt.want {
				t.Errorf("GET %s: status %d, want %d: %s", tt.url, a.status, tt.want, a.body)
			}
		})
	}
}

func TestAdzunaPagesFromOneUpToItsCount(t *testing.T) {
	b, base := serve(t, jobboard.Config{Rows: 400, Seed: 2})
	want := b.Counts()["adzuna"]
	if want <= 50 {
		t.Fatalf("%d adzuna offers: want more than a page of 50", want)
	}
	seen := map[string]bool{}
	predicted, long := 0, 0
	for page := 1; ; page++ {
		var r adzunaResults
		strict(t, get(t, adzunaURL(base, page, "app_id", jobboard.DefaultAdzunaAppID, "app_key", jobboard.DefaultAdzunaAppKey, "results_per_page", "50")).body, &r)
		if r.Count != want {
			t.Fatalf("page %d: count %d, want %d", page, r.Count, want)
		}
		if len(r.Results) > 50 || len(r.Results) == 0 {
			t.Fatalf("page %d: %d results", page, len(r.Results))
		}
		for _, j := range r.Results {
			seen[j.ID] = true
			if _, err := time.Parse("2006-01-02T15:04:05Z", j.Created); err != nil {
				t.Errorf("offer %s: created %q: %v", j.ID, j.Created, err)
			}
			if j.Company.DisplayName == "" || j.Location.Area == nil || j.Category.Tag == "" || strings.Contains(j.Description, "<") {
				t.Errorf("offer %s: company %q, area %v, category %+v, description %q", j.ID, j.Company.DisplayName, j.Location.Area, j.Category, j.Description)
			}
			// Descriptions run to some 140 runes: most are cut.
			switch n := utf8.RuneCountInString(j.Description); {
			case n > 101 || n == 0:
				t.Errorf("offer %s: description of %d runes, want a snippet of at most 101", j.ID, n)
			case n > 90:
				long++
			}
			switch {
			case j.SalaryMin == nil && j.SalaryMax == nil && j.SalaryIsPredicted == "0":
			case j.SalaryMin != nil && j.SalaryMax != nil && *j.SalaryMin <= *j.SalaryMax && (j.SalaryIsPredicted == "0" || j.SalaryIsPredicted == "1"):
				if j.SalaryIsPredicted == "1" {
					predicted++
				}
			default:
				t.Errorf("offer %s: salary %v to %v, predicted %q", j.ID, j.SalaryMin, j.SalaryMax, j.SalaryIsPredicted)
			}
		}
		if len(seen) >= r.Count {
			break
		}
	}
	if len(seen) != want || predicted == 0 || long == 0 {
		t.Errorf("%d distinct offers (want %d), %d predicted salaries, %d descriptions of 90 runes or more (want some of both)", len(seen), want, predicted, long)
	}
}

// ftClock is a clock tests move by hand.
type ftClock struct{ now time.Time }

func (c *ftClock) Now() time.Time { return c.now }

func token(t testing.TB, base string, form url.Values, kv ...string) answer {
	t.Helper()
	return do(t, http.MethodPost, base+jobboard.PathFTToken+"?realm=%2Fpartenaire", strings.NewReader(form.Encode()),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, kv...)...)
}

func grant(t testing.TB, base string) string {
	t.Helper()
	a := token(t, base, url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}, "scope": {"api_offresdemploiv2 o2dsoffre"}})
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	strict(t, a.body, &tok)
	if a.status != http.StatusOK || tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 60 {
		t.Fatalf("token: status %d, %+v; want 200, a Bearer token for 60 s", a.status, tok)
	}
	return tok.AccessToken
}

func TestFranceTravailGrantsTokensToItsClientOnly(t *testing.T) {
	b, base := serve(t, jobboard.Config{Offers: offersOn(t, "francetravail", 3), FTClientID: "id", FTClientSecret: "secret", TokenLifetime: time.Minute})
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}
	tests := []struct {
		name string
		form url.Values
		path string
		kv   []string
		want int
	}{
		{"form credentials", good, "", nil, http.StatusOK},
		{"basic auth", url.Values{"grant_type": {"client_credentials"}}, "", []string{"Authorization", "Basic aWQ6c2VjcmV0"}, http.StatusOK},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"x"}}, "", nil, http.StatusUnauthorized},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {"id"}, "client_secret": {"secret"}}, "", nil, http.StatusBadRequest},
		{"no realm", good, jobboard.PathFTToken, nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a answer
			if tt.path != "" {
				a = do(t, http.MethodPost, base+tt.path, strings.NewReader(tt.form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
			} else {
				a = token(t, base, tt.form, tt.kv...)
			}
			if a.status != tt.want {
				t.Errorf("status %d, want %d: %s", a.status, tt.want, a.body)
			}
		})
	}
	if n := b.TokenRequests(); n != len(tests) {
		t.Errorf("TokenRequests() = %d, want %d", n, len(tests))
	}
}

func TestFranceTravailRefusesUnknownAndExpiredTokens(t *testing.T) {
	clock := &ftClock{now: time.Date(2026, 7, 31, 9, 0, 0, 0, time.UTC)}
	_, base := serve(t, jobboard.Config{Offers: offersOn(t, "francetravail", 3), FTClientID: "id", FTClientSecret: "secret", TokenLifetime: time.Minute, Now: clock.Now})
	search := base + jobboard.PathFTSearch + "?range=0-149"
	tok := grant(t, base)
	if a := get(t, search); a.status != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", a.status)
	}
	if a := get(t, search, "Authorization", "Bearer not-a-token"); a.status != http.StatusUnauthorized {
		t.Errorf("unknown token: status %d, want 401", a.status)
	}
	clock.now = clock.now.Add(59 * time.Second)
	if a := get(t, search, "Authorization", "Bearer "+tok); a.status != http.StatusOK {
		t.Errorf("token at 59 s: status %d, want 200", a.status)
	}
	clock.now = clock.now.Add(time.Second)
	if a := get(t, search, "Authorization", "Bearer "+tok); a.status != http.StatusUnauthorized {
		t.Errorf("token at 60 s: status %d, want 401", a.status)
	}
}

type ftResults struct {
	Resultats []struct {
		ID                 string `json:"id"`
		Intitule           string `json:"intitule"`
		Description        string `json:"description"`
		DateCreation       string `json:"dateCreation"`
		DateActualisation  string `json:"dateActualisation"`
		TypeContrat        string `json:"typeContrat"`
		TypeContratLibelle string `json:"typeContratLibelle"`
		LieuTravail        struct {
			Libelle    string `json:"libelle"`
			CodePostal string `json:"codePostal"`
		} `json:"lieuTravail"`
		Entreprise struct {
			Nom string `json:"nom"`
		} `json:"entreprise"`
		Salaire struct {
			Libelle string `json:"libelle"`
		} `json:"salaire"`
		OrigineOffre struct {
			Origine    string `json:"origine"`
			URLOrigine string `json:"urlOrigine"`
		} `json:"origineOffre"`
	} `json:"resultats"`
}

func TestFranceTravailAnswersRangesWith206And204(t *testing.T) {
	_, base := serve(t, jobboard.Config{Offers: offersOn(t, "francetravail", 353), FTClientID: "id", FTClientSecret: "secret", TokenLifetime: time.Minute})
	tok := grant(t, base)
	tests := []struct {
		rng, contentRange string
		status, results   int
	}{
		{"0-149", "offres 0-149/353", http.StatusPartialContent, 150},
		{"150-299", "offres 150-299/353", http.StatusPartialContent, 150},
		{"300-449", "offres 300-352/353", http.StatusPartialContent, 53},
		{"353-502", "offres -1--1/353", http.StatusNoContent, 0},
		{"450-599", "offres -1--1/353", http.StatusNoContent, 0},
		{"0-150", "", http.StatusBadRequest, 0},
		{"5-2", "", http.StatusBadRequest, 0},
		{"abc", "", http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			a := get(t, base+jobboard.PathFTSearch+"?range="+tt.rng, "Authorization", "Bearer "+tok)
			if a.status != tt.status || a.header.Get("Content-Range") != tt.contentRange {
				t.Fatalf("status %d, Content-Range %q; want %d, %q", a.status, a.header.Get("Content-Range"), tt.status, tt.contentRange)
			}
			if tt.status != http.StatusPartialContent {
				return
			}
			var r ftResults
			strict(t, a.body, &r)
			if len(r.Resultats) != tt.results {
				t.Fatalf("%d results, want %d", len(r.Resultats), tt.results)
			}
			for _, o := range r.Resultats {
				if _, err := time.Parse("2006-01-02T15:04:05.000Z", o.DateCreation); err != nil || o.Intitule == "" || o.TypeContrat == "" || o.OrigineOffre.URLOrigine == "" {
					t.Errorf("offer %+v: dateCreation %v", o, err)
				}
				if l := o.Salaire.Libelle; l != "" && !strings.HasPrefix(l, "Annuel de ") && !strings.HasPrefix(l, "Mensuel de ") {
					t.Errorf("offer %s: salaire.libelle %q", o.ID, l)
				}
			}
		})
	}
}

func TestFranceTravailAnswers200WhenEverythingFits(t *testing.T) {
	_, base := serve(t, jobboard.Config{Offers: offersOn(t, "francetravail", 40), FTClientID: "id", FTClientSecret: "secret", TokenLifetime: time.Minute})
	a := get(t, base+jobboard.PathFTSearch+"?range=0-149", "Authorization", "Bearer "+grant(t, base))
	var r ftResults
	strict(t, a.body, &r)
	if a.status != http.StatusOK || len(r.Resultats) != 40 || a.header.Get("Content-Range") != "offres 0-39/40" {
		t.Errorf("status %d, %d results, Content-Range %q; want 200, 40, offres 0-39/40", a.status, len(r.Resultats), a.header.Get("Content-Range"))
	}
}
