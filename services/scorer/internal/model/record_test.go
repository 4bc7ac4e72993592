package model

import (
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// goTypeOf is the Go type the loader decodes an Avro field's type into: a
// union with null is a pointer.
func goTypeOf(t testing.TB, s avro.Schema) reflect.Type {
	t.Helper()
	if u, ok := s.(*avro.UnionSchema); ok {
		for _, m := range u.Types() {
			if m.Type() != avro.Null {
				return reflect.PointerTo(goTypeOf(t, m))
			}
		}
	}
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		switch ls.Logical().Type() {
		case avro.Decimal:
			return reflect.TypeFor[*big.Rat]()
		case avro.Date, avro.TimestampMicros:
			return reflect.TypeFor[time.Time]()
		}
	}
	switch s.Type() {
	case avro.String:
		return reflect.TypeFor[string]()
	case avro.Int:
		return reflect.TypeFor[int32]()
	case avro.Long:
		return reflect.TypeFor[int64]()
	case avro.Array:
		return reflect.TypeFor[[]string]()
	}
	t.Fatalf("no Go type for %s", s.Type())
	return nil
}

// A clean record reads the same whether it is held in the generated type,
// in a map decoded through the clean schema, or in a struct type built from
// the clean schema (as the loader builds its records): the model computes
// the same features from each.
func TestRecordsThroughTheCleanSchema(t *testing.T) {
	schema := schemas.MustSchema("users/clean")
	var fields []reflect.StructField
	for i, f := range schema.(*avro.RecordSchema).Fields() {
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: goTypeOf(t, f.Type()), Tag: reflect.StructTag(fmt.Sprintf("avro:%q", f.Name()))})
	}
	built := reflect.StructOf(fields)
	generated, structs := FieldsOf(reflect.TypeFor[users.Clean]()), FieldsOf(built)

	m, _ := train(t, synthetic(2000, 41), usersDecl(t), 1, "")
	day := func(s string) *time.Time { d, _ := time.Parse(time.DateOnly, s); return &d }
	spend := big.NewRat(1250, 100)
	for name, c := range map[string]users.Clean{
		"full": {
			ID: 7, Age: new(int32(31)), Gender: new("female"), Country: new("DE"), SignupDate: day("2024-01-02"),
			LastLogin: day("2025-11-30"), MonthlySpend: &spend, EventID: "e1", QualityFlags: []string{},
		},
		"empty": {ID: 8, EventID: "e2", QualityFlags: []string{}},
	} {
		b, err := avro.Marshal(schema, &c)
		if err != nil {
			t.Fatal(err)
		}
		var asMap map[string]any
		if err := avro.Unmarshal(schema, b, &asMap); err != nil {
			t.Fatal(err)
		}
		asStruct := reflect.New(built).Interface()
		if err := avro.Unmarshal(schema, b, asStruct); err != nil {
			t.Fatal(err)
		}
		want := m.Preprocessing.Vector(nil, generated.Record(&c))
		for how, r := range map[string]Record{"map": Map(asMap), "built struct": structs.Record(asStruct)} {
			if got := m.Preprocessing.Vector(nil, r); !slices.Equal(got, want) {
				t.Errorf("%s record read from a %s: features %v, from the generated type %v", name, how, got, want)
			}
		}
		if name == "full" && slices.Max(want[4:8]) != 0 {
			t.Errorf("full record: missing indicators %v set", want[4:8])
		}
	}
}

func TestValueConversions(t *testing.T) {
	day := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
	rat := big.NewRat(5, 2)
	var nilRat *big.Rat
	for name, c := range map[string]struct {
		v      any
		number float64
		isNum  bool
		text   string
		isText bool
	}{
		"nil":               {nil, 0, false, "", false},
		"float":             {2.5, 2.5, true, "2.5", true},
		"*int32":            {new(int32(7)), 7, true, "7", true},
		"nil *int32":        {(*int32)(nil), 0, false, "", false},
		"int64":             {int64(-3), -3, true, "-3", true},
		"**big.Rat":         {&rat, 2.5, true, "2.5", true},
		"nil **big.Rat":     {&nilRat, 0, false, "", false},
		"string number":     {" 12.5 ", 12.5, true, " 12.5 ", true},
		"string":            {"churned", 0, false, "churned", true},
		"*string":           {new("DE"), 0, false, "DE", true},
		"bool":              {true, 0, false, "true", true},
		"time":              {day, 0, false, "2025-03-04T00:00:00Z", true},
		"a type unheard of": {struct{}{}, 0, false, "", false},
		"[]string":          {[]string{"DE", "EU"}, 0, false, "DE EU", true},
		"empty []string":    {[]string{}, 0, false, "", true},
		"[]any":             {[]any{"DE", nil, "New York"}, 0, false, "DE New York", true},
		"*[]string":         {&[]string{"FR"}, 0, false, "FR", true},
	} {
		n, ok := Number(c.v)
		s, sok := Text(c.v)
		if n != c.number || ok != c.isNum || s != c.text || sok != c.isText {
			t.Errorf("%s: Number %v %v, Text %q %v; want %v %v, %q %v", name, n, ok, s, sok, c.number, c.isNum, c.text, c.isText)
		}
	}
	for in, want := range map[any]bool{"2025-03-04": true, "2025-03-04T00:00:00Z": true, &day: true, "04/03/2025": false, 3: false} {
		if d, ok := Date(in); ok != want || (ok && !d.Equal(day)) {
			t.Errorf("Date(%v) = %v, %v", in, d, ok)
		}
	}
	for in, want := range map[any][2]bool{"true": {true, true}, "F": {false, true}, "yes": {false, false}, new(true): {true, true}, nil: {false, false}} {
		if v, ok := Bool(in); v != want[0] || ok != want[1] {
			t.Errorf("Bool(%v) = %v, %v; want %v", in, v, ok, want)
		}
	}
}

// A tokens feature over a list column reads the words of its items alike
// from the []string the clean record's Avro array decodes into and from
// the []any a text[] column of the table reads into.
func TestTokensOfAListColumn(t *testing.T) {
	p := &Preprocessing{Features: []Feature{{Name: "locations", Column: "locations", Kind: KindTokens, Buckets: 64}}}
	want := make([]float64, 64)
	for _, tok := range []string{"de", "eu", "new", "york"} {
		want[Bucket(tok, 64)] = 1
	}
	for name, v := range map[string]any{
		"avro array": []string{"DE", "EU", "New York"},
		"table row":  []any{"DE", "EU", "New York"},
		"text":       "DE EU New York",
	} {
		if got := p.Vector(nil, Map{"locations": v}); !slices.Equal(got, want) {
			t.Errorf("%s %v: tokens %v, want %v", name, v, got, want)
		}
	}
	if got := p.Vector(nil, Map{"locations": []string{}}); slices.Max(got) != 0 {
		t.Errorf("an empty list sets buckets %v", got)
	}
}
