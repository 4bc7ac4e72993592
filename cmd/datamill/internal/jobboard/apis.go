package jobboard

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
)

// bom is the UTF-8 byte order mark Remotive starts its body with.
const bom = "\uFEFF"

type remotiveBody struct {
	Warning    string        `json:"00-warning"`
	Legal      string        `json:"0-legal-notice"`
	JobCount   int           `json:"job-count"`
	TotalCount int           `json:"total-job-count"`
	Jobs       []remotiveJob `json:"jobs"`
}

type remotiveJob struct {
	ID                        int      `json:"id"`
	URL                       string   `json:"url"`
	Title                     string   `json:"title"`
	CompanyName               string   `json:"company_name"`
	CompanyLogo               string   `json:"company_logo"`
	Category                  string   `json:"category"`
	Tags                      []string `json:"tags"`
	JobType                   string   `json:"job_type"`
	PublicationDate           string   `json:"publication_date"`
	CandidateRequiredLocation string   `json:"candidate_required_location"`
	Salary                    string   `json:"salary"`
	Description               string   `json:"description"`
}

// remotive answers Remotive's one page: a BOM, then the envelope, with an
// ETag; a matching If-None-Match gets a 304.
func (b *Board) remotive(w http.ResponseWriter, r *http.Request) {
	if b.quirk(w, "remotive") {
		return
	}
	b.mu.Lock()
	offers := b.offers["remotive"]
	body := remotiveBody{
		Warning:    "Remotive API Legacy Warning: this is a local copy served by datamill jobboard; the real API asks for at most 4 requests a day.",
		Legal:      "Remotive job listings are shared under the condition that you link back to the offer's URL on Remotive and name Remotive as the source.",
		JobCount:   len(offers),
		TotalCount: len(offers),
		Jobs:       make([]remotiveJob, 0, len(offers)),
	}
	for _, o := range offers {
		id, err := strconv.Atoi(o.ID)
		if err != nil {
			id = 1_000_000 + o.N
		}
		company := o.Company
		if o.N%9 == 4 {
			company += " " // Remotive's company names now and then end in a space
		}
		body.Jobs = append(body.Jobs, remotiveJob{
			ID: id, URL: o.URL, Title: o.title(), CompanyName: company,
			CompanyLogo: fmt.Sprintf("https://remotive.com/job/%d/logo", id),
			Category:    o.Category, Tags: o.tags(), JobType: o.JobType, PublicationDate: o.Date,
			CandidateRequiredLocation: o.Location, Salary: o.Salary,
			Description: remotivePixel(o.Description, id),
		})
	}
	b.mu.Unlock()
	raw, err := marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	raw = append([]byte(bom), raw...)
	sum := sha256.Sum256(raw)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	w.Header().Set("ETag", etag)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
}

// remotivePixel points the description's tracking pixel at Remotive's
// tracker, as its descriptions end.
func remotivePixel(desc string, id int) string {
	i := strings.LastIndex(desc, `<img src="https://remotive.com/px/`)
	if i < 0 {
		return desc
	}
	return desc[:i] + fmt.Sprintf(`<img src="https://remotive.com/job/track/%d/blank.gif?source=public_api" alt=""/>`, id)
}

// etagMatches tells whether an If-None-Match header names etag, weak or
// not, or is "*".
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

