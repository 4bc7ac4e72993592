package rules

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
)

func users(t *testing.T) *Rules {
	t.Helper()
	r, err := Compile(schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func raw(kv ...string) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func day(s string) time.Time {
	d, _ := time.Parse(time.DateOnly, s)
	return d
}

func TestApplyUsers(t *testing.T) {
	r := users(t)
	tests := map[string]struct {
		in      map[string]any
		want    map[string]any // fields checked
		flags   []string
		reasons []string
	}{
		"clean row": {
			in: raw("id", "42", "age", "31", "gender", "female", "country", "FR", "city", "Lyon", "email", "ada@example.org",
				"signup_date", "2023-01-02", "last_login", "2024-05-06", "account_status", "active", "monthly_spend", "12.50"),
			want: map[string]any{
				"id": int64(42), "age": int32(31), "gender": "female", "country": "FR", "city": "Lyon",
				"email": "ada@example.org", "signup_date": day("2023-01-02"), "last_login": day("2024-05-06"),
				"account_status": "active", "monthly_spend": big.NewRat(1250, 100),
			},
		},
		"mixed forms": {
			in: raw("id", " 7 ", "gender", " Homme ", "country", "Allemagne", "email", " Ada.Lovelace@Example.ORG ",
				"signup_date", "02/01/2023", "last_login", "2 Jan 2024", "account_status", "Cancelled", "monthly_spend", "€1 234,56",
				"city", "  Saint   Étienne "),
			want: map[string]any{
				"id": int64(7), "gender": "male", "country": "DE", "email": "ada.lovelace@example.org",
				"signup_date": day("2023-01-02"), "last_login": day("2024-01-02"), "account_status": "churned",
				"monthly_spend": big.NewRat(123456, 100), "city": "Saint Étienne",
			},
		},
		"country codes and names": {
			in:   raw("id", "1", "country", "U.S.A."),
			want: map[string]any{"country": "US"},
		},
		"alpha-3": {in: raw("id", "1", "country", "fra"), want: map[string]any{"country": "FR"}},
		"bad optional values are nulled and flagged": {
			in: raw("id", "9", "age", "230", "gender", "?", "country", "Atlantis", "email", "ada@@example.org",
				"signup_date", "2023-02-30", "monthly_spend", "-12.00"),
			want: map[string]any{"age": nil, "gender": nil, "country": nil, "email": nil, "signup_date": nil, "monthly_spend": nil},
			flags: []string{
				"age:out_of_range", "gender:unknown_value", "country:unknown_country", "email:malformed_email",
				"signup_date:bad_date", "monthly_spend:out_of_range",
			},
		},
		"last login before signup": {
			in:    raw("id", "3", "signup_date", "2024-01-01", "last_login", "2023-12-31"),
			want:  map[string]any{"signup_date": day("2024-01-01"), "last_login": nil},
			flags: []string{"last_login:before_signup_date"},
		},
		"missing optional values are plain nulls": {
			in:   raw("id", "5"),
			want: map[string]any{"age": nil, "email": nil},
		},
		"missing id rejects": {in: raw("age", "30"), reasons: []string{"id: missing"}},
		"bad id rejects":     {in: raw("id", "abc"), reasons: []string{`id: not_a_number ("abc")`}},
		"age as words":       {in: raw("id", "1", "age", "forty"), flags: []string{"age:not_a_number"}},
		"invalid utf-8":      {in: raw("id", "1", "city", "Z\xffrich"), want: map[string]any{"city": nil}, flags: []string{"city:invalid_utf8"}},
		"nul byte": {
			in:   raw("id", "1", "city", "Ly\x00on", "gender", "f\x00", "email", "a\x00@b.org"),
			want: map[string]any{"city": nil, "gender": nil, "email": nil}, flags: []string{"gender:nul_byte", "city:nul_byte", "email:nul_byte"},
		},
		"nul byte in the id rejects": {in: raw("id", "1\x00"), reasons: []string{`id: nul_byte ("1\x00")`}},
		"age too large for any integer": {
			in:   raw("id", "1", "age", "99999999999999999999"),
			want: map[string]any{"age": nil}, flags: []string{"age:out_of_range"},
		},
		"age too small for any integer": {in: raw("id", "1", "age", "-99999999999999999999"), flags: []string{"age:out_of_range"}},
		"age too large for an int":      {in: raw("id", "1", "age", "3000000000"), flags: []string{"age:out_of_range"}},
		"id too large for a long":       {in: raw("id", "99999999999999999999"), reasons: []string{`id: out_of_range ("99999999999999999999")`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := r.Apply(tc.in)
			if diff := cmp.Diff(tc.reasons, got.Reasons); diff != "" {
				t.Errorf("Apply(%q) reasons (-want +got):\n%s", tc.in, diff)
			}
			if got.Rejected() {
				return
			}
			if diff := cmp.Diff(tc.flags, got.Flags); diff != "" {
				t.Errorf("Apply(%q) flags (-want +got):\n%s", tc.in, diff)
			}
			for k, want := range tc.want {
				if diff := cmp.Diff(want, got.Values[k], cmp.Comparer(func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })); diff != "" {
					t.Errorf("Apply(%q)[%s] (-want +got):\n%s", tc.in, k, diff)
				}
			}
		})
	}
}

// Numbers too large for their type are out of range, whatever the bounds
// the rules declare: an int beyond int32, a decimal wider than its
// precision.
func TestNumbersTooLargeForTheirType(t *testing.T) {
	s, err := schemas.Parse(`{"type":"record","name":"R","fields":[
		{"name":"n","type":["null","int"],"default":null,"datamill.clean":{"type":"int"}},
		{"name":"d","type":["null",{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}],"default":null,"datamill.clean":{"type":"decimal"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n, d  string
		flags string
	}{
		{"2147483647", "99.99", ""},
		{"-2147483648", "-99.99", ""},
		{"2147483648", "100.00", "n:out_of_range d:out_of_range"},
		{"99999999999999999999", "-100", "n:out_of_range d:out_of_range"},
		{"1e3", "12abc", "n:not_a_number d:not_a_number"},
	} {
		out := r.Apply(raw("n", tc.n, "d", tc.d))
		if got := strings.Join(out.Flags, " "); got != tc.flags {
			t.Errorf("Apply(n=%q, d=%q) flags %q, want %q", tc.n, tc.d, got, tc.flags)
		}
		if tc.flags == "" {
			if _, err := avro.Marshal(s, out.Values); err != nil {
				t.Errorf("Apply(n=%q, d=%q) = %v, which does not encode: %v", tc.n, tc.d, out.Values, err)
			}
		}
	}
}

func TestCleanValuesEncodeWithTheCleanSchema(t *testing.T) {
	out := users(t).Apply(raw("id", "42", "age", "31", "country", "FR", "signup_date", "2023-01-02", "monthly_spend", "$ 12.50"))
	v := out.Values
	v["quality_flags"] = []string{}
	v["event_id"], v["event_time"], v["content_hash"], v["source"] = "e", time.Now(), "h", nil
	if _, err := avro.Marshal(schemas.MustSchema("users/clean"), v); err != nil {
		t.Fatalf("the clean values do not encode: %v", err)
	}
}

func TestParseMoney(t *testing.T) {
	for in, want := range map[string]string{
		"12.50": "12.50", "12,50": "12.50", "€12,50": "12.50", "$ 12.50": "12.50", "12,50 EUR": "12.50",
		"1 234,56": "1234.56", "1,234.56": "1234.56", "1.234,56": "1234.56", "-3": "-3.00", "7.999": "7.99",
	} {
		got, ok := ParseDecimal(in)
		if !ok || got.FloatString(2) != want {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "abc", "12.5.1", "--3", "3-", "12#50", "1e9", "12abc", "1E9", "12 eur"} {
		if got, ok := ParseDecimal(bad); ok {
			t.Errorf("ParseDecimal(%q) = %v, want a failure", bad, got)
		}
	}
}

func TestCompileRefusesBadRules(t *testing.T) {
	for name, attr := range map[string]string{
		"unknown type":        `{"type":"colour"}`,
		"unknown key":         `{"type":"int","mni":3}`,
		"bad on_invalid":      `{"type":"int","on_invalid":"drop"}`,
		"enum without value":  `{"type":"enum"}`,
		"bad not_before":      `{"type":"date","not_before":"nope"}`,
		"salary without part": `{"type":"salary"}`,
		"unknown title part":  `{"type":"title","part":"rank"}`,
		"part of a string":    `{"type":"string","part":"min"}`,
		"unknown role":        `{"type":"salary","part":"min","structured":{"bonus":"b"}}`,
		"html on a string":    `{"type":"string","html":true}`,
		"bad drop_lines":      `{"type":"text","drop_lines":["("]}`,
		"epoch on an int":     `{"type":"int","epoch":true}`,
		"prefer on a norm":    `{"type":"title","part":"norm","prefer":"x"}`,
		"empty fingerprint":   `{"type":"fingerprint"}`,
		"fingerprint of none": `{"type":"fingerprint","of":["nope"]}`,
	} {
		s, err := schemas.Parse(`{"type":"record","name":"R","fields":[{"name":"f","type":["null","string"],"default":null,"datamill.clean":` + attr + `}]}`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(s); err == nil || !strings.Contains(err.Error(), "field f") {
			t.Errorf("%s: Compile = %v, want an error naming the field", name, err)
		}
	}
}

// A field added to the clean schema, null in a record, leaves its hash as
// it was: the re-sends of unchanged records stay duplicates across the
// change.
func TestAFieldAddedAndNullLeavesTheHashAsItWas(t *testing.T) {
	compile := func(fields string) *Rules {
		t.Helper()
		s, err := schemas.Parse(`{"type":"record","name":"R","fields":[` + fields + `]}`)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	const a = `{"name":"a","type":["null","int"],"default":null,"datamill.clean":{"type":"int"}}`
	const b = `{"name":"b","type":["null","string"],"default":null,"datamill.clean":{"type":"string"}}`
	const c = `{"name":"c","type":["null","string"],"default":null,"datamill.clean":{"type":"string"}}`
	before, after := compile(a+","+c), compile(a+","+b+","+c)
	in := raw("a", "7", "c", "x")
	if got, want := after.Hash(after.Apply(in)), before.Hash(before.Apply(in)); got != want {
		t.Errorf("hash of %v with b added = %s, want %s as before", in, got, want)
	}
	with := raw("a", "7", "b", "y", "c", "x")
	if after.Hash(after.Apply(with)) == before.Hash(before.Apply(in)) {
		t.Errorf("hash of %v equals that of the record without b", with)
	}
	// The same value under another field is other content.
	if after.Hash(after.Apply(raw("a", "7", "b", "x"))) == after.Hash(after.Apply(in)) {
		t.Error("a value moved from c to b hashes the same")
	}
}

func TestHashFollowsContentOnly(t *testing.T) {
	r := users(t)
	a := r.Apply(raw("id", "1", "age", "30", "country", "France"))
	b := r.Apply(raw("id", "1", "age", " 30 ", "country", "FR"))
	c := r.Apply(raw("id", "1", "age", "31", "country", "FR"))
	if r.Hash(a) != r.Hash(b) {
		t.Error("the same content in other spellings hashes differently")
	}
	if r.Hash(a) == r.Hash(c) {
		t.Error("different content hashes the same")
	}
}

func BenchmarkApply(b *testing.B) {
	r, err := Compile(schemas.MustSchema("users/clean"))
	if err != nil {
		b.Fatal(err)
	}
	in := raw("id", "42", "age", " 31 ", "gender", "Homme", "country", "Allemagne", "city", "Lyon", "email", "Ada@Example.org",
		"signup_date", "02/01/2023", "last_login", "2024-05-06", "account_status", "active", "monthly_spend", "€12,50")
	b.ReportAllocs()
	for b.Loop() {
		o := r.Apply(in)
		_ = r.Hash(o)
	}
}
