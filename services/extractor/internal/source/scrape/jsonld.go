package scrape

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/PuerkitoBio/goquery"
)

// JSONLDFields reads the first schema.org JobPosting of the page's
// application/ld+json blocks (a posting alone, in an array, or in an
// @graph) as flat fields: title, company (hiringOrganization.name),
// location (each jobLocation's address, "locality, region, country", joined
// by "; "), applicant_location (the names of applicantLocationRequirements),
// employment_type, salary_currency, salary_min, salary_max, salary_value,
// salary_unit (baseSalary) and date_posted. Empty values are left out; a
// page without a posting, or with blocks that are not JSON, gives none.
func JSONLDFields(doc *goquery.Selection) map[string]string {
	out := map[string]string{}
	for _, s := range doc.Find(`script[type="application/ld+json"]`).EachIter() {
		var v any
		if json.Unmarshal([]byte(s.Text()), &v) != nil {
			continue
		}
		if p := findPosting(v, 0); p != nil {
			posting(p, out)
			return out
		}
	}
	return out
}

// findPosting is the first object typed JobPosting in v.
func findPosting(v any, depth int) map[string]any {
	if depth > 8 {
		return nil
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if p := findPosting(e, depth+1); p != nil {
				return p
			}
		}
	case map[string]any:
		if hasType(v, "JobPosting") {
			return v
		}
		return findPosting(v["@graph"], depth+1)
	}
	return nil
}

func hasType(m map[string]any, t string) bool {
	for _, s := range strs(m["@type"]) {
		if s == t || strings.HasSuffix(s, "/"+t) {
			return true
		}
	}
	return false
}

func posting(p map[string]any, out map[string]string) {
	set := func(k, v string) {
		if v = strings.Join(strings.Fields(v), " "); v != "" {
			out[k] = v
		}
	}
	set("title", str(p["title"]))
	set("date_posted", str(p["datePosted"]))
	set("employment_type", strings.Join(strs(p["employmentType"]), ", "))
	set("company", name(p["hiringOrganization"]))
	var places []string
	for _, l := range list(p["jobLocation"]) {
		if pl := place(l); pl != "" {
			places = append(places, pl)
		}
	}
	set("location", strings.Join(places, "; "))
	var reqs []string
	for _, r := range list(p["applicantLocationRequirements"]) {
		if n := name(r); n != "" {
			reqs = append(reqs, n)
		}
	}
	set("applicant_location", strings.Join(reqs, ", "))
	if sal, ok := p["baseSalary"].(map[string]any); ok {
		set("salary_currency", str(sal["currency"]))
		switch v := sal["value"].(type) {
		case map[string]any:
			set("salary_min", str(v["minValue"]))
			set("salary_max", str(v["maxValue"]))
			set("salary_value", str(v["value"]))
			set("salary_unit", str(v["unitText"]))
		default:
			set("salary_value", str(v))
		}
	}
}

// place is a jobLocation as text: its address's locality, region and
// country, or the place's name, or the text it is.
func place(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return str(v)
	}
	addr, ok := m["address"].(map[string]any)
	if !ok {
		if s := str(m["address"]); s != "" {
			return s
		}
		return name(m)
	}
	var parts []string
	for _, k := range []string{"addressLocality", "addressRegion", "addressCountry"} {
		if s := name(addr[k]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

// name is an object's name, or the text v is.
func name(v any) string {
	if m, ok := v.(map[string]any); ok {
		return str(m["name"])
	}
	return str(v)
}

// str is a string or number as text; anything else is empty.
func str(v any) string {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// strs is a string or the strings of an array.
func strs(v any) []string {
	var out []string
	for _, e := range list(v) {
		if s := str(e); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// list is v as an array: itself if it is one, else one element, or none.
func list(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}
