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
	lines := regexp.MustCompile(`(?m)^//go:generate go tool avrogen (.*)$`).FindAllStringSubmatch(string(src), -1)
	if len(lines) == 0 {
		t.Fatal("no avrogen go:generate line in schemas.go")
	}
	for _, m := range lines {
		args := strings.Fields(m[1])
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
			s, err := avro.ParseFiles(f)
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

// current lists every current schema by its path under avro/.
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
