package schemas

import (
	"bytes"
	"errors"
	"go/format"
	"io/fs"
	"math/big"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/gen"

	"github.com/datamill/datamill/schemas/users"
)

// TestGeneratedCodeIsCurrent regenerates the Go types as the go:generate
// lines of schemas.go do and compares them with the committed files.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	src, err := os.ReadFile("schemas.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`(?m)^//go:generate go (tool avrogen|run ./internal/gentypes) (.*)$`).FindAllStringSubmatch(string(src), -1)
	if len(lines) < 2 {
		t.Fatalf("%d avrogen or gentypes go:generate lines in schemas.go, want 2", len(lines))
	}
	for _, m := range lines {
		// avrogen reads files; gentypes reads schemas by path, derived
		// ones included.
		byPath := m[1] != "tool avrogen"
		args := strings.Fields(m[2])
		var pkg, out string
		var files []string
		var opts []gen.OptsFunc
		tags := map[string]gen.TagStyle{}
		for i := 0; i < len(args); i++ {
			switch args[i] {
			case "-pkg":
				i++
				pkg = args[i]
			case "-o":
				i++
				out = args[i]
			case "-encoders":
				opts = append(opts, gen.WithEncoders(true))
			case "-fullschema":
				opts = append(opts, gen.WithFullSchema(true))
			case "-strict-types":
				opts = append(opts, gen.WithStrictTypes(true))
			case "-enums":
				opts = append(opts, gen.WithEnums(true))
			case "-tags":
				i++
				name, style, _ := strings.Cut(args[i], ":")
				tags[name] = gen.TagStyle(style)
			default:
				if strings.HasPrefix(args[i], "-") {
					t.Fatalf("the staleness check does not know avrogen flag %s", args[i])
				}
				files = append(files, args[i])
			}
		}
		g := gen.NewGenerator(pkg, tags, opts...)
		for _, f := range files {
			var s avro.Schema
			if byPath {
				s, err = Schema(f)
			} else {
				s, err = avro.ParseFiles(f)
			}
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			g.Parse(s)
		}
		var buf bytes.Buffer
		if err := g.Write(&buf); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// avrogen runs goimports on its output, which orders and groups
		// the imports; gofmt both sides and compare them without their
		// import blocks, so that the check needs no x/tools here.
		got, err := format.Source(buf.Bytes())
		if err != nil {
			t.Fatalf("generated code for %s does not parse: %v", out, err)
		}
		if want, err = format.Source(want); err != nil {
			t.Fatalf("%s does not parse: %v", out, err)
		}
		if !bytes.Equal(withoutImports(got), withoutImports(want)) {
			t.Errorf("%s is stale: run `go generate ./...` in schemas/ and commit the result", out)
		}
	}
}

