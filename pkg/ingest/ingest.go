// Package ingest reads source records — CSV with a header row, a JSON
// array of flat objects, or NDJSON — and turns them into raw records of a
// dataset: every source value kept as the bytes it came as (invalid UTF-8
// too: the cleaner is where text is validated), plus the envelope (an
// event id, the source, the ingestion time). It reads
// strictly: a source that is not text, data after a JSON record and field
// names that are the same once lower-cased and trimmed are errors.
//
// The extractor and `datamill produce` both read through it, so a file's
// record given the same ingestion time gets the same event id whichever way
// it enters.
package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// Format is a source format.
type Format string

// The formats.
const (
	CSV    Format = "csv"
	JSON   Format = "json"
	NDJSON Format = "ndjson"
)

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case CSV, JSON, NDJSON:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want csv, json or ndjson", s)
}

// FormatOf guesses a source's format from its name, else from its first
// bytes: '[' is a JSON array, '{' NDJSON, anything else CSV.
func FormatOf(name string, head []byte) Format {
	switch {
	case strings.HasSuffix(name, ".csv"):
		return CSV
	case strings.HasSuffix(name, ".ndjson"), strings.HasSuffix(name, ".jsonl"):
		return NDJSON
	case strings.HasSuffix(name, ".json"):
		return JSON
	}
	switch t := bytes.TrimSpace(head); {
	case len(t) > 0 && t[0] == '[':
		return JSON
	case len(t) > 0 && t[0] == '{':
		return NDJSON
	}
	return CSV
}

// Record is one source record: its values by field name (nil: absent or
// null) and where it stands in its source.
type Record struct {
	Values map[string]*string
	// Position is the record's place in its source: "line 42" for CSV
	// and NDJSON, "item 7" for a JSON array.
	Position string
}

// Error is a source record that cannot be read, with its position and,
// when the reader has them, its bytes.
type Error struct {
	Position string
	Err      error
	Raw      []byte
}

