package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
)

func readAll(t *testing.T, f Format, src string) ([]Record, error) {
	t.Helper()
	var out []Record
	err := Read(strings.NewReader(src), f, func(r Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func values(recs []Record) []map[string]string {
	out := make([]map[string]string, len(recs))
	for i, r := range recs {
		out[i] = map[string]string{"@": r.Position}
		for k, v := range r.Values {
			out[i][k] = *v
		}
	}
	return out
}

func TestReadFormats(t *testing.T) {
	want := []map[string]string{
		{"@": "", "id": "1", "age": " 31 ", "country": "FR"},
		{"@": "", "id": "2", "country": "DE"},
	}
	tests := map[string]struct {
		f         Format
		src       string
		positions []string
	}{
		"csv":    {CSV, "\ufeffID,Age,Country\n1, 31 ,FR\n2,,DE\n", []string{"line 2", "line 3"}},
		"ndjson": {NDJSON, "{\"id\":1,\"age\":\" 31 \",\"country\":\"FR\"}\n\n{\"id\":\"2\",\"age\":null,\"country\":\"DE\"}\n", []string{"line 1", "line 3"}},
		"json":   {JSON, `[{"id":1,"age":" 31 ","country":"FR"},{"ID":"2","country":"DE"}]`, []string{"item 1", "item 2"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			recs, err := readAll(t, tc.f, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			got := values(recs)
			for i := range want {
				want[i]["@"] = tc.positions[i]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadErrorsNamePositions(t *testing.T) {
	tests := map[string]struct {
		f    Format
		src  string
		want string
	}{
		"csv short row":     {CSV, "id,age\n1,2\n3\n", "line 3"},
		"ndjson bad json":   {NDJSON, "{\"id\":1}\n{\"id\":\n", "line 2"},
		"ndjson nested":     {NDJSON, "{\"id\":{\"a\":1}}\n", "nested"},
		"json not an array": {JSON, `{"id":1}`, "array"},
		"json bad item":     {JSON, `[{"id":1}, 7]`, "item 2"},
		"json unterminated": {JSON, `[{"id":1}`, "unterminated"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := readAll(t, tc.f, tc.src)
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read(%q) = %v, want an *Error mentioning %q", tc.src, err, tc.want)
			}
		})
	}
}

func TestFormatOf(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		want       Format
	}{
		{"users.csv", "", CSV},
		{"u.ndjson", "", NDJSON},
		{"u.json", "", JSON},
		{"-", "  [{", JSON},
		{"-", "{\"id\"", NDJSON},
		{"-", "id,age", CSV},
	} {
		if got := FormatOf(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("FormatOf(%q, %q) = %s, want %s", tc.name, tc.head, got, tc.want)
		}
	}
}

func TestRawRecords(t *testing.T) {
	raw := schemas.MustSchema("users/raw")
	d, err := NewDataset("users", raw, "id")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, CSV, "id,age,shoe_size\n1,31,44\n1,31,44\n")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	a := d.EventID("file:u.csv", recs[0], at)
	if a != d.EventID("file:u.csv", recs[0], at) {
		t.Error("the event id is not deterministic")
	}
	if a == d.EventID("file:u.csv", recs[1], at) || a == d.EventID("file:v.csv", recs[0], at) {
		t.Error("the same content at another place or source got the same event id")
	}
	if k := d.Key(Record{Values: map[string]*string{"id": ptr(" 7 ")}}); string(k) != "7" {
		t.Errorf("Key = %q, want the trimmed id", k)
	}
	if got := d.Unknown(recs[0]); strings.Join(got, ",") != "shoe_size" {
		t.Errorf("Unknown = %v, want shoe_size", got)
	}
	r := d.Raw("file:u.csv", recs[0], at)
	if _, err := avro.Marshal(raw, r); err != nil {
		t.Fatalf("a raw record does not encode with the raw schema: %v", err)
	}
	if r["age"] != "31" || r["email"] != nil || r[FieldEventID] != a {
		t.Errorf("raw record = %v", r)
	}
}

func ptr(s string) *string { return &s }

func TestNewDatasetNeedsItsKey(t *testing.T) {
	if _, err := NewDataset("users", schemas.MustSchema("users/raw"), "uid"); err == nil {
		t.Error("a key field the raw schema lacks was accepted")
	}
}

func TestScanGoesOnPastBadRecords(t *testing.T) {
	for name, tc := range map[string]struct {
		format Format
		src    string
		good   string
		bad    string
	}{
		"csv": {CSV, "id,age\n1,30\n2\n3,x\"y\n4,40\n", "1 4", `line 3: 1 values for 2 header columns [2] | line 4: parse error on line 4, column 4: bare " in non-quoted-field [3]`},
		"ndjson": {
			NDJSON, "{\"id\":\"1\"}\n{\"id\":\n[1]\n{\"id\":\"4\"}\n", "1 4",
			`line 2: not a JSON object: unexpected EOF [{"id":] | line 3: not a JSON object: json: cannot unmarshal array into Go value of type map[string]interface {} [[1]]`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			var good, bad []string
			err := Scan(strings.NewReader(tc.src), tc.format, func(r Record) error {
				good = append(good, *r.Values["id"])
				return nil
			}, func(e *Error) error {
				bad = append(bad, fmt.Sprintf("%v [%s]", e, e.Raw))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(good, " "); got != tc.good {
				t.Errorf("good records %q, want %q", got, tc.good)
			}
			if got := strings.Join(bad, " | "); got != tc.bad {
				t.Errorf("bad records:\n got %s\nwant %s", got, tc.bad)
			}
		})
	}
	// A quote error in a record's first field leaves the reader no field
	// positions: the record is still named by its line, and reading goes on.
	var good []string
	var bad []string
	err := Scan(strings.NewReader("id,age\n1,2\n\"a\"x,1\n2,3\n"), CSV, func(r Record) error {
		good = append(good, *r.Values["id"])
		return nil
	}, func(e *Error) error {
		bad = append(bad, e.Position)
		return nil
	})
	if err != nil || fmt.Sprint(good) != "[1 2]" || fmt.Sprint(bad) != "[line 3]" {
		t.Errorf("quote error in the first field: good %v, bad %v, err %v", good, bad, err)
	}
	if err := Read(strings.NewReader("id,age\n\"a\"x,1\n"), CSV, func(Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Read of a quote error in the first field = %v, want an error at line 2", err)
	}

	// A JSON array broken mid-way cannot be read further.
	var n int
	err = Scan(strings.NewReader(`[{"id":"1"},{"id":]`), JSON, func(Record) error { n++; return nil }, func(*Error) error { return nil })
	var e *Error
	if !errors.As(err, &e) || e.Position != "item 2" || n != 1 {
		t.Errorf("broken array: %d records, err %v; want 1 record and an error at item 2", n, err)
	}
}
