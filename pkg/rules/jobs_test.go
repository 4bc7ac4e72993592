package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
)

// The jobs clean schema's rules read offers as each source gives them.
func TestApplyJobs(t *testing.T) {
	r, err := Compile(schemas.MustSchema("jobs/clean"))
	if err != nil {
		t.Fatal(err)
	}
	offer := func(kv ...string) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		raw  map[string]any
		want map[string]any
	}{{
		name: "remotive: salary text, HTML description, a date without zone",
		raw: offer("id", "remotive:1", "title", "Senior Go Developer (m/w/d)", "company", "Acme GmbH ",
			"location", "Germany, Europe", "salary", "€60,000–70,000/year", "published_at", "2026-07-23T15:39:28",
			"description", `<p>We&#39;re hiring.</p><img src="https://remotive.com/job/track/1" width="1" height="1">`),
		want: map[string]any{
			"company": "Acme GmbH", "company_key": "acme", "seniority": "senior", "locations": []string{"DE", "EU"},
			"salary_min": 60000.0, "salary_max": 70000.0, "salary_currency": "EUR", "salary_period": "year",
			"salary_annual": 65000.0, "salary_stated": true, "description": "We're hiring.",
			"published_on": time.Date(2026, 7, 23, 0, 0, 0, 0, time.UTC),
		},
	}, {
		name: "remoteok: structured dollars win over text, epoch-less ISO date",
		raw: offer("id", "remoteok:9", "title", "Backend Engineer", "company", "Globex", "location", "Worldwide",
			"salary_min", "100000", "salary_max", "120000", "salary_currency", "USD", "salary_period", "year",
			"published_at", "2026-07-20T10:00:00+00:00"),
		want: map[string]any{
			"salary_min": 100000.0, "salary_max": 120000.0, "salary_currency": "USD", "salary_annual": 110000 * 0.92,
			"salary_stated": true, "locations": []string{"WW"},
		},
	}, {
		name: "adzuna: a salary the source predicted is not stated",
		raw: offer("id", "adzuna:4", "title", "Data Engineer", "company", "Initech Ltd", "location", "London, UK",
			"salary_min", "50000", "salary_max", "60000", "salary_currency", "GBP", "salary_period", "year",
			"salary_predicted", "1"),
		want: map[string]any{"salary_annual": nil, "salary_stated": false, "company_key": "initech", "locations": []string{"GB"}},
	}, {
		name: "arbeitnow: epoch seconds, no salary",
		raw:  offer("id", "arbeitnow:x", "title", "Werkstudent Data Science", "company", "Hooli", "published_at", "1721745568"),
		want: map[string]any{
			"salary_stated": false, "salary_min": nil, "salary_notes": []string{}, "locations": []string{},
			"published_on": time.Date(2024, 7, 23, 0, 0, 0, 0, time.UTC), "seniority": "intern",
		},
	}, {
		name: "france travail: the ROME label is the family",
		raw: offer("id", "francetravail:1", "title", "Développeur Full Stack (H/F)", "job_family", "Études et développement informatique",
			"company", "Soylent SAS", "location", "75 - Paris 1er Arrondissement", "salary", "Mensuel de 2275.0 Euros à 3033.0 Euros sur 12.0 mois"),
		want: map[string]any{
			"job_family": "Études et développement informatique", "locations": []string{"FR"}, "salary_period": "month",
			"salary_min": 2275.0, "salary_max": 3033.0, "salary_annual": (2275.0 + 3033.0) / 2 * 12,
		},
	}, {
		name: "bad bytes in a location are read around and flagged",
		raw:  offer("id", "weworkremotely:x", "title", "QA Engineer", "company", "Tyrell", "location", "Worldwide\xff\xfe"),
		want: map[string]any{"locations": []string{"WW"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			o := r.Apply(tc.raw)
			if o.Rejected() {
				t.Fatalf("rejected: %v", o.Reasons)
			}
			for k, want := range tc.want {
				got := o.Values[k]
				if f, ok := want.(float64); ok {
					if g, ok := got.(float64); !ok || g < f-0.01 || g > f+0.01 {
						t.Errorf("%s = %v, want %v", k, got, want)
					}
					continue
				}
				if w, ok := want.([]string); ok {
					if g, ok := got.([]string); !ok || !slices.Equal(g, w) {
						t.Errorf("%s = %#v, want %v", k, got, want)
					}
					continue
				}
				if got != want {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
			if o.Values["cluster_id"] == nil {
				t.Error("no fingerprint for an offer with a title and a company")
			}
			// Every clean record encodes with the clean schema.
			v := o.Values
			v["quality_flags"], v["event_id"], v["event_time"], v["content_hash"] = o.Flags, "e", time.Now(), r.Hash(o)
			if _, err := avro.Marshal(schemas.MustSchema("jobs/clean"), v); err != nil {
				t.Errorf("encode: %v", err)
			}
		})
	}
}

// One offer on two sources, as each writes it, has one fingerprint; a
// more senior posting of the same role, or one in another country, has
// another; without a title there is none.
func TestFingerprintsOfJobs(t *testing.T) {
	r, err := Compile(schemas.MustSchema("jobs/clean"))
	if err != nil {
		t.Fatal(err)
	}
	fp := func(title, company, location string) any {
		return r.Apply(map[string]any{"id": "x", "title": title, "company": company, "location": location}).Values["cluster_id"]
	}
	same := fp("Senior Level Designer (Berlin)", "Acme GmbH", "Berlin, Germany")
	if got := fp("Senior Level Designer", "Acme Inc.", "Germany"); got != same {
		t.Errorf("the same offer on another source: %v, want %v", got, same)
	}
	for _, other := range [][3]string{
		{"Lead Level Designer", "Acme", "Germany"},
		{"Senior Level Designer", "Acme", "France"},
		{"Senior Level Designer", "Globex", "Germany"},
	} {
		if got := fp(other[0], other[1], other[2]); got == same {
			t.Errorf("%v has the fingerprint of the senior role at Acme in Germany", other)
		}
	}
	if got := fp("", "Acme", "Germany"); got != nil {
		t.Errorf("no title: fingerprint %v, want none", got)
	}
}

// FuzzApplyJobs cleans offers through every rule type of the jobs clean
// schema, fingerprint included: no panic, every clean record encodes with
// the schema, and the fingerprint is there exactly when its fields are.
func FuzzApplyJobs(f *testing.F) {
	f.Add("Senior Go Developer (m/w/d)", "Acme GmbH", "Berlin, Germany", "€60k–70k", "", "", "2026-07-23T15:39:28", "<p>Hi</p>")
	f.Add("Développeur Full Stack (H/F)", "Soylent SAS", "75 - Paris", "Mensuel de 2275.0 Euros à 3033.0 Euros sur 12.0 mois", "", "", "1721745568", "")
	f.Add("QA", "Tyrell\xff", "Worldwide\xfe", "", "100000", "0", "yesterday", "please mention the word X and tag Y when applying")
	f.Add("", "", "", "Competitive", "-5", "abc", "", "&lt;b&gt;")
	schema := schemas.MustSchema("jobs/clean")
	r, err := Compile(schema)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, title, company, location, salary, lo, hi, published, description string) {
		raw := map[string]any{"id": "s:1"}
		for k, v := range map[string]string{
			"title": title, "company": company, "location": location, "salary": salary,
			"salary_min": lo, "salary_max": hi, "published_at": published, "description": description,
		} {
			if v != "" {
				raw[k] = v
			}
		}
		o := r.Apply(raw)
		if o.Rejected() {
			t.Fatalf("an offer with an id rejected: %v", o.Reasons)
		}
		hasPrint := o.Values["company_key"] != nil && o.Values["title_norm"] != nil && o.Values["seniority"] != nil
		if (o.Values["cluster_id"] != nil) != hasPrint {
			t.Fatalf("cluster_id %v with company_key %v, title_norm %v, seniority %v", o.Values["cluster_id"], o.Values["company_key"], o.Values["title_norm"], o.Values["seniority"])
		}
		v := o.Values
		v["quality_flags"], v["event_id"], v["event_time"], v["content_hash"] = nonNil(o.Flags), "e", time.Now(), r.Hash(o)
		if _, err := avro.Marshal(schema, v); err != nil {
			t.Fatalf("encode %q: %v", raw, err)
		}
	})
}