func (e *Error) Error() string { return e.Position + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Read calls fn for every record of r in format f, in order. It stops at
// the first record it cannot read, with an *Error naming its position, or
// at the first error of fn.
func Read(r io.Reader, f Format, fn func(Record) error) error {
	return Scan(r, f, fn, func(e *Error) error { return e })
}

// MaxRecord is the longest source record, in bytes, that the readers take:
// a longer NDJSON line is one bad record, a longer CSV record (an
// unterminated quote, say) ends the read, since a CSV reader cannot tell
// where the record would end without holding it all.
const MaxRecord = 16 << 20

// Scan is Read going on past the records it cannot read: it calls bad with
// each of them and reads on. It stops at the first error of fn or bad, or
// with an *Error where the source cannot be read any further (a source
// that is not text, see CheckText; a CSV header broken, a CSV record
// longer than MaxRecord, a JSON array whose syntax breaks or that data
// follows). An error that is no *Error is the stream's own read error.
//
// Values keep the bytes they came as, invalid UTF-8 included, whatever the
// format: the cleaner is the one place that validates text.
func Scan(r io.Reader, f Format, fn func(Record) error, bad func(*Error) error) error {
	switch f {
	case CSV, JSON, NDJSON:
	default:
		return fmt.Errorf("format %q: want csv, json or ndjson", f)
	}
	br := bufio.NewReaderSize(r, 64*1024)
	head, err := br.Peek(TextSample)
	if err != nil && err != io.EOF {
		return fmt.Errorf("read %s: %w", f, err)
	}
	if err := CheckText(head); err != nil {
		return &Error{Position: "start", Err: err, Raw: bytes.Clone(head)}
	}
	switch f {
	case CSV:
		return readCSV(br, fn, bad)
	case JSON:
		return readJSONArray(br, fn, bad)
	}
	return readNDJSON(br, fn, bad)
}

// errTooLong ends a CSV read at a record longer than MaxRecord.
var errTooLong = fmt.Errorf("record longer than %d bytes", MaxRecord)

// boundedReader lets a CSV reader read at most MaxRecord bytes past the end
// of the last record it returned, so that an unterminated quote cannot make
// it hold the whole stream.
type boundedReader struct {
	r     io.Reader
	n     int64 // bytes read
	limit int64 // n may not pass it
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n >= b.limit {
		return 0, errTooLong
	}
	if rest := b.limit - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

func readCSV(r io.Reader, fn func(Record) error, bad func(*Error) error) error {
	br := &boundedReader{r: r, limit: MaxRecord}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if errors.Is(err, errTooLong) {
		return &Error{Position: "line 1", Err: fmt.Errorf("CSV header: %w", errTooLong)}
	}
	if err != nil {
		return &Error{Position: "line 1", Err: fmt.Errorf("CSV header: %w", err)}
	}
	prev := 1 // line where the last record read started
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	}
	for {
		br.limit = cr.InputOffset() + MaxRecord
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, errTooLong) {
			return &Error{Position: "after line " + strconv.Itoa(prev), Err: errTooLong}
		}
		var perr *csv.ParseError
		if err != nil && !errors.As(err, &perr) {
			return fmt.Errorf("read CSV: %w", err)
		}
		// A parse error in the first field leaves no field positions: the
		// error itself says where the record started.
		var line int
		if perr != nil {
			line = perr.StartLine
		} else if len(row) > 0 {
			line, _ = cr.FieldPos(0)
		}
		prev = line
		pos := "line " + strconv.Itoa(line)
		if err == nil && len(row) != len(names) {
			err = fmt.Errorf("%d values for %d header columns", len(row), len(names))
		}
		if err != nil {
			// A CSV reader goes on at the next line after a parse error.
			if err := bad(&Error{Position: pos, Err: err, Raw: csvLine(row)}); err != nil {
				return err
			}
			continue
		}
		rec := Record{Values: make(map[string]*string, len(row)), Position: pos}
		for i, v := range row {
			if v != "" {
				rec.Values[names[i]] = &v
			}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// csvLine writes the fields read of a bad CSV record back as a line.
func csvLine(fields []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(fields)
	w.Flush()
	return bytes.TrimRight(b.Bytes(), "\n")
}

func readNDJSON(r io.Reader, fn func(Record) error, bad func(*Error) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	var buf []byte
	for line := 1; ; line++ {
		b, long, err := readLine(br, &buf)
		if err != nil && err != io.EOF {
			return fmt.Errorf("read NDJSON: %w", err)
		}
		eof := err == io.EOF
		pos := "line " + strconv.Itoa(line)
		switch b = bytes.TrimSpace(b); {
		case long:
			e := &Error{Position: pos, Err: errors.New("line longer than " + strconv.Itoa(MaxRecord) + " bytes"), Raw: bytes.Clone(b[:min(len(b), 1024)])}
			if err := bad(e); err != nil {
				return err
			}
		case len(b) > 0:
			values, err := flatObject(b)
			if err != nil {
				if err := bad(&Error{Position: pos, Err: err, Raw: bytes.Clone(b)}); err != nil {
					return err
				}
				break
			}
			if err := fn(Record{Values: values, Position: pos}); err != nil {
				return err
			}
		}
		if eof {
			return nil
		}
	}
}

// readLine reads one line into *buf, without its newline. A line longer
// than MaxRecord is read to its end but only its start is kept, and long is
// true. err is io.EOF at the last line, which may be empty.
func readLine(br *bufio.Reader, buf *[]byte) (line []byte, long bool, err error) {
	*buf = (*buf)[:0]
	n := 0 // the line's length, kept or not
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if room := MaxRecord + 1 - len(*buf); room > 0 {
			*buf = append(*buf, chunk[:min(len(chunk), room)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == nil {
			n-- // the newline
		}
		return bytes.TrimSuffix(*buf, []byte("\n")), n > MaxRecord, err
	}
}

func readJSONArray(r io.Reader, fn func(Record) error, bad func(*Error) error) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err == io.EOF {
		return nil
	}
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '[' {
		return &Error{Position: "start", Err: errors.New("a JSON array of objects is expected")}
	}
	for i := 1; dec.More(); i++ {
		pos := "item " + strconv.Itoa(i)
		// An item that is valid JSON but no flat object is one bad record;
		// broken JSON syntax leaves nothing further to read.
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return &Error{Position: pos, Err: fmt.Errorf("not a JSON object: %w", err)}
		}
		values, err := flatObject(item)
		if err != nil {
			if err := bad(&Error{Position: pos, Err: err, Raw: item}); err != nil {
				return err
			}
			continue
		}
		if err := fn(Record{Values: values, Position: pos}); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return &Error{Position: "end", Err: fmt.Errorf("unterminated JSON array: %w", err)}
	}
	// Nothing but white space may follow the array.
	rest := io.MultiReader(dec.Buffered(), r)
	var b [512]byte
	for {
		n, err := rest.Read(b[:])
		if i := bytes.IndexFunc(b[:n], func(r rune) bool { return !strings.ContainsRune(" \t\r\n", r) }); i >= 0 {
			return &Error{Position: "end", Err: errors.New("data after the end of the JSON array"), Raw: bytes.Clone(b[i:n])}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read JSON: %w", err)
		}
	}
}

// Envelope fields of every raw schema.
const (
	FieldEventID    = "event_id"
	FieldSource     = "source"
	FieldIngestedAt = "ingested_at"
)

// Dataset turns source records into raw records of one dataset.
type Dataset struct {
	Name   string
	key    string   // source field keying the records
	fields []string // source fields of the raw schema
}

// NewDataset reads the source fields of a raw schema: every field but the
// envelope. Records are keyed by their key field.
func NewDataset(name string, raw avro.Schema, key string) (*Dataset, error) {
	rec, ok := raw.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("raw schema of %s is not a record", name)
	}
	d := &Dataset{Name: name, key: key}
	for _, f := range rec.Fields() {
		switch f.Name() {
		case FieldEventID, FieldSource, FieldIngestedAt:
		default:
			d.fields = append(d.fields, f.Name())
		}
	}
	if !slices.Contains(d.fields, key) {
		return nil, fmt.Errorf("raw schema of %s has no key field %q", name, key)
	}
	return d, nil
}

// Key is the record's key: its key field, trimmed, so that the records of
// one entity share a partition however their source spaced the key; nil
// when the field is missing.
func (d *Dataset) Key(rec Record) []byte {
	v := rec.Values[d.key]
	if v == nil || strings.TrimSpace(*v) == "" {
		return nil
	}
	return []byte(strings.TrimSpace(*v))
}

// Fields are the dataset's source fields.
func (d *Dataset) Fields() []string { return slices.Clone(d.fields) }

// Unknown lists a record's fields the dataset does not have.
func (d *Dataset) Unknown(rec Record) []string {
	var out []string
	for k := range rec.Values {
		if !slices.Contains(d.fields, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// EventID is the id of one arrival of a source record, an event: it hashes
// the dataset, the source, the record's position in it, its values and the
// ingestion time it is given, at microsecond precision, as the raw record
// carries it. The same record at the same place of the same source given
// the same time (a file's record n read again) is the same event; the same
// content arriving again at another time is another event. A source whose
// positions repeat across arrivals (every HTTP body starts at line 1)
// makes each arrival's positions unique, so that two arrivals given the
// same time stay two events.
func (d *Dataset) EventID(source string, rec Record, at time.Time) string {
	h := sha256.New()
	for _, s := range []string{d.Name, source, rec.Position, strconv.FormatInt(at.UnixMicro(), 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, f := range d.fields {
		if v := rec.Values[f]; v != nil {
			h.Write([]byte{1})
			h.Write([]byte(*v))
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Raw returns the raw record of rec for the dataset's raw schema, as a
// generic Avro record, ingested at at, with its EventID.
func (d *Dataset) Raw(source string, rec Record, at time.Time) map[string]any {
	out := make(map[string]any, len(d.fields)+3)
	for _, f := range d.fields {
		if v := rec.Values[f]; v != nil {
			out[f] = *v
		} else {
			out[f] = nil
		}
	}
	out[FieldEventID] = d.EventID(source, rec, at)
	out[FieldSource] = source
	out[FieldIngestedAt] = at
	return out
}
