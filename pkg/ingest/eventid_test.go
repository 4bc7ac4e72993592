package ingest

import (
	"testing"
	"time"

	"github.com/datamill/datamill/schemas"
)

// An event id names one arrival: the same record given the same time is one
// event, whatever the nanoseconds the raw record cannot carry; the same
// content given another time, or at another place, is another.
func TestEventIDNamesAnArrival(t *testing.T) {
	d, err := NewDataset("users", schemas.MustSchema("users/raw"), "id")
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Values: map[string]*string{"id": ptr("1"), "age": ptr("31")}, Position: "line 2"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000, time.UTC)
	id := d.EventID("http", rec, at)
	tests := map[string]struct {
		source string
		rec    Record
		at     time.Time
		same   bool
	}{
		"read again":                   {"http", rec, at, true},
		"nanoseconds the record lacks": {"http", rec, at.Add(999 * time.Nanosecond), true},
		"a microsecond later":          {"http", rec, at.Add(time.Microsecond), false},
		"another source":               {"file:u.csv", rec, at, false},
		"another place":                {"http", Record{Values: rec.Values, Position: "line 3"}, at, false},
		"other content":                {"http", Record{Values: map[string]*string{"id": ptr("1"), "age": ptr("32")}, Position: "line 2"}, at, false},
	}
	for name, tc := range tests {
		if got := d.EventID(tc.source, tc.rec, tc.at); (got == id) != tc.same {
			t.Errorf("%s: event id %s, first %s; want the same: %v", name, got, id, tc.same)
		}
	}
	if raw := d.Raw("http", rec, at); raw[FieldEventID] != id || raw[FieldIngestedAt] != at {
		t.Errorf("Raw = %v, want event id %s ingested at %v", raw, id, at)
	}
}