// current lists every current schema by its path under avro/: the files,
// and the persisted and scored schemas derived for every dataset.
func current(t *testing.T) []string {
	t.Helper()
	var paths []string
	err := fs.WalkDir(Files, "avro", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == "avro/released" {
			return fs.SkipDir
		}
		if !d.IsDir() && path.Ext(p) == ".avsc" {
			paths = append(paths, strings.TrimSuffix(strings.TrimPrefix(p, "avro/"), ".avsc"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range BuiltIn().Datasets() {
		paths = append(paths, ds+"/persisted", ds+"/scored")
	}
	if len(paths) < 6 {
		t.Fatalf("found only %d schemas: %v", len(paths), paths)
	}
	return paths
}

func TestEverySchemaIsBackwardCompatibleWithItsReleases(t *testing.T) {
	for _, p := range current(t) {
		t.Run(p, func(t *testing.T) {
			next := MustSchema(p)
			releases, err := fs.Glob(Files, "avro/released/"+p+"/v*.avsc")
			if err != nil {
				t.Fatal(err)
			}
			if len(releases) == 0 {
				t.Fatalf("no released version of %s under avro/released/%s/", p, p)
			}
			for _, r := range releases {
				b, err := fs.ReadFile(Files, r)
				if err != nil {
					t.Fatal(err)
				}
				prev, err := Parse(string(b))
				if err != nil {
					t.Fatalf("parse %s: %v", r, err)
				}
				if err := CheckBackward(next, prev); err != nil {
					t.Errorf("%s breaks %s: %v", p, r, err)
				}
			}
		})
	}
}

func TestCheckBackward(t *testing.T) {
	v1 := `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null},
		{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}}]}`
	tests := map[string]struct {
		next string
		want string // in the error; empty when compatible
	}{
		"same": {next: v1},
		"optional field with default": {next: `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},
			{"name":"email","type":["null","string"],"default":null},{"name":"tier","type":["null","string"],"default":null},
			{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}}]}`},
		"field removed": {next: `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},
			{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}}]}`},
		"required field without default": {
			next: `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},
			{"name":"email","type":["null","string"],"default":null},{"name":"tier","type":"string"},
			{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}}]}`,
			want: "field tier: added without a default",
		},
		"type change string to int": {
			next: `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},
			{"name":"email","type":["null","int"],"default":null},
			{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}}]}`,
			want: "field email: union[null,int] cannot read union[null,string]",
		},
		"nested type change": {
			next: `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},
			{"name":"email","type":["null","string"],"default":null},
			{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"int"}]}}]}`,
			want: "field address.city: int cannot read string",
		},
	}
	prev, err := Parse(v1)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			next, err := Parse(tc.next)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckBackward(next, prev)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckBackward(%s) = %v, want compatible", tc.next, err)
			case tc.want == "":
			case !errors.Is(err, ErrIncompatible):
				t.Fatalf("CheckBackward(%s) = %v, want ErrIncompatible", tc.next, err)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("CheckBackward(%s) = %q, want it to say %q", tc.next, err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCleanUserRoundTrip(t *testing.T) {
	tests := map[string]users.Clean{
		"every field set": {
			ID: 7, Age: ptr(int32(42)), Gender: ptr("female"), Country: ptr("FR"), City: ptr("Lyon"),
			Email:         ptr("ada@example.org"),
			SignupDate:    ptr(time.Date(2023, 1, 31, 0, 0, 0, 0, time.UTC)),
			LastLogin:     ptr(time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)),
			AccountStatus: ptr("active"),
			MonthlySpend:  ptr(big.NewRat(123456, 100)),
			QualityFlags:  []string{"gender:unknown", "age:out_of_range"},
			EventID:       "e1", Source: ptr("file:/data/users.csv#2"),
			EventTime:   time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
			ContentHash: "ab",
		},
		"optional fields null": {
			ID: 1, QualityFlags: []string{}, EventID: "e2",
			EventTime: time.UnixMicro(0).UTC(), ContentHash: "cd",
		},
		"negative decimal, largest precision": {
			ID: 2, MonthlySpend: ptr(big.NewRat(-999999999999, 100)), QualityFlags: []string{},
			EventID: "e3", EventTime: time.UnixMicro(1).UTC(), ContentHash: "ef",
		},
	}
	schema := MustSchema("users/clean")
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := avro.Marshal(schema, in)
			if err != nil {
				t.Fatal(err)
			}
			var out users.Clean
			if err := avro.Unmarshal(schema, b, &out); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(in, out, ratEqual); diff != "" {
				t.Errorf("round trip of %+v (-in +out):\n%s", in, diff)
			}
		})
	}
}

func TestPersistedUserRoundTrip(t *testing.T) {
	in := users.Persisted{
		Record: users.Clean{
			ID: 7, Age: ptr(int32(42)), MonthlySpend: ptr(big.NewRat(5, 2)), QualityFlags: []string{},
			EventID: "e1", EventTime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), ContentHash: "ab",
		},
		Action:      users.LoadActionUnchanged,
		PersistedAt: time.Date(2024, 5, 6, 7, 8, 10, 1000, time.UTC),
	}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out users.Persisted
	if err := avro.Unmarshal(MustSchema("users/persisted"), b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out, ratEqual); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
}

var ratEqual = cmp.Comparer(func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })

func TestSchemaUnknownPath(t *testing.T) {
	if _, err := Schema("users/nope"); err == nil {
		t.Error("Schema(users/nope) succeeded")
	}
}

var importBlock = regexp.MustCompile(`(?s)\nimport \(.*?\n\)\n`)

func withoutImports(b []byte) []byte { return importBlock.ReplaceAll(b, []byte("\n")) }

func TestKeyField(t *testing.T) {
	if k, err := KeyField(MustSchema("users/clean")); err != nil || k != "id" {
		t.Errorf("KeyField(users/clean) = %q, %v; want id", k, err)
	}
	if _, err := KeyField(MustSchema("users/raw")); err == nil {
		t.Error("a schema without the attribute has a key field")
	}
}

