package gen

import (
	"bytes"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/ingest"
)

func rows(opts Options) []Row {
	g := New(opts)
	var out []Row
	for {
		r, ok := g.Next()
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

func csvOf(t *testing.T, opts Options, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, New(opts), format, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDeterministic(t *testing.T) {
	a := csvOf(t, Options{Users: 2000, Seed: 7, Dirty: 0.3}, "csv")
	b := csvOf(t, Options{Users: 2000, Seed: 7, Dirty: 0.3}, "csv")
	c := csvOf(t, Options{Users: 2000, Seed: 8, Dirty: 0.3}, "csv")
	if !bytes.Equal(a, b) {
		t.Error("the same options gave different output")
	}
	if bytes.Equal(a, c) {
		t.Error("another seed gave the same output")
	}
}

var (
	emailRe   = regexp.MustCompile(`^[a-z]+\.[a-z]+[0-9]+@[a-z.]+$`)
	countryOK = map[string]bool{}
)

func init() {
	for _, c := range countries {
		countryOK[c.code] = true
	}
}

func TestCleanRowsAreValid(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rows(Options{Users: 20000, Seed: 3}) {
		v := func(c int) string { return *r.Values[c] }
		if seen[v(colID)] {
			t.Fatalf("id %s twice without dirt", v(colID))
		}
		seen[v(colID)] = true
		age, err := strconv.Atoi(v(colAge))
		if err != nil || age < 18 || age > 80 {
			t.Errorf("age %q", v(colAge))
		}
		if !slices.Contains([]string{"female", "male", "other"}, v(colGender)) || !countryOK[v(colCountry)] || !emailRe.MatchString(v(colEmail)) {
			t.Errorf("row %s: gender %q, country %q, email %q", v(colID), v(colGender), v(colCountry), v(colEmail))
		}
		signup, err1 := time.Parse(time.DateOnly, v(colSignup))
		login, err2 := time.Parse(time.DateOnly, v(colLastLogin))
		if err1 != nil || err2 != nil || login.Before(signup) || login.After(Reference) {
			t.Errorf("dates %s %s", v(colSignup), v(colLastLogin))
		}
		if s, ok := new(big.Rat).SetString(v(colSpend)); !ok || s.Sign() < 0 {
			t.Errorf("spend %q", v(colSpend))
		}
		if len(r.Dirt) > 0 {
			t.Errorf("dirt %v without --dirty", r.Dirt)
		}
	}
}

func TestDirt(t *testing.T) {
	g := New(Options{Users: 20000, Seed: 4, Dirty: 0.2})
	firstAt := map[string]int{}
	for i := 0; ; i++ {
		r, ok := g.Next()
		if !ok {
			break
		}
		if id := r.Values[colID]; id != nil {
			if _, ok := firstAt[*id]; !ok {
				firstAt[*id] = i
			}
			if slices.Contains(r.Dirt, DirtDuplicate) || slices.Contains(r.Dirt, DirtResend) {
				if firstAt[*id] == i {
					t.Errorf("a repeat of id %s came before its original", *id)
				}
			}
		}
	}
	s := g.Stats()
	share := float64(s.DirtyUsers) / float64(s.Users)
	if share < 0.17 || share > 0.23 {
		t.Errorf("dirty share of users %.3f, want about 0.2", share)
	}
	for _, k := range Kinds {
		if s.ByKind[k] == 0 {
			t.Errorf("no row with dirt %s", k)
		}
	}
	if s.Duplicates == 0 || s.Resends == 0 || s.Rows != s.Users+s.Duplicates+s.Resends {
		t.Errorf("stats %+v", s)
	}
}

func TestChurnFollowsInactivity(t *testing.T) {
	var churn, n [2]int // [0] logged in within 90 days, [1] not for 180+
	for _, r := range rows(Options{Users: 50000, Seed: 5}) {
		login, _ := time.Parse(time.DateOnly, *r.Values[colLastLogin])
		days := Reference.Sub(login).Hours() / 24
		i := -1
		switch {
		case days <= 90:
			i = 0
		case days >= 180:
			i = 1
		}
		if i < 0 {
			continue
		}
		n[i]++
		if *r.Values[colStatus] == "churned" {
			churn[i]++
		}
	}
	recent, idle := float64(churn[0])/float64(n[0]), float64(churn[1])/float64(n[1])
	if idle < 2*recent {
		t.Errorf("churn rate %.2f for users idle 180+ days vs %.2f for recent ones: the hidden process is too weak", idle, recent)
	}
	total := float64(churn[0]+churn[1]) / float64(n[0]+n[1])
	if total < 0.10 || total > 0.45 {
		t.Errorf("churn rate %.2f out of the plausible range", total)
	}
}

func TestFormatsParseBack(t *testing.T) {
	opts := Options{Users: 3000, Seed: 6, Dirty: 0.2}
	want := len(rows(opts))
	for _, f := range []ingest.Format{ingest.CSV, ingest.NDJSON, ingest.JSON} {
		n := 0
		err := ingest.Read(bytes.NewReader(csvOf(t, opts, string(f))), f, func(ingest.Record) error { n++; return nil })
		if err != nil || n != want {
			t.Errorf("%s: read back %d rows (%v), want %d", f, n, err, want)
		}
	}
}

func BenchmarkUsers(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		g := New(Options{Users: 10000, Seed: 1, Dirty: 0.1})
		if err := Write(&bytes.Buffer{}, g, "csv", nil); err != nil {
			b.Fatal(err)
		}
	}
}
