package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math/rand/v2"
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
			`line 2: not a JSON object: unexpected end of the line [{"id":] | line 3: not a JSON object: an array [[1]]`,
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

// JSON is read strictly: data after a record, names that are the same
// field once lower-cased and trimmed, and nested values are bad records
// whose reason names the problem in words, not Go types.
func TestJSONIsReadStrictly(t *testing.T) {
	tests := map[string]struct {
		f    Format
		src  string
		want string // the bad record or the error, as its text
	}{
		"two objects on a line":      {NDJSON, "{\"id\":\"1\"}\n{\"id\":\"2\"}{\"id\":\"3\"}\n{\"id\":\"4\"}\n", "line 2: data after the JSON object, at byte 11: one object per line"},
		"garbage after an object":    {NDJSON, "{\"id\":\"2\"} x\n", "line 1: data after the JSON object, at byte 12: one object per line"},
		"two arrays":                 {JSON, `[{"id":"1"}][{"id":"2"}]`, "end: data after the end of the JSON array"},
		"garbage after an array":     {JSON, "[{\"id\":\"1\"}]\n x", "end: data after the end of the JSON array"},
		"a name twice":               {NDJSON, `{"id":"1","id":"2"}`, `line 1: field "id" appears twice`},
		"names that collide":         {NDJSON, `{"id":"1","ID":"2"}`, `line 1: fields "id" and "ID" are both the field "id"`},
		"names that collide trimmed": {JSON, `[{"id":"1"},{" Id ":null,"id":"2"}]`, `item 2: fields " Id " and "id" are both the field "id"`},
		"nested object":              {NDJSON, `{"id":{"a":1}}`, `line 1: field "id" holds a nested object, want a scalar`},
		"nested array":               {JSON, `[{"id":"1","age":[1]}]`, `item 1: field "age" holds a nested array, want a scalar`},
		"an array for an object":     {NDJSON, `[1]`, `line 1: not a JSON object: an array`},
		"a number for an object":     {NDJSON, `7`, `line 1: not a JSON object: a number`},
		"bad escape":                 {NDJSON, `{"id":"\x"}`, `line 1: not a JSON object: field "id": unknown escape "\\x" at byte 8`},
		"raw control character":      {NDJSON, "{\"id\":\"a\tb\"}", `line 1: not a JSON object: field "id": control character 0x09 in a string at byte 9`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := scanAll(tc.f, []byte(tc.src))
			var got []string
			for _, b := range s.bad {
				got = append(got, b.Error())
			}
			if s.err != nil {
				got = append(got, s.err.Error())
			}
			if strings.Join(got, " | ") != tc.want {
				t.Errorf("Scan(%q): bad records and error %q, want %q", tc.src, got, tc.want)
			}
		})
	}
	// The records around a bad NDJSON line are read.
	s := scanAll(NDJSON, []byte("{\"id\":\"1\"}\n{\"id\":\"2\"}{\"id\":\"3\"}\n{\"id\":\"4\"}\n"))
	if len(s.good) != 2 || len(s.bad) != 1 || s.err != nil {
		t.Errorf("NDJSON with a line of two objects: %d records, %d bad, err %v; want 2 and 1", len(s.good), len(s.bad), s.err)
	}
}

// Every format keeps the bytes of a value as they came, invalid UTF-8
// included, for the cleaner to flag; JSON escapes are decoded, a lone
// surrogate to the invalid UTF-8 it encodes to.
func TestValuesKeepTheirBytes(t *testing.T) {
	tests := map[string]struct {
		f    Format
		src  string
		want string
	}{
		"csv":            {CSV, "id,city\n1,Z\xffrich\x00\n", "Z\xffrich\x00"},
		"ndjson":         {NDJSON, "{\"id\":\"1\",\"city\":\"Z\xffrich\\u0000\"}\n", "Z\xffrich\x00"},
		"json":           {JSON, "[{\"id\":\"1\",\"city\":\"Z\xffrich\\u0000\"}]", "Z\xffrich\x00"},
		"escapes":        {NDJSON, `{"id":"1","city":"\u00e9\ud83d\ude00\n\"\/\\"}`, "é😀\n\"/\\"},
		"lone surrogate": {NDJSON, `{"id":"1","city":"a\ud800b\udc00"}`, "a\xed\xa0\x80b\xed\xb0\x80"},
		"scalars":        {NDJSON, `{"id":"1","city":-1.50e+3}`, "-1.50e+3"},
		"booleans":       {JSON, `[{"id":"1","city":false}]`, "false"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			recs, err := readAll(t, tc.f, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Values["city"] == nil || *recs[0].Values["city"] != tc.want {
				t.Errorf("Read(%q) = %v, want city %q", tc.src, values(recs), tc.want)
			}
		})
	}
}

// A source that is not text ends the read at once with ErrNotText, in
// every format; text with a few bad bytes is read.
func TestNotTextIsRefused(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte("id,age\n1,31\n"))
	_ = w.Close()
	random := make([]byte, 4096)
	rng := rand.New(rand.NewChaCha8([32]byte{}))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	utf16 := []byte{}
	for _, c := range "id,age\n1,31\n" {
		utf16 = append(utf16, byte(c), 0)
	}
	for name, tc := range map[string]struct {
		src  []byte
		want string
	}{
		"gzip":          {gz.Bytes(), "gzip data"},
		"png":           {[]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "PNG"},
		"random bytes":  {random, "of its first 1024 bytes are NUL, control or invalid UTF-8"},
		"utf-16 no BOM": {utf16, "12 of its first 24 bytes"},
		"utf-16":        {append([]byte{0xff, 0xfe}, utf16...), "UTF-16"},
	} {
		for _, f := range []Format{CSV, NDJSON, JSON} {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				s := scanAll(f, tc.src)
				var e *Error
				if !errors.As(s.err, &e) || e.Position != "start" || !errors.Is(s.err, ErrNotText) ||
					!strings.Contains(s.err.Error(), "not a text file") || !strings.Contains(s.err.Error(), tc.want) {
					t.Errorf("Scan(%s) = %v, want a not-text *Error at start mentioning %q", name, s.err, tc.want)
				}
				if len(s.good)+len(s.bad) > 0 {
					t.Errorf("Scan(%s) read %d records and %d bad ones", name, len(s.good), len(s.bad))
				}
			})
		}
	}
	// Latin-1 text and a stray NUL are still text: their values reach the
	// cleaner, which flags them.
	latin1 := "id,city\n1,Z\xfcrich\n2,S\xe8te\n3,a\x00b\n4,M\xfcnchen\n"
	recs, err := readAll(t, CSV, latin1)
	if err != nil || len(recs) != 4 {
		t.Errorf("Read(%q) = %d records, %v; want 4", latin1, len(recs), err)
	}
}
