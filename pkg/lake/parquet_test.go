package lake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/parquet-go/parquet-go"

	"github.com/datamill/datamill/schemas"
)

// gen makes values of Avro schemas, leaning on the edges: nulls, empty
// strings, unicode, the extreme timestamps and numbers.
type gen struct{ r *rand.Rand }

var (
	texts  = []string{"", " ", "ascii", "héllo wörld", "日本語のテキスト", "😀👍🏽", "a\x00b", "line\nbreak", "\"quoted\" 'and' \\", strings.Repeat("long ", 200)}
	micros = []int64{0, -1, 1, math.MinInt64, math.MaxInt64, 1767225600123456, -62135596800000000, 253402300799999999}
)

func (g gen) value(s avro.Schema) any {
	switch s := s.(type) {
	case *avro.RefSchema:
		return g.value(s.Schema())
	case *avro.UnionSchema:
		if g.r.IntN(3) == 0 {
			return nil
		}
		for _, t := range s.Types() {
			if r, ok := t.(*avro.RefSchema); ok {
				t = r.Schema()
			}
			if t.Type() == avro.Null {
				continue
			}
			switch t := t.(type) {
			case *avro.PrimitiveSchema:
				return g.value(t)
			case avro.NamedSchema: // encoded from map[string]any as hamba wants
				return map[string]any{t.FullName(): g.value(t)}
			default:
				return map[string]any{string(t.Type()): g.value(t)}
			}
		}
	case *avro.RecordSchema:
		m := map[string]any{}
		for _, f := range s.Fields() {
			m[f.Name()] = g.value(f.Type())
		}
		return m
	case *avro.EnumSchema:
		return s.Symbols()[g.r.IntN(len(s.Symbols()))]
	case *avro.ArraySchema:
		n := g.r.IntN(4)
		items := make([]any, n)
		for i := range items {
			items[i] = g.value(s.Items())
		}
		return items
	case *avro.MapSchema:
		m := map[string]any{}
		for range g.r.IntN(4) {
			m[texts[g.r.IntN(len(texts))]] = g.value(s.Values())
		}
		return m
	case *avro.PrimitiveSchema:
		if l := s.Logical(); l != nil && s.Type() == avro.Long {
			us := micros[g.r.IntN(len(micros))]
			if l.Type() == avro.TimestampMillis {
				return time.UnixMilli(us / 1000).UTC()
			}
			return time.UnixMicro(us).UTC()
		}
		switch s.Type() {
		case avro.String:
			return texts[g.r.IntN(len(texts))]
		case avro.Int:
			return []int{0, -1, math.MinInt32, math.MaxInt32, 42}[g.r.IntN(5)]
		case avro.Long:
			return []int64{0, -1, math.MinInt64, math.MaxInt64, 42}[g.r.IntN(5)]
		case avro.Float:
			return []float32{0, -1.5, float32(math.Inf(1)), math.MaxFloat32, math.SmallestNonzeroFloat32}[g.r.IntN(5)]
		case avro.Double:
			return []float64{0, math.Copysign(0, -1), math.Inf(-1), math.MaxFloat64, 3.141592653589793}[g.r.IntN(5)]
		case avro.Boolean:
			return g.r.IntN(2) == 0
		case avro.Bytes:
			return []byte(texts[g.r.IntN(len(texts))])
		}
	}
	panic(fmt.Sprintf("gen: no value for %s", s))
}

// sample is a record of s generated, encoded, and decoded back as serde
// decodes it (the shape the sink writes), with its encoding.
type sample struct {
	rec map[string]any
	raw []byte
	env Envelope
}

func samples(t testing.TB, s avro.Schema, n int, seed uint64) []sample {
	t.Helper()
	g := gen{r: rand.New(rand.NewPCG(seed, 1))}
	out := make([]sample, n)
	for i := range out {
		raw, err := avro.Marshal(s, g.value(s))
		if err != nil {
			t.Fatalf("encode generated record %d: %v", i, err)
		}
		var rec map[string]any
		if err := avro.Unmarshal(s, raw, &rec); err != nil {
			t.Fatalf("decode generated record %d: %v", i, err)
		}
		env := Envelope{
			Topic: "raw.test", Partition: 3, Offset: int64(1000 + 2*i),
			Timestamp: time.UnixMilli(1767225600000 + int64(i)).UTC(), SchemaID: 7 + i%2,
		}
		switch i % 3 {
		case 1:
			env.Key = []byte(fmt.Sprintf("key-%d", i))
		case 2:
			env.Key = []byte{}
		}
		out[i] = sample{rec: rec, raw: raw, env: env}
	}
	return out
}

