package scrape

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
)

func TestJSONLDFields(t *testing.T) {
	tests := map[string]struct {
		blocks []string
		want   map[string]string
	}{
		"none": {want: map[string]string{}},
		"not json, then a posting": {
			blocks: []string{`{oops`, `{"@type":"JobPosting","title":" Go  Dev ","hiringOrganization":"Acme"}`},
			want:   map[string]string{"title": "Go Dev", "company": "Acme"},
		},
		"in an @graph with a typed array": {
			blocks: []string{`{"@context":"https://schema.org","@graph":[{"@type":"WebPage"},{"@type":["Thing","http://schema.org/JobPosting"],"title":"SRE"}]}`},
			want:   map[string]string{"title": "SRE"},
		},
		"in an array, several locations, a plain salary": {
			blocks: []string{`[{"@type":"Organization","name":"x"},{"@type":"JobPosting","title":"PM",
				"jobLocation":[{"@type":"Place","address":{"addressLocality":"Paris","addressRegion":"IDF","addressCountry":{"@type":"Country","name":"FR"}}},
				               {"@type":"Place","name":"Remote"}],
				"applicantLocationRequirements":{"@type":"AdministrativeArea","name":"Europe"},
				"employmentType":"PART_TIME",
				"baseSalary":{"@type":"MonetaryAmount","currency":"USD","value":55.5}}]`},
			want: map[string]string{
				"title": "PM", "location": "Paris, IDF, FR; Remote", "applicant_location": "Europe",
				"employment_type": "PART_TIME", "salary_currency": "USD", "salary_value": "55.5",
			},
		},
		"another type only": {
			blocks: []string{`{"@type":"BreadcrumbList","title":"no"}`},
			want:   map[string]string{},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			page := "<html><head>"
			for _, b := range tt.blocks {
				page += `<script type="application/ld+json">` + b + `</script>`
			}
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(page + "</head></html>"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, JSONLDFields(doc.Selection)); diff != "" {
				t.Errorf("JSONLDFields(%q) (-want +got):\n%s", tt.blocks, diff)
			}
		})
	}
}
