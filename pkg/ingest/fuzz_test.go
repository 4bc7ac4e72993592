package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanned is what Scan made of a source: its records, its bad records and
// the error it stopped with.
type scanned struct {
	good []Record
	bad  []*Error
	err  error
}

func scanAll(f Format, src []byte) scanned {
	var s scanned
	s.err = Scan(bytes.NewReader(src), f, func(r Record) error {
		s.good = append(s.good, r)
		return nil
	}, func(e *Error) error {
		s.bad = append(s.bad, e)
		return nil
	})
	return s
}

// checkScan holds for every format: Scan stops only with an *Error (an
// in-memory stream never fails to read), every record has a position and
// no nil value, and Read gives exactly the records Scan gives before its
// first bad one, then stops with that bad record.
func checkScan(t *testing.T, f Format, src []byte) scanned {
	t.Helper()
	s := scanAll(f, src)
	var e *Error
	if s.err != nil && !errors.As(s.err, &e) {
		t.Fatalf("Scan(%q) = %v, want nil or an *Error", src, s.err)
	}
	for _, r := range s.good {
		if r.Position == "" {
			t.Fatalf("Scan(%q): a record without a position", src)
		}
		for k, v := range r.Values {
			if v == nil {
				t.Fatalf("Scan(%q): %s has a nil value for %q", src, r.Position, k)
			}
		}
	}
	var n int
	err := Read(bytes.NewReader(src), f, func(Record) error { n++; return nil })
	switch {
	case len(s.bad) > 0:
		if !errors.As(err, &e) || e.Position != s.bad[0].Position {
			t.Fatalf("Read(%q) = %v, want the first bad record of Scan at %s", src, err, s.bad[0].Position)
		}
		if s.bad[0].Position != "start" && n > len(s.good) {
			t.Fatalf("Read(%q) gave %d records before the first bad one, Scan %d in all", src, n, len(s.good))
		}
	case n != len(s.good) || (err == nil) != (s.err == nil):
		t.Fatalf("Read(%q) = %d records, %v; Scan %d records, %v", src, n, err, len(s.good), s.err)
	}
	return s
}

func FuzzScanCSV(f *testing.F) {
	for _, s := range []string{
		"\ufeffID,Age,Country\n1, 31 ,FR\n2,,DE\n",
		"id,age\n1,2\n3\n",
		"id,age\n1,30\n2\n3,x\"y\n4,40\n",
		"id,age\n1,2\n\"a\"x,1\n2,3\n",
		"id,age\n\"1\n2\",3\r\n4,\"5\"\"\"\n",
		"id,age\n\"unterminated,1\n",
		"\"id\nage\n",
		"",
		"\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s := checkScan(t, CSV, src)
		var e *Error
		if errors.As(s.err, &e) && e.Position != "line 1" && !errors.Is(s.err, errTooLong) && !errors.Is(s.err, ErrNotText) {
			t.Fatalf("Scan(%q) stopped with %v: past the header only a record too long ends a CSV read", src, s.err)
		}
		for _, b := range s.bad {
			if !strings.HasPrefix(b.Position, "line ") {
				t.Fatalf("Scan(%q): bad record at %q", src, b.Position)
			}
		}
	})
}