// writeObject writes samples as one lake object, cutting row groups every
// groupRows rows, and returns its bytes and Meta.
func writeObject(t testing.TB, s avro.Schema, in []sample, groupRows int64) ([]byte, Meta) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, s)
	if err != nil {
		t.Fatalf("new writer: %v", err)
	}
	if groupRows > 0 {
		w.groupRows = groupRows
	}
	for _, x := range in {
		if err := w.Write(x.rec, x.env); err != nil {
			t.Fatalf("write %v: %v", x.rec, err)
		}
	}
	m := Meta{Dataset: "test", Topic: "raw.test", TopicID: "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7", Partition: 3, Start: 990, End: 1000 + 2*int64(len(in))}
	if err := w.Close(m); err != nil {
		t.Fatalf("close: %v", err)
	}
	m.Records, m.Schema = int64(len(in)), s
	return buf.Bytes(), m
}

// readObject opens a lake object and reads all its rows.
func readObject(t testing.TB, b []byte) (*File, []Row) {
	t.Helper()
	f, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var rows []Row
	for r, err := range f.Rows() {
		if err != nil {
			t.Fatalf("row %d: %v", len(rows), err)
		}
		rows = append(rows, r)
	}
	return f, rows
}

func checkRoundTrip(t *testing.T, s avro.Schema, in []sample, rows []Row, compareBytes bool) {
	t.Helper()
	if len(rows) != len(in) {
		t.Fatalf("read %d rows, wrote %d", len(rows), len(in))
	}
	for i, r := range rows {
		if diff := cmp.Diff(in[i].rec, r.Record); diff != "" {
			t.Errorf("row %d record (-wrote +read):\n%s", i, diff)
		}
		if diff := cmp.Diff(in[i].env, r.Envelope); diff != "" {
			t.Errorf("row %d envelope (-wrote +read):\n%s", i, diff)
		}
		if !compareBytes {
			continue
		}
		b, err := avro.Marshal(s, r.Record)
		if err != nil {
			t.Fatalf("re-encode row %d: %v", i, err)
		}
		if !bytes.Equal(b, in[i].raw) {
			t.Errorf("row %d re-encodes as %x, want %x (record %v)", i, b, in[i].raw, r.Record)
		}
	}
}

// TestRoundTripBuiltIn writes records of every built-in raw schema and
// reads them back: the same records, that re-encode to the same bytes, the
// same envelopes, the same metadata.
func TestRoundTripBuiltIn(t *testing.T) {
	cat := schemas.BuiltIn()
	for _, name := range cat.Datasets() {
		t.Run(name, func(t *testing.T) {
			d, err := cat.Dataset(name)
			if err != nil {
				t.Fatalf("dataset %s: %v", name, err)
			}
			in := samples(t, d.Raw, 300, 21)
			b, want := writeObject(t, d.Raw, in, 0)
			f, rows := readObject(t, b)
			checkRoundTrip(t, d.Raw, in, rows, true)
			if diff := cmp.Diff(want, f.Meta, cmp.Comparer(sameSchema)); diff != "" {
				t.Errorf("meta (-want +got):\n%s", diff)
			}
		})
	}
}

func sameSchema(a, b avro.Schema) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.String() == b.String()
}

// every is a schema with every Avro type the lake keeps, nested.
const every = `{"type":"record","name":"Every","namespace":"datamill.test","fields":[
	{"name":"s","type":"string"},
	{"name":"ns","type":["null","string"]},
	{"name":"sn","type":["string","null"]},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"b","type":"boolean"},
	{"name":"by","type":"bytes"},
	{"name":"nby","type":["null","bytes"]},
	{"name":"tus","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"tms","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"u","type":{"type":"string","logicalType":"uuid"}},
	{"name":"a","type":{"type":"array","items":"int"}},
	{"name":"na","type":["null",{"type":"array","items":["null","string"]}]},
	{"name":"aa","type":{"type":"array","items":{"type":"array","items":"long"}}},
	{"name":"m","type":{"type":"map","values":["null","double"]}},
	{"name":"ma","type":{"type":"map","values":{"type":"array","items":"string"}}},
	{"name":"r","type":{"type":"record","name":"Inner","fields":[
		{"name":"x","type":"float"},
		{"name":"tags","type":{"type":"array","items":"string"}},
		{"name":"c","type":["null","Color"]}]}},
	{"name":"nr","type":["null","Inner"]},
	{"name":"ar","type":{"type":"array","items":"Inner"}}
]}`

