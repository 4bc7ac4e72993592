package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/rules"
)

// benthosMapping is the Bloblang mapping of the Benthos peer.
var benthosMapping = filepath.Join("..", "..", "bench", "peers", "benthos", "users.blobl")

// countriesBlock is the country table of the mapping, between its markers,
// as rules.CountrySpellings gives it: one "folded": "XX" entry a line.
func countriesBlock() string {
	spellings := rules.CountrySpellings()
	keys := make([]string, 0, len(spellings))
	for k := range spellings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		sep := ","
		if i == len(keys)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %q: %q%s\n", k, spellings[k], sep)
	}
	return b.String()
}

// TestBenthosPeerCountries checks that the peer's country table is the
// cleaner's: every spelling, folded, and its code (-update rewrites it).
func TestBenthosPeerCountries(t *testing.T) {
	src, err := os.ReadFile(benthosMapping)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "# BEGIN countries\n", "# END countries\n"
	i, j := bytes.Index(src, []byte(begin)), bytes.Index(src, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s: no %q … %q markers", benthosMapping, strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	got, want := string(src[i+len(begin):j]), countriesBlock()
	if got == want {
		return
	}
	if *update {
		out := slices.Concat(src[:i+len(begin)], []byte(want), src[j:])
		if err := os.WriteFile(benthosMapping, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the country table differs from rules.CountrySpellings; run go test -run TestBenthosPeerCountries -update", benthosMapping)
}

// needBenchPeers skips a test of the peer benchmark unless BENCH_PEERS=1:
// the peer's binary is built from dependencies CI does not download, and
// the benchmark is not part of CI.
func needBenchPeers(t *testing.T) {
	t.Helper()
	if os.Getenv("BENCH_PEERS") != "1" {
		t.Skip("a peer benchmark test: BENCH_PEERS=1 runs it, building the Benthos peer into .cache/benthos")
	}
}

// TestBenthosPeerCleansAsTheRules runs the peer's Bloblang mapping and the
// cleaner's rules (pkg/rules on clean.avsc) on the same dirty users and
// compares every clean value, the quality flags and which records are
// rejected.
func TestBenthosPeerCleansAsTheRules(t *testing.T) {
	needBenchPeers(t)
	bin, err := buildBenthos(t.Context(), filepath.Join("..", ".."), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Compile(readSchema(t, filepath.Join("..", "..", "schemas", "avro", "users", "clean.avsc")))
	if err != nil {
		t.Fatal(err)
	}
	var raws []map[string]any
	g := gen.New(gen.Options{Users: 3000, Seed: 11, Dirty: 0.6})
	for {
		row, ok := g.Next()
		if !ok {
			break
		}
		raw := map[string]any{}
		for i, col := range gen.Columns {
			if v := row.Values[i]; v != nil {
				raw[col] = *v
			}
		}
		raws = append(raws, raw)
	}
	// What the generator does not make: ids the cleaner rejects, and the
	// corners of the readers.
	raws = append(raws, []map[string]any{
		{"id": "abc"},
		{"id": "0"},
		{"id": "-3"},
		{"id": "99999999999999999999"},
		{"id": "1 2"},
		{"id": "  "},
		{"id": "12.0", "age": "+7"},
		{"id": "007", "age": "0120", "gender": "Frau"},
		{"id": "13", "monthly_spend": "1.234,5 EUR", "signup_date": "05.03.2020", "last_login": "2024-02-29T23:30:00+02:00"},
		{"id": "14", "monthly_spend": "€-0.001", "country": "États-Unis", "account_status": "Gekündigt"},
		{"id": "15", "monthly_spend": "12EUR3", "country": "u.s.a.", "email": "A@B..fr"},
		{"id": "16", "monthly_spend": "100000.009", "signup_date": "January 2, 2006", "last_login": "Jan 2, 2006"},
		{"id": "17", "monthly_spend": "1,234,56", "signup_date": "1999-12-31", "city": "a\x00b"},
		{"id": "18", "monthly_spend": "'1'000.5", "signup_date": "2/1/2006", "last_login": "2006-01-02 10:00:00"},
		{"id": "19", "monthly_spend": ".5", "age": "1e2", "email": "x@y.c0m"},
		{"id": "20", "monthly_spend": "5.", "city": "  São   Paulo "},
		{"id": "9223372036854775807", "age": "2147483648"},
	}...)
	var in bytes.Buffer
	for i, raw := range raws {
		doc := map[string]any{"event_id": fmt.Sprint("e", i), "source": "test", "ingested_at": int64(i)}
		for k, v := range raw {
			doc[k] = v
		}
		line, err := json.Marshal(doc) // bytes that are not UTF-8 become U+FFFD, as in the decoder's JSON
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(line, '\n'))
	}
	mapping, err := filepath.Abs(benthosMapping)
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(t.TempDir(), "run.blobl")
	if err := os.WriteFile(prog, []byte(fmt.Sprintf("import %q\nroot = this.apply(\"users\")\n", mapping)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "blobl", "-f", prog)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("benthos blobl: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var rejected, flagged int
	for i := 0; sc.Scan(); i++ {
		if i >= len(raws) {
			t.Fatalf("benthos printed more lines than the %d records", len(raws))
		}
		var got map[string]any
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("record %d %v: benthos printed %s", i, raws[i], sc.Bytes())
		}
		o := rs.Apply(raws[i])
		if o.Rejected() != (got["reasons"] != nil) {
			t.Errorf("record %v: rules rejected %v (%v), the peer %v", raws[i], o.Rejected(), o.Reasons, got["reasons"])
			continue
		}
		if o.Rejected() {
			rejected++
			continue
		}
		want := map[string]any{"quality_flags": []any{}}
		for _, f := range o.Flags {
			want["quality_flags"] = append(want["quality_flags"].([]any), f)
		}
		flagged += min(len(o.Flags), 1)
		for k, v := range o.Values {
			switch v := v.(type) {
			case nil:
				want[k] = nil
			case int32:
				want[k] = float64(v)
			case int64:
				want[k] = float64(v)
			case time.Time:
				want[k] = v.Format(time.DateOnly)
			case *big.Rat:
				want[k] = v.FloatString(2)
			default:
				want[k] = v
			}
		}
		for _, k := range []string{"event_id", "source", "ingested_at", "content_hash"} {
			delete(got, k)
		}
		if spend, ok := got["monthly_spend"].(string); ok && strings.HasPrefix(spend, "-0.00") {
			got["monthly_spend"] = "0.00" // the same numeric in PostgreSQL
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record %v (-rules +peer):\n%s", raws[i], diff)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rejected < 5 || flagged < 1000 {
		t.Errorf("%d records rejected and %d flagged of %d: the test no longer covers the rules", rejected, flagged, len(raws))
	}
}

// TestBenthosPeerEndsWhereDatamillEnds runs a small bench on dirty users
// with the Benthos peer after datamill, and checks that it consumed the
// same events into the same cleaned rows and rejects, both runs measured.
func TestBenthosPeerEndsWhereDatamillEnds(t *testing.T) {
	needBenchPeers(t)
	p := runBenchPeer(t, "benthos")
	if p.Consumed != 600 || p.Rows == 0 || p.Rows != p.Datamill.Rows || p.Rejects == 0 || p.Rejects != p.Datamill.Rejects || p.Differ != 0 {
		t.Errorf("peer consumed %d, %d rows, %d rejects, %d users differing; datamill %d rows, %d rejects: want 600 consumed and the same rows and rejects, some of each",
			p.Consumed, p.Rows, p.Rejects, p.Differ, p.Datamill.Rows, p.Datamill.Rejects)
	}
	if p.EventsPerSecond <= 0 || p.CPUMicrosPerEvent <= 0 || p.Datamill.CPUMicrosPerEvent <= 0 || p.Speedup <= 0 || p.CPURatio <= 0 {
		t.Errorf("peer %.0f events/s, %.0f CPU µs an event; datamill %.0f; ratios %.2f, %.2f: want all measured",
			p.EventsPerSecond, p.CPUMicrosPerEvent, p.Datamill.CPUMicrosPerEvent, p.Speedup, p.CPURatio)
	}
}
