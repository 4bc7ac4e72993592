package jobboard

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// boardList answers list page ?page=N (from 1; anything else is 1) of the
// scraped board, in the shape of We Work Remotely's: a section.jobs of
// li.feature items, each a link to its detail page around spans of class
// title, company and "region company" (the chips, in no fixed order), and
// a[rel=next] to the next page but on the last.
func (b *Board) boardList(w http.ResponseWriter, r *http.Request) {
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	per := b.cfg.BoardPerPage
	var items strings.Builder
	b.mu.Lock()
	offers := b.offers["weworkremotely"]
	last := max(1, (len(offers)+per-1)/per)
	from := min((page-1)*per, len(offers))
	for _, o := range offers[from:min(from+per, len(offers))] {
		fmt.Fprintf(&items, `<li class="feature"><a href="%s%s">`+"\n"+`  <span class="title">%s</span>`+"\n"+`  <span class="company">%s</span>`,
			PathBoardDetail, html.EscapeString(o.slug()), html.EscapeString(o.title()), html.EscapeString(o.Company))
		for _, c := range chips(o) {
			fmt.Fprintf(&items, "\n  "+`<span class="region company">%s</span>`, html.EscapeString(c))
		}
		fmt.Fprintf(&items, "\n  "+`<span class="date"><time datetime="%s">%s</time></span>`+"\n</a></li>\n",
			o.Published.Format(time.RFC3339), o.Published.Format("Jan 2"))
	}
	b.mu.Unlock()
	var next string
	if page < last {
		next = fmt.Sprintf(`<div class="pagination"><a rel="next" href="%s?page=%d">Next ›</a></div>`, PathBoardList, page+1)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Remote Programming Jobs (page %d)</title></head>
<body><header><nav><a href="/">Home</a> <a href="%s">Staff</a></nav></header>
<section class="jobs" id="category-2"><h2>Programming</h2><ul>
%s</ul></section>
%s
<footer>A local board served by datamill jobboard.</footer></body></html>
`, page, PathDisallowed, items.String(), next)
}

// chips are an offer's region chips: the parts of its location, starting
// at a part that depends on the offer, so their order is not fixed.
func chips(o *offer) []string {
	if o.Location == "" {
		return nil
	}
	parts := strings.Split(o.Location, ", ")
	k := o.N % len(parts)
	return append(parts[k:], parts[:k]...)
}

// boardDetail answers an offer's detail page: its text, and a schema.org
// JobPosting in JSON-LD.
func (b *Board) boardDetail(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	o := b.find("weworkremotely", r.PathValue("slug"))
	var ld []byte
	var title, company, desc string
	if o != nil {
		ld, _ = json.Marshal(posting(o)) // HTML escaped: safe in a script element
		title, company, desc = o.title(), o.Company, o.Description
	}
	b.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if o == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Not found</title></head><body><h1>This job is gone</h1></body></html>\n")
		return
	}
	fmt.Fprintf(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<script type="application/ld+json">%s</script></head>
<body><div class="listing-header"><h1>%s</h1><h2 class="company">%s</h2></div>
<div class="listing-container">%s</div></body></html>
`, html.EscapeString(title), ld, html.EscapeString(title), html.EscapeString(company), desc)
}

// posting is the schema.org JobPosting of an offer; empty values are left
// out, a salary only when the offer shows one.
func posting(o *offer) map[string]any {
	p := map[string]any{"@context": "https://schema.org", "@type": "JobPosting"}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set("title", o.title())
	set("description", o.Description)
	set("datePosted", o.Date)
	set("employmentType", map[string]string{"full_time": "FULL_TIME", "part_time": "PART_TIME", "contract": "CONTRACTOR", "freelance": "CONTRACTOR"}[o.JobType])
	set("url", o.URL)
	if o.Company != "" {
		p["hiringOrganization"] = map[string]any{"@type": "Organization", "name": o.Company}
	}
	p["identifier"] = map[string]any{"@type": "PropertyValue", "name": "We Work Remotely", "value": o.slug()}
	parts := strings.Split(o.Location, ", ")
	if o.Location != "" && len(parts) > 1 {
		addr := map[string]any{"@type": "PostalAddress", "addressLocality": parts[0], "addressCountry": parts[len(parts)-1]}
		if len(parts) > 2 {
			addr["addressRegion"] = parts[1]
		}
		p["jobLocation"] = []any{map[string]any{"@type": "Place", "address": addr}}
	}
	if o.Remote {
		p["jobLocationType"] = "TELECOMMUTE"
		if o.Location != "" {
			p["applicantLocationRequirements"] = []any{map[string]any{"@type": "AdministrativeArea", "name": parts[len(parts)-1]}}
		}
	}
	if o.SalaryKnown {
		lo, hi, currency := o.salaryRange()
		p["baseSalary"] = map[string]any{
			"@type": "MonetaryAmount", "currency": currency,
			"value": map[string]any{"@type": "QuantitativeValue", "minValue": lo, "maxValue": hi, "unitText": "YEAR"},
		}
	}
	return p
}

// robots answers robots.txt: every agent kept out of /admin/, and the
// crawl delay in seconds.
func (b *Board) robots(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "User-agent: *\nDisallow: %s\n", PathDisallowed)
	if d := b.cfg.CrawlDelay; d > 0 {
		fmt.Fprintf(w, "Crawl-delay: %s\n", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
	}
}

// admin is the page robots.txt disallows: the request log shows whether
// a crawler fetched it.
func (b *Board) admin(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Staff</title></head><body><h1>Staff only</h1></body></html>\n")
}