// The users declaration asks a generic scorer for the features the churn
// model computes today, in their order, and the same label.
func TestTheUsersDeclarationIsTheChurnModel(t *testing.T) {
	d, err := BuiltIn().Dataset("users")
	if err != nil {
		t.Fatal(err)
	}
	m := d.Decl.Model
	if m == nil {
		t.Fatal("users declares no model")
	}
	type feature struct{ Name, Column, Kind, Transform string }
	var got []feature
	for _, f := range m.Features {
		got = append(got, feature{f.Name, f.Column, f.Kind, f.Transform})
		if f.Kind == Categorical && (f.MinShare != 0.005 || f.Top != 0) {
			t.Errorf("%s keeps values with a share of %g, at most %d; want 0.005, no limit", f.Name, f.MinShare, f.Top)
		}
	}
	want := []feature{
		{"age", "age", Numeric, ""},
		{"tenure_days", "signup_date", Numeric, DaysSince},
		{"days_since_login", "last_login", Numeric, DaysSince},
		{"log_monthly_spend", "monthly_spend", Numeric, Log1p},
		{"gender", "gender", Categorical, ""},
		{"country", "country", Categorical, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("users features (-want +got):\n%s", diff)
	}
	wantLabel := Label{Column: "account_status", Positive: []string{"churned"}}
	if m.Kind != Logistic || m.Name != "churn" || !cmp.Equal(m.Label, wantLabel) {
		t.Errorf("users model is %s %s of %+v, want logistic churn of %+v", m.Kind, m.Name, m.Label, wantLabel)
	}
	wantTrain := Train{MinRows: 200, Retrain: Duration(24 * time.Hour), TestShare: 0.2, Threshold: 0.5, L2: 1, ClassWeight: "none", Seed: 1}
	if m.Train != wantTrain {
		t.Errorf("users train = %+v, want scorer train's defaults %+v", m.Train, wantTrain)
	}
	if d.Key != "id" || len(d.Decl.Sources) != 1 || d.Decl.Sources[0].Kind != "http" {
		t.Errorf("users is keyed by %s with sources %+v, want id and http", d.Key, d.Decl.Sources)
	}
}

// Scored records written before the scored schema was derived, with the
// key in user_id, read with the derived schema, whose key field is id.
func TestTheDerivedScoredSchemaReadsTheReleasedOnesRecords(t *testing.T) {
	b, err := fs.ReadFile(Files, "avro/released/users/scored/v1.avsc")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	old, err := avro.Marshal(v1, map[string]any{
		"user_id": int64(42), "event_id": "e1", "probability": 0.75, "predicted_label": 1, "model_version": "churn-3", "scored_at": at,
	})
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(MustSchema("users/scored"), v1)
	if err != nil {
		t.Fatal(err)
	}
	var got users.Scored
	if err := avro.Unmarshal(resolved, old, &got); err != nil {
		t.Fatal(err)
	}
	want := users.Scored{ID: 42, EventID: "e1", Probability: 0.75, PredictedLabel: 1, ModelVersion: "churn-3", ScoredAt: at}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a v1 scored record read with the derived schema (-want +got):\n%s", diff)
	}
}

func TestDerivingRefusesWhatCannotBeDerived(t *testing.T) {
	for name, tc := range map[string]struct {
		clean string
		want  string
	}{
		"not a record":       {`"string"`, "a clean schema must be a record"},
		"no key":             {`{"type":"record","name":"Clean","fields":[{"name":"id","type":"long"}]}`, "declares no key field"},
		"a key not there":    {`{"type":"record","name":"Clean","datamill.key":"nr","fields":[{"name":"id","type":"long"}]}`, "key field nr (datamill.key) is not one of its fields"},
		"a nullable key":     {`{"type":"record","name":"Clean","datamill.key":"id","fields":[{"name":"id","type":["null","long"]}]}`, "key field id is a union"},
		"a key that clashes": {`{"type":"record","name":"Clean","datamill.key":"probability","fields":[{"name":"probability","type":"double"}]}`, "key field probability is also a field of the scored record"},
		"a taken name":       {`{"type":"record","name":"Scored","datamill.key":"id","fields":[{"name":"id","type":"long"}]}`, "the name Scored is taken by a derived schema"},
	} {
		t.Run(name, func(t *testing.T) {
			clean, err := Parse(tc.clean)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ScoredOf(clean, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ScoredOf(%s) = %v, want an error saying %q", tc.clean, err, tc.want)
			}
		})
	}
	if _, err := PersistedOf(avro.MustParse(`"string"`)); err == nil {
		t.Error("PersistedOf(string) succeeded")
	}
}

func TestNonNull(t *testing.T) {
	tests := map[string]struct {
		schema string
		want   []string
	}{
		"no union":             {`"int"`, []string{"int"}},
		"optional":             {`["null", {"type": "int", "logicalType": "date"}]`, []string{"int(date)"}},
		"null last":            {`["string", "null"]`, []string{"string"}},
		"two types":            {`["null", "int", "string"]`, []string{"int", "string"}},
		"a union of null only": {`["null"]`, nil},
	}
	for name, tc := range tests {
		s, err := avro.Parse(tc.schema)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for _, u := range NonNull(s) {
			got = append(got, typeName(u))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: NonNull(%s) (-want +got):\n%s", name, tc.schema, diff)
		}
	}
}