func FuzzScanNDJSON(f *testing.F) {
	for _, s := range []string{
		"{\"id\":1,\"age\":\" 31 \",\"country\":\"FR\"}\n\n{\"id\":\"2\",\"age\":null,\"country\":\"DE\"}\n",
		"{\"id\":1}\n{\"id\":\n",
		"{\"id\":{\"a\":1}}\n",
		"{\"id\":\"1\"}\n{\"id\":\n[1]\n{\"id\":\"4\"}\n",
		"null\n7\n\"x\"\n{}\n{\"a\":true,\"b\":1e99}\r\n",
		"{\"id\":1} {\"id\":2}\n",
		"{\"id\":\"\xff\"}",
		"{\"id\":1,\"ID\":2}\n{\" id\":null,\"id\":1}\n",
		"{\"a\":\"\\u00e9\\ud83d\\ude00\\ud800\\n\\\"\\/\"}\n",
		"{\"a\":-0.5E-3,\"b\":true,\"c\":null} x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s := checkScan(t, NDJSON, src)
		if errors.Is(s.err, ErrNotText) {
			return
		}
		if s.err != nil {
			t.Fatalf("Scan(%q) = %v: an NDJSON read stops only when the stream fails", src, s.err)
		}
		for l := range bytes.SplitSeq(src, []byte("\n")) {
			if l = bytes.TrimSpace(l); len(l) > 0 && len(l) <= MaxRecord {
				checkFlatObject(t, l)
			}
		}
		lines := 0
		for l := range bytes.SplitSeq(src, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		if got := len(s.good) + len(s.bad); got != lines {
			t.Fatalf("Scan(%q): %d records + %d bad = %d, want the %d non-empty lines", src, len(s.good), len(s.bad), got, lines)
		}
	})
}

func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`[{"id":1,"age":" 31 ","country":"FR"},{"ID":"2","country":"DE"}]`,
		`{"id":1}`,
		`[{"id":1}, 7]`,
		`[{"id":1}`,
		`[{"id":"1"},{"id":]`,
		`[null, [], {"a":{"b":1}}, "x", {"id":2}]`,
		`[]`,
		` [ {"id": 1.50e3, "ok": false} ] `,
		`[{"id":1}][{"id":2}]`,
		`[{"id":1,"ID":2}] `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s := checkScan(t, JSON, src)
		if errors.Is(s.err, ErrNotText) {
			return
		}
		// Nothing follows an array read whole.
		if s.err == nil && len(bytes.TrimSpace(src)) > 0 && !json.Valid(src) {
			t.Fatalf("Scan(%q) read JSON that is not valid", src)
		}
		// A well-formed JSON array is read whole: each item is a record
		// or a bad record.
		var items []json.RawMessage
		if json.Unmarshal(src, &items) != nil || items == nil {
			return
		}
		if s.err != nil {
			t.Fatalf("Scan(%q) = %v for a well-formed array", src, s.err)
		}
		if got := len(s.good) + len(s.bad); got != len(items) {
			t.Fatalf("Scan(%q): %d records + %d bad, want the array's %d items", src, len(s.good), len(s.bad), len(items))
		}
		for i, r := range s.good {
			if _, err := strconv.Atoi(strings.TrimPrefix(r.Position, "item ")); err != nil {
				t.Fatalf("Scan(%q): record %d at %q", src, i, r.Position)
			}
		}
	})
}

// Records past MaxRecord: an NDJSON line is one bad record and the read
// goes on; a CSV record ends the read with an *Error instead of holding the
// rest of the stream.
func TestOversizedRecords(t *testing.T) {
	huge := strings.Repeat("x", MaxRecord)
	s := scanAll(NDJSON, []byte("{\"id\":\"1\"}\n{\"id\":\""+huge+"\"}\n{\"id\":\"3\"}\n"))
	if s.err != nil || len(s.good) != 2 || len(s.bad) != 1 || s.bad[0].Position != "line 2" || len(s.bad[0].Raw) > 1024 {
		t.Errorf("NDJSON with a line over MaxRecord: %d records, bad %v, err %v; want 2 records and line 2 bad", len(s.good), s.bad, s.err)
	}
	// A line of exactly MaxRecord bytes is still read.
	exact := "{\"id\":\"" + huge[:MaxRecord-len("{\"id\":\"\"}")] + "\"}"
	if s := scanAll(NDJSON, []byte(exact+"\n")); s.err != nil || len(s.good) != 1 || len(s.bad) != 0 {
		t.Errorf("NDJSON line of exactly MaxRecord bytes: %d records, %v bad, err %v", len(s.good), s.bad, s.err)
	}

	// Records of exactly MaxRecord bytes, newline included, are read, and
	// so is the one after them.
	row := "1," + huge[:MaxRecord-3] + "\n"
	if s := scanAll(CSV, []byte("id,age\n"+row+row+"3,4\n")); s.err != nil || len(s.good) != 3 || len(s.bad) != 0 {
		t.Errorf("CSV records of MaxRecord bytes: %d records, %v bad, err %v; want 3 records", len(s.good), s.bad, s.err)
	}
	if s := scanAll(CSV, []byte("id,age\n1,"+huge[:MaxRecord-2]+"\n3,4\n")); !errors.Is(s.err, errTooLong) || len(s.good) != 0 {
		t.Errorf("CSV record of MaxRecord+1 bytes: %d records, err %v; want a record-too-long error", len(s.good), s.err)
	}
	for name, src := range map[string]string{
		"unterminated quote": "id,age\n1,2\n\"" + huge + "\n3,4\n",
		"long line":          "id,age\n1,2\n" + huge + "x,1\n3,4\n",
	} {
		s := scanAll(CSV, []byte(src))
		var e *Error
		if !errors.As(s.err, &e) || !errors.Is(s.err, errTooLong) || len(s.good) != 1 || e.Position != "after line 2" {
			t.Errorf("CSV %s: %d records, err %v; want 1 record and a record-too-long error after line 2", name, len(s.good), s.err)
		}
	}
}

