package poll

import "testing"

func ptr(s string) *string { return &s }

func TestContentHashIgnoresWhenAnOfferWasFetchedAndNothingElse(t *testing.T) {
	base := map[string]*string{"title": ptr("Engineer"), "company": ptr("Acme"), FieldFetchedAt: ptr("2026-12-05T09:00:00Z")}
	h := contentHash(base)
	cases := map[string]struct {
		values map[string]*string
		same   bool
	}{
		"fetched later":     {map[string]*string{"title": ptr("Engineer"), "company": ptr("Acme"), FieldFetchedAt: ptr("2026-12-06T09:00:00Z")}, true},
		"never fetched":     {map[string]*string{"company": ptr("Acme"), "title": ptr("Engineer")}, true},
		"a title changed":   {map[string]*string{"title": ptr("Senior Engineer"), "company": ptr("Acme")}, false},
		"a value gone":      {map[string]*string{"title": ptr("Engineer"), "company": nil}, false},
		"a value empty":     {map[string]*string{"title": ptr("Engineer"), "company": ptr("")}, false},
		"values moved over": {map[string]*string{"title": ptr("EngineerAcme"), "company": ptr("")}, false},
		"a field added":     {map[string]*string{"title": ptr("Engineer"), "company": ptr("Acme"), "salary": ptr("")}, false},
	}
	for name, tc := range cases {
		if got := contentHash(tc.values) == h; got != tc.same {
			t.Errorf("%s: same hash = %v, want %v", name, got, tc.same)
		}
	}
}