type arbeitnowBody struct {
	Data  []arbeitnowJob `json:"data"`
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

type arbeitnowJob struct {
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
}

// arbeitnow answers page ?page=N (from 1; anything else is 1) of
// Arbeitnow, whose sizes take Config.ArbeitnowPerPage in turn; links.next
// is null on the last page and past it.
func (b *Board) arbeitnow(w http.ResponseWriter, r *http.Request) {
	if b.quirk(w, "arbeitnow") {
		return
	}
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	sizes := b.cfg.ArbeitnowPerPage
	size := func(p int) int { return sizes[(p-1)%len(sizes)] }
	b.mu.Lock()
	offers := b.offers["arbeitnow"]
	from, last := 0, 1
	for p := 1; p < page; p++ {
		from += size(p)
	}
	for n := size(1); n < len(offers); n += size(last) {
		last++
	}
	var body arbeitnowBody
	body.Data = []arbeitnowJob{}
	for _, o := range offers[min(from, len(offers)):min(from+size(page), len(offers))] {
		body.Data = append(body.Data, arbeitnowJob{
			Slug: o.ID, CompanyName: o.Company, Title: o.title(), Description: o.Description,
			Remote: o.Remote, URL: o.URL, Tags: o.tags(), JobTypes: arbeitnowTypes(o.JobType),
			Location: o.Location, CreatedAt: o.Published.Unix(),
		})
	}
	b.mu.Unlock()
	base := "http://" + r.Host + PathArbeitnow
	pageURL := func(p int) *string { s := base + "?page=" + strconv.Itoa(p); return &s }
	body.Links.First, body.Links.Last = *pageURL(1), *pageURL(last)
	if page > 1 {
		body.Links.Prev = pageURL(page - 1)
	}
	if page < last {
		body.Links.Next = pageURL(page + 1)
	}
	body.Meta.CurrentPage, body.Meta.Path, body.Meta.PerPage = page, base, size(page)
	if n := len(body.Data); n > 0 {
		f, t := from+1, from+n
		body.Meta.From, body.Meta.To = &f, &t
	}
	body.Meta.Terms = "https://www.arbeitnow.com/api/terms: link back to the offer on Arbeitnow."
	body.Meta.Info = "Local copy served by datamill jobboard."
	writeJSON(w, http.StatusOK, body)
}

func arbeitnowTypes(jobType string) []string {
	switch jobType {
	case "":
		return []string{}
	case "full_time":
		return []string{"full time"}
	case "part_time":
		return []string{"part time"}
	}
	return []string{jobType}
}

type remoteOKLegal struct {
	LastUpdated int64  `json:"last_updated"`
	Legal       string `json:"legal"`
}

type remoteOKJob struct {
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

// remoteOK answers RemoteOK's array: a legal notice, then the offers;
// salaries in dollars, 0 when unknown.
func (b *Board) remoteOK(w http.ResponseWriter, _ *http.Request) {
	if b.quirk(w, "remoteok") {
		return
	}
	b.mu.Lock()
	out := []any{remoteOKLegal{
		LastUpdated: b.updated.Unix(),
		Legal:       "API Terms of Service: link back to the offer's URL on Remote OK and mention Remote OK as the source. Local copy served by datamill jobboard.",
	}}
	for _, o := range b.offers["remoteok"] {
		j := remoteOKJob{
			Slug: gen.Slugify("remote "+o.title()+" "+o.Company) + "-" + o.ID, ID: o.ID,
			Epoch: o.Published.Unix(), Date: o.Date, Company: o.Company,
			CompanyLogo: "https://remoteok.com/assets/img/jobs/" + o.ID + ".png", Position: o.title(),
			Tags: o.tags(), Description: o.Description, Location: o.Location,
			ApplyURL: o.URL + "/apply", URL: o.URL,
		}
		if o.Location == "Worldwide" || o.Location == "Anywhere" {
			j.Location = "" // RemoteOK leaves the location of remote offers empty
		}
		if o.SalaryKnown {
			usd := o.SalaryEUR / gen.EURPerUSD
			j.SalaryMin, j.SalaryMax = int(math.Round(usd*0.92/1000)*1000), int(math.Round(usd*1.08/1000)*1000)
		}
		out = append(out, j)
	}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

type adzunaBody struct {
	Class   string      `json:"__CLASS__"`
	Count   int         `json:"count"`
	Mean    float64     `json:"mean"`
	Results []adzunaJob `json:"results"`
}

type adzunaJob struct {
	Class       string `json:"__CLASS__"`
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	RedirectURL string `json:"redirect_url"`
	Created     string `json:"created"`
	Company     struct {
		Class       string `json:"__CLASS__"`
		DisplayName string `json:"display_name,omitempty"`
	} `json:"company"`
	Location struct {
		Class       string   `json:"__CLASS__"`
		DisplayName string   `json:"display_name"`
		Area        []string `json:"area"`
	} `json:"location"`
	SalaryMin         *float64 `json:"salary_min,omitempty"`
	SalaryMax         *float64 `json:"salary_max,omitempty"`
	SalaryIsPredicted string   `json:"salary_is_predicted"`
	ContractTime      string   `json:"contract_time,omitempty"`
	ContractType      string   `json:"contract_type,omitempty"`
	Category          struct {
		Class string `json:"__CLASS__"`
		Label string `json:"label"`
		Tag   string `json:"tag"`
	} `json:"category"`
}

type adzunaError struct {
	Exception string `json:"exception"`
	Display   string `json:"display"`
	Doc       string `json:"doc"`
}

// adzuna answers a search page (from 1) of Adzuna, for any two-letter
// country: 401 without the right app_id and app_key, 400 for a page below
// 1 or more than 50 results per page (10 when not asked).
func (b *Board) adzuna(w http.ResponseWriter, r *http.Request) {
	if b.quirk(w, "adzuna") {
		return
	}
	q := r.URL.Query()
	if q.Get("app_id") != b.cfg.AdzunaAppID || q.Get("app_key") != b.cfg.AdzunaAppKey {
		writeJSON(w, http.StatusUnauthorized, adzunaError{"AUTH_FAIL", "Authorisation failed", "https://api.adzuna.com/v1/doc"})
		return
	}
	country := r.PathValue("country")
	page, err := strconv.Atoi(r.PathValue("page"))
	if len(country) != 2 || strings.ToLower(country) != country || err != nil || page < 1 {
		writeJSON(w, http.StatusBadRequest, adzunaError{"BAD_REQUEST", "country must be two letters and page a number from 1", "https://api.adzuna.com/v1/doc"})
		return
	}
	per := adzunaDefaultPage
	if s := q.Get("results_per_page"); s != "" {
		if per, err = strconv.Atoi(s); err != nil || per < 1 || per > adzunaMaxPerPage {
			writeJSON(w, http.StatusBadRequest, adzunaError{"BAD_REQUEST", fmt.Sprintf("results_per_page %q: want 1 to %d", s, adzunaMaxPerPage), "https://api.adzuna.com/v1/doc"})
			return
		}
	}
	b.mu.Lock()
	offers := b.offers["adzuna"]
	body := adzunaBody{Class: "Adzuna::API::Response::JobSearchResults", Count: len(offers), Results: []adzunaJob{}}
	var sum float64
	for _, o := range offers {
		sum += o.SalaryEUR
	}
	if len(offers) > 0 {
		body.Mean = math.Round(sum / float64(len(offers)))
	}
	from := min((page-1)*per, len(offers))
	for _, o := range offers[from:min(from+per, len(offers))] {
		body.Results = append(body.Results, adzunaOffer(o))
	}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func adzunaOffer(o *offer) adzunaJob {
	j := adzunaJob{
		Class: "Adzuna::API::Response::Job", ID: o.ID, Title: o.title(),
		Description: o.plainDescription(adzunaSnippet), RedirectURL: o.URL,
		Created: o.Published.Format("2006-01-02T15:04:05Z"),
	}
	j.Company.Class, j.Company.DisplayName = "Adzuna::API::Response::Company", o.Company
	j.Location.Class, j.Location.DisplayName = "Adzuna::API::Response::Location", o.Location
	j.Location.Area = []string{}
	if city, country := o.place(); country != "" {
		j.Location.Area = append(j.Location.Area, country)
		if city != "" {
			j.Location.Area = append(j.Location.Area, city)
		}
	}
	j.SalaryIsPredicted = "0"
	switch {
	case o.SalaryKnown:
		lo, hi := math.Round(o.SalaryEUR*0.92/100)*100, math.Round(o.SalaryEUR*1.08/100)*100
		j.SalaryMin, j.SalaryMax = &lo, &hi
	case o.N%2 == 0 && o.SalaryEUR > 0:
		// Adzuna predicts a salary the offer does not show.
		p := math.Round(o.SalaryEUR/100) * 100
		j.SalaryMin, j.SalaryMax, j.SalaryIsPredicted = &p, &p, "1"
	}
	switch o.JobType {
	case "full_time", "part_time":
		j.ContractTime, j.ContractType = o.JobType, "permanent"
	case "contract", "freelance":
		j.ContractType = "contract"
	}
	j.Category.Class, j.Category.Label, j.Category.Tag = "Adzuna::API::Response::Category", "IT Jobs", "it-jobs"
	switch o.Category {
	case "Design":
		j.Category.Label, j.Category.Tag = "Creative & Design Jobs", "creative-design-jobs"
	case "Customer Service":
		j.Category.Label, j.Category.Tag = "Customer Services Jobs", "customer-services-jobs"
	}
	return j
}

type ftToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

type ftError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// ftToken grants France Travail access tokens to the client credentials
// grant of realm /partenaire, the credentials in the form or in Basic
// auth. Every request counts in TokenRequests.
func (b *Board) ftToken(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.tokenReq++
	b.mu.Unlock()
	if r.URL.Query().Get("realm") != ftRealm {
		writeJSON(w, http.StatusBadRequest, ftError{"invalid_request", "realm must be " + ftRealm})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, ftError{"invalid_request", err.Error()})
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, ftError{"unsupported_grant_type", fmt.Sprintf("grant_type %q", g)})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != b.cfg.FTClientID || secret != b.cfg.FTClientSecret {
		writeJSON(w, http.StatusUnauthorized, ftError{"invalid_client", "Client authentication failed"})
		return
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	secs := int(math.Ceil(b.cfg.TokenLifetime.Seconds()))
	b.mu.Lock()
	b.tokens[tok] = b.cfg.Now().Add(time.Duration(secs) * time.Second)
	b.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ftToken{AccessToken: tok, TokenType: "Bearer", ExpiresIn: secs, Scope: cmpOr(r.PostForm.Get("scope"), "api_offresdemploiv2 o2dsoffre")})
}

type ftBody struct {
	Resultats []ftOffer `json:"resultats"`
}

type ftOffer struct {
	ID                 string `json:"id"`
	Intitule           string `json:"intitule"`
	Description        string `json:"description"`
	DateCreation       string `json:"dateCreation"`
	DateActualisation  string `json:"dateActualisation"`
	LieuTravail        ftLieu `json:"lieuTravail"`
	Entreprise         ftNom  `json:"entreprise"`
	TypeContrat        string `json:"typeContrat"`
	TypeContratLibelle string `json:"typeContratLibelle"`
	Salaire            struct {
		Libelle string `json:"libelle,omitempty"`
	} `json:"salaire"`
	OrigineOffre struct {
		Origine    string `json:"origine"`
		URLOrigine string `json:"urlOrigine"`
	} `json:"origineOffre"`
}

type ftLieu struct {
	Libelle    string `json:"libelle"`
	CodePostal string `json:"codePostal,omitempty"`
}

type ftNom struct {
	Nom string `json:"nom,omitempty"`
}

// ftSearch answers France Travail's search for range=a-b (0-149 when not
// asked) to a valid bearer token: 206 with Content-Range "offres a-b/total",
// 200 when everything is in the range, 204 with "offres -1--1/total" past
// the end, 400 for a range of more than 150 or not of that form.
func (b *Board) ftSearch(w http.ResponseWriter, r *http.Request) {
	if b.quirk(w, "francetravail") {
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	b.mu.Lock()
	exp, known := b.tokens[tok]
	b.mu.Unlock()
	if !ok || !known || !b.cfg.Now().Before(exp) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized: token unknown or expired"})
		return
	}
	first, last, err := ftRange(cmpOr(r.URL.Query().Get("range"), "0-149"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"codeHttp": 400, "message": err.Error()})
		return
	}
	b.mu.Lock()
	offers := b.offers["francetravail"]
	total := len(offers)
	body := ftBody{Resultats: []ftOffer{}}
	if first < total {
		for _, o := range offers[first:min(last+1, total)] {
			body.Resultats = append(body.Resultats, ftOfferOf(o))
		}
	}
	b.mu.Unlock()
	w.Header().Set("Accept-Range", "offres "+strconv.Itoa(ftMaxRange))
	switch {
	case first >= total:
		w.Header().Set("Content-Range", fmt.Sprintf("offres -1--1/%d", total))
		w.WriteHeader(http.StatusNoContent)
	case first == 0 && last+1 >= total:
		w.Header().Set("Content-Range", fmt.Sprintf("offres 0-%d/%d", total-1, total))
		writeJSON(w, http.StatusOK, body)
	default:
		w.Header().Set("Content-Range", fmt.Sprintf("offres %d-%d/%d", first, min(last, total-1), total))
		writeJSON(w, http.StatusPartialContent, body)
	}
}

// ftRange reads "a-b": 0 <= a <= b, at most 150 offers.
func ftRange(s string) (first, last int, err error) {
	a, bs, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(bs)
	switch {
	case !ok || err1 != nil || err2 != nil || first < 0 || last < first:
		return 0, 0, fmt.Errorf("range %q: want first-last, 0 <= first <= last", s)
	case last-first+1 > ftMaxRange:
		return 0, 0, fmt.Errorf("range %q: at most %d offers", s, ftMaxRange)
	}
	return first, last, nil
}

func ftOfferOf(o *offer) ftOffer {
	f := ftOffer{
		ID: o.ID, Intitule: o.title(), Description: o.plainDescription(1000),
		DateCreation:      o.Published.Format("2006-01-02T15:04:05.000Z"),
		DateActualisation: o.Published.Add(36 * time.Hour).Format("2006-01-02T15:04:05.000Z"),
		Entreprise:        ftNom{o.Company},
	}
	f.LieuTravail.Libelle = o.Location
	switch city, _ := o.place(); city {
	case "Paris":
		f.LieuTravail = ftLieu{"75 - Paris", "75001"}
	case "Lyon":
		f.LieuTravail = ftLieu{"69 - Lyon", "69001"}
	}
	switch o.JobType {
	case "contract":
		f.TypeContrat, f.TypeContratLibelle = "CDD", "Contrat à durée déterminée"
	case "freelance":
		f.TypeContrat, f.TypeContratLibelle = "MIS", "Mission intérimaire"
	default:
		f.TypeContrat, f.TypeContratLibelle = "CDI", "Contrat à durée indéterminée"
	}
	if o.SalaryKnown {
		lo, hi := math.Round(o.SalaryEUR*0.92/1000)*1000, math.Round(o.SalaryEUR*1.08/1000)*1000
		f.Salaire.Libelle = fmt.Sprintf("Annuel de %.2f Euros à %.2f Euros sur 12 mois", lo, hi)
		if o.Monthly {
			f.Salaire.Libelle = fmt.Sprintf("Mensuel de %.2f Euros sur 12 mois", math.Round(o.SalaryEUR/12))
		}
	}
	f.OrigineOffre.Origine, f.OrigineOffre.URLOrigine = "1", o.URL
	return f
}