// A JSON array goes on past an item that is valid JSON but not a flat
// object, and Read still stops at it.
func TestJSONArrayBadItemsAreReported(t *testing.T) {
	s := scanAll(JSON, []byte(`[{"id":"1"}, 7, {"id":{"x":1}}, null, {"id":"5"}]`))
	var pos []string
	for _, b := range s.bad {
		pos = append(pos, b.Position+"="+string(b.Raw))
	}
	if s.err != nil || len(s.good) != 2 || strings.Join(pos, " ") != `item 2=7 item 3={"id":{"x":1}} item 4=null` {
		t.Errorf("Scan: %d records, bad %v, err %v", len(s.good), pos, s.err)
	}
}

// checkFlatObject reads line as encoding/json does and checks that
// flatObject agrees: it refuses what is no flat JSON object and reads the
// same values from the rest, but for names that are the same field, which
// it refuses too (encoding/json keeps the last), and text that is not
// valid UTF-8, which it keeps as it came (encoding/json replaces it).
func checkFlatObject(t *testing.T, line []byte) {
	t.Helper()
	got, err := flatObject(line)
	var want map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if !json.Valid(line) || dec.Decode(&want) != nil || want == nil {
		if err == nil {
			t.Fatalf("flatObject(%q) = %v, but it is no JSON object", line, got)
		}
		return
	}
	flat := true
	for _, v := range want {
		switch v.(type) {
		case map[string]any, []any:
			flat = false
		}
	}
	switch {
	case !flat:
		if err == nil || !strings.Contains(err.Error(), "holds a nested") {
			t.Fatalf("flatObject(%q) = %v, %v; want a nested value refused", line, got, err)
		}
		return
	case err != nil:
		if !strings.Contains(err.Error(), "appears twice") && !strings.Contains(err.Error(), "are both the field") {
			t.Fatalf("flatObject(%q) = %v for a flat JSON object", line, err)
		}
		return
	}
	for k, v := range got {
		if !utf8.ValidString(k) || !utf8.ValidString(*v) {
			return
		}
	}
	norm := map[string]*string{}
	for k, v := range want {
		var s string
		switch x := v.(type) {
		case nil:
			continue
		case string:
			s = x
		case json.Number:
			s = x.String()
		case bool:
			s = strconv.FormatBool(x)
		}
		norm[strings.ToLower(strings.TrimSpace(k))] = &s
	}
	if len(norm) != len(got) {
		t.Fatalf("flatObject(%q) = %d values, encoding/json %d", line, len(got), len(norm))
	}
	for k, v := range norm {
		if got[k] == nil || *got[k] != *v {
			t.Fatalf("flatObject(%q)[%q] = %v, encoding/json %q", line, k, got[k], *v)
		}
	}
}
