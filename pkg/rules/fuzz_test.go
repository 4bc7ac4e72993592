package rules

import (
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/schemas"
)

// problems are every reason a value can be refused for.
var problems = []string{
	"missing", "not_text", "invalid_utf8", "nul_byte", "not_a_number", "out_of_range", "unknown_value",
	"unknown_country", "malformed_email", "bad_date",
}

// text writes an accepted value back as a source would.
func text(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.Format(time.DateOnly)
	case *big.Rat:
		return v.FloatString(2)
	case int32:
		return strconv.Itoa(int(v))
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return v
	}
	panic("unexpected value type")
}

// checkField reads s as the users field of the given kind: the value is
// accepted with a normalized form that is itself accepted unchanged, or
// refused with a known problem and no value.
func checkField(t *testing.T, kind, s string) {
	t.Helper()
	r, err := Compile(schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.fields, func(f *field) bool { return f.kind == kind })
	if i < 0 {
		t.Fatalf("users/clean has no %s field", kind)
	}
	f := r.fields[i]
	v, problem := r.value(f, s)
	if problem != "" {
		if v != nil || !slices.Contains(problems, problem) {
			t.Fatalf("%s %q = %v, %q; want no value and a known problem", f.name, s, v, problem)
		}
		return
	}
	norm := text(v)
	again, problem := r.value(f, norm)
	if problem != "" || text(again) != norm {
		t.Fatalf("%s %q = %q, read again %v, %q; want it unchanged", f.name, s, norm, again, problem)
	}
}

func FuzzDate(f *testing.F) {
	for _, s := range []string{"2023-01-02", "02/01/2023", "2 Jan 2024", "2023-02-30", "0000-00-00", "2023-13-01", "2024-01-02T03:04:05Z", "20230102", "1899-12-31", "9999-12-31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkField(t, "date", s) })
}

func FuzzCountry(f *testing.F) {
	for _, s := range []string{"FR", "fra", "U.S.A.", "Allemagne", "États-Unis", "Atlantis", "  us of a ", "Éire", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkField(t, "country", s) })
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{"ada@example.org", " Ada.Lovelace@Example.ORG ", "ada@@example.org", "a..b@example.org", "a@b", "@example.org", "ada@exa mple.org"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkField(t, "email", s) })
}

func FuzzMoney(f *testing.F) {
	for _, s := range []string{"12.50", "€1 234,56", "$ 12.50", "12,50 EUR", "1,234.56", "1.234,56", "-3", "7.999", "-12.00", "9999999", "1e9", "12abc", "12.5.1", "--3", "3-", "12#50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkField(t, "decimal", s)
		// An amount with letters inside is no number.
		if d, ok := ParseDecimal(s); ok {
			inside := strings.TrimFunc(s, func(r rune) bool { return r < '0' || r > '9' })
			if strings.ContainsFunc(inside, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }) {
				t.Fatalf("ParseDecimal(%q) = %v, want a failure: letters inside the number", s, d)
			}
		}
	})
}

func FuzzApply(f *testing.F) {
	f.Add("42", "31", "female", "FR", "Lyon", "ada@example.org", "2023-01-02", "2024-05-06", "active", "12.50")
	f.Add(" 7 ", "forty", " Homme ", "Allemagne", "  Saint   Étienne ", " Ada.Lovelace@Example.ORG ", "02/01/2023", "2 Jan 2024", "Cancelled", "€1 234,56")
	f.Add("9", "230", "?", "Atlantis", "Z\xffrich", "ada@@example.org", "2023-02-30", "2023-12-31", "", "-12.00")
	f.Add("abc", "", "", "", "", "", "2024-01-01", "2023-12-31", "", "1e9")
	f.Add("", "3 1", "x", "U.S.A.", "", "", "", "", "paused", "12abc")
	r, err := Compile(schemas.MustSchema("users/clean"))
	if err != nil {
		f.Fatal(err)
	}
	names := []string{"id", "age", "gender", "country", "city", "email", "signup_date", "last_login", "account_status", "monthly_spend"}
	f.Fuzz(func(t *testing.T, id, age, gender, country, city, email, signup, login, status, spend string) {
		in := map[string]any{}
		for i, v := range []string{id, age, gender, country, city, email, signup, login, status, spend} {
			if v != "" {
				in[names[i]] = v
			}
		}
		out := r.Apply(in)
		for _, fl := range r.fields {
			v, ok := out.Values[fl.name]
			if !ok && !out.Rejected() {
				t.Fatalf("Apply(%q): no value for %s", in, fl.name)
			}
			if v != nil {
				text(v) // a value of a known type
			}
		}
		for _, flag := range out.Flags {
			name, problem, ok := strings.Cut(flag, ":")
			if !ok || out.Values[name] != nil || !slices.Contains(problems, problem) && !strings.HasPrefix(problem, "before_") {
				t.Fatalf("Apply(%q): flag %q does not name a nulled field and a problem", in, flag)
			}
		}
		if out.Rejected() {
			return
		}
		// The clean record, written back as source text, cleans to itself.
		back := map[string]any{}
		for _, fl := range r.fields {
			if v := out.Values[fl.name]; v != nil {
				back[fl.from] = text(v)
			}
		}
		again := r.Apply(back)
		if again.Rejected() || len(again.Flags) != 0 || r.Hash(again) != r.Hash(Outcome{Values: out.Values}) {
			t.Fatalf("Apply(%q) = %v; written back as %q it cleans to %v, flags %v, reasons %v", in, out.Values, back, again.Values, again.Flags, again.Reasons)
		}
	})
}
