package main

import "testing"

func TestLookupReadsFieldsAndDottedPathsIntoJSONObjects(t *testing.T) {
	s := func(v string) *string { return &v }
	values := map[string]*string{
		"id":           s("42"),
		"company":      s(`{"display_name":"Acme Ltd","__CLASS__":"Adzuna::API::Response::Company"}`),
		"location":     s(`{"display_name":"London, UK","area":["UK","London"]}`),
		"lieutravail":  s(`{"libelle":"75 - Paris 15e","codePostal":"75015"}`),
		"salary":       s(`{"min":40000.5,"remote":true}`),
		"origineoffre": s(`{"urlOrigine":null}`),
		"title":        s("not an object"),
	}
	for path, want := range map[string]string{
		"id": "42", "ID": "42", "company.display_name": "Acme Ltd", "lieuTravail.libelle": "75 - Paris 15e",
		"lieuTravail.codePostal": "75015", "location.area": `["UK","London"]`, "salary.min": "40000.5", "salary.remote": "true",
	} {
		if got := lookupPtr(values, path); got == nil || *got != want {
			t.Errorf("lookup %s = %v, want %q", path, got, want)
		}
	}
	for _, path := range []string{"missing", "company.missing", "title.x", "origineOffre.urlOrigine", "location.display_name.x"} {
		if got := lookupPtr(values, path); got != nil {
			t.Errorf("lookup %s = %q, want nothing", path, *got)
		}
	}
}