// TestRoundTripEveryType round-trips records with every kept Avro type,
// nested, empty and null; maps re-encode in any key order, so records are
// compared decoded.
func TestRoundTripEveryType(t *testing.T) {
	s := avro.MustParse(every)
	in := samples(t, s, 500, 7)
	b, _ := writeObject(t, s, in, 37)
	f, rows := readObject(t, b)
	if n := len(f.pf.RowGroups()); n != (500+36)/37 {
		t.Errorf("row groups: got %d, want %d of at most 37 rows", n, (500+36)/37)
	}
	checkRoundTrip(t, s, in, rows, false)
	for i, r := range rows {
		var back map[string]any
		b, err := avro.Marshal(s, r.Record)
		if err != nil {
			t.Fatalf("re-encode row %d: %v", i, err)
		}
		if err := avro.Unmarshal(s, b, &back); err != nil {
			t.Fatalf("decode re-encoded row %d: %v", i, err)
		}
		if diff := cmp.Diff(in[i].rec, back); diff != "" {
			t.Errorf("row %d re-encoded (-wrote +read):\n%s", i, diff)
		}
	}
}

// TestParquetReadable checks that parquet-go's own reader, knowing nothing
// of the lake, finds the columns as declared and the values written.
func TestParquetReadable(t *testing.T) {
	d, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		t.Fatalf("dataset users: %v", err)
	}
	in := samples(t, d.Raw, 10, 3)
	b, _ := writeObject(t, d.Raw, in, 0)
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("open with parquet-go: %v", err)
	}
	var got, want []string
	for _, f := range pf.Schema().Fields() {
		got = append(got, f.Name())
	}
	for _, f := range d.Raw.(*avro.RecordSchema).Fields() {
		want = append(want, f.Name())
	}
	want = append(want, ColTopic, ColPartition, ColOffset, ColTimestamp, ColSchemaID, ColKey)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if c := pf.Metadata().RowGroups[0].Columns[0].MetaData.Codec.String(); c != "ZSTD" {
		t.Errorf("compression: got %s, want ZSTD", c)
	}
	r := parquet.NewGenericReader[map[string]any](pf, pf.Schema())
	rows := make([]map[string]any, len(in))
	for i := range rows {
		rows[i] = map[string]any{}
	}
	if n, err := r.Read(rows); n != len(in) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("read with parquet-go: %d rows, %v", n, err)
	}
	for i, row := range rows {
		if got, want := row["event_id"], in[i].rec["event_id"]; got != want {
			t.Errorf("row %d event_id: got %#v, want %#v", i, got, want)
		}
		if got, want := row[ColOffset], in[i].env.Offset; got != want {
			t.Errorf("row %d %s: got %#v, want %#v", i, ColOffset, got, want)
		}
	}
	if v, ok := pf.Lookup("avro.schema"); !ok || v != d.Raw.String() {
		t.Errorf("avro.schema metadata: got %q, want %q", v, d.Raw.String())
	}
}

func TestUnkeptTypes(t *testing.T) {
	field := func(name, typ string) string {
		return `{"type":"record","name":"R","fields":[{"name":"ok","type":"string"},{"name":"` + name + `","type":` + typ + `}]}`
	}
	tests := []struct {
		name, schema, want string
	}{
		{name: "fixed", schema: field("hash", `{"type":"fixed","name":"H","size":16}`), want: "field hash"},
		{name: "wide union", schema: field("either", `["null","string","long"]`), want: "field either"},
		{name: "union without null", schema: field("either", `["string","long"]`), want: "field either"},
		{name: "date", schema: field("day", `{"type":"int","logicalType":"date"}`), want: "field day"},
		{name: "decimal", schema: field("price", `{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}`), want: "field price"},
		{name: "nested", schema: field("outer", `{"type":"record","name":"O","fields":[{"name":"inner","type":{"type":"fixed","name":"F","size":2}}]}`), want: "field outer.inner"},
		{name: "in an array", schema: field("list", `{"type":"array","items":{"type":"int","logicalType":"time-millis"}}`), want: "field list[]"},
		{name: "recursive", schema: `{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}`, want: "field next"},
		{name: "envelope name", schema: field(ColOffset, `"long"`), want: "field " + ColOffset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := avro.Parse(tt.schema)
			if err != nil {
				t.Fatalf("parse %s: %v", tt.schema, err)
			}
			_, err = NewWriter(&bytes.Buffer{}, s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewWriter(%s): got %v, want an error naming %q", tt.schema, err, tt.want)
			}
		})
	}
}

