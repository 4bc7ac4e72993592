package httpapi

import (
	"encoding/json"
	"testing"
)

func FuzzRecords(f *testing.F) {
	for _, s := range []struct{ body, path string }{
		{`{"jobs":[{"id":1,"tags":["a"],"x":null}]}`, "jobs"},
		{"\xef\xbb\xbf[{\"legal\":\"terms\"},{\"id\":\"7\"}]", ""},
		{`{"data":[{"slug":"a","remote":true}],"links":{"next":null}}`, "data"},
		{`{"a":{"b":[[{"id":1}]]}}`, "a.b.0"},
		{`{"jobs":[{"ID":1,"id":2}]}`, "jobs"},
		{`<html></html>`, ""},
	} {
		f.Add([]byte(s.body), s.path)
	}
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		recs, err := records(body, path)
		if err != nil {
			return
		}
		raw, err := lookup(body, path)
		if err != nil {
			t.Fatalf("records took %q at %q but lookup does not: %v", body, path, err)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			t.Fatalf("records took a non-array at %q: %v", path, err)
		}
		if len(recs) != len(items) {
			t.Fatalf("%d records of an array of %d", len(recs), len(items))
		}
		for i, r := range recs {
			for k, v := range r {
				if v == nil {
					t.Fatalf("record %d: field %q is nil, want absent", i+1, k)
				}
			}
		}
	})
}