func TestWriteBadRecord(t *testing.T) {
	s := avro.MustParse(every)
	good := samples(t, s, 1, 1)[0]
	tests := []struct {
		name string
		mod  func(map[string]any)
		want string
	}{
		{name: "missing required", mod: func(m map[string]any) { delete(m, "s") }, want: "field s"},
		{name: "wrong type", mod: func(m map[string]any) { m["i"] = "seven" }, want: "field i"},
		{name: "int out of range", mod: func(m map[string]any) { m["i"] = int64(math.MaxInt32) + 1 }, want: "field i"},
		{name: "nested wrong", mod: func(m map[string]any) { m["r"].(map[string]any)["x"] = "x" }, want: "field r.x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var again map[string]any
			if err := avro.Unmarshal(s, good.raw, &again); err != nil {
				t.Fatalf("decode: %v", err)
			}
			tt.mod(again)
			var buf bytes.Buffer
			w, err := NewWriter(&buf, s)
			if err != nil {
				t.Fatalf("new writer: %v", err)
			}
			err = w.Write(again, good.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("write: got %v, want an error naming %q", err, tt.want)
			}
			if err := w.Write(good.rec, good.env); err != nil {
				t.Fatalf("write of a good record after a bad one: %v", err)
			}
			if err := w.Close(Meta{Dataset: "d", Topic: "raw.d"}); err != nil {
				t.Fatalf("close: %v", err)
			}
			_, rows := readObject(t, buf.Bytes())
			checkRoundTrip(t, s, []sample{good}, rows, false)
		})
	}
}

// TestRowGroupBytes checks a row group is cut once about groupBytes of
// values are buffered, so memory stays bounded with large records.
func TestRowGroupBytes(t *testing.T) {
	d, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		t.Fatalf("dataset users: %v", err)
	}
	in := samples(t, d.Raw, 200, 5)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, d.Raw)
	if err != nil {
		t.Fatalf("new writer: %v", err)
	}
	w.groupBytes = 16 << 10
	twin, err := NewWriter(io.Discard, d.Raw)
	if err != nil {
		t.Fatalf("new writer: %v", err)
	}
	twin.groupBytes = w.groupBytes
	var last int64
	for i, x := range in {
		if err := w.Write(x.rec, x.env); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := twin.Write(x.rec, x.env); err != nil {
			t.Fatalf("write: %v", err)
		}
		if last = w.Size(); last <= 0 || last != twin.Size() {
			t.Fatalf("size after %d writes: %d, and %d for the same rows", i+1, last, twin.Size())
		}
	}
	if err := w.Close(Meta{Dataset: "users", Topic: "raw.users"}); err != nil {
		t.Fatalf("close: %v", err)
	}
	if int64(buf.Len()) < last/4 || int64(buf.Len()) > 2*last {
		t.Errorf("object of %d bytes, Size said %d before Close", buf.Len(), last)
	}
	f, rows := readObject(t, buf.Bytes())
	if n := len(f.pf.RowGroups()); n < 2 {
		t.Errorf("%d bytes in %d row group, want several of about %d bytes", buf.Len(), n, w.groupBytes)
	}
	checkRoundTrip(t, d.Raw, in, rows, true)
}

func TestOpenNotLake(t *testing.T) {
	type plain struct{ A string }
	var buf bytes.Buffer
	pw := parquet.NewGenericWriter[plain](&buf)
	if _, err := pw.Write([]plain{{A: "x"}}); err != nil {
		t.Fatalf("write plain parquet: %v", err)
	}
	if err := pw.Close(); err != nil {
		t.Fatalf("close plain parquet: %v", err)
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{name: "not parquet", b: []byte("PAR1 but not really"), want: "open parquet file"},
		{name: "parquet without lake metadata", b: buf.Bytes(), want: "avro.schema missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tt.b), int64(len(tt.b)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("open: got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
