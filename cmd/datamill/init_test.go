package main

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"go.yaml.in/yaml/v4"

	"github.com/datamill/datamill/pkg/rules"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// ordersCSV is a file no code of init was written for.
const ordersCSV = "testdata/init/orders.csv"

// initDraft runs `datamill init ds --from file --out dir` and returns the
// dataset's folder.
func initDraft(t testing.TB, ds, file, dir string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(t.Context(), append([]string{"init", ds, "--from", file, "--out", dir}, args...), nil, &out, &errOut); err != nil {
		t.Fatalf("init: %v\n%s%s", err, out.String(), errOut.String())
	}
	return filepath.Join(dir, ds)
}

func readSchema(t testing.TB, path string) *avro.RecordSchema {
	t.Helper()
	s, err := schemas.Parse(mustRead(t, path))
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		t.Fatalf("%s is no record", path)
	}
	return rec
}

func TestInitDraftsAValidDeclaration(t *testing.T) {
	dir := initDraft(t, "orders", ordersCSV, t.TempDir())
	header, rows := readCSV(t, ordersCSV)

	raw := readSchema(t, filepath.Join(dir, "raw.avsc"))
	var rawFields []string
	for _, f := range raw.Fields() {
		rawFields = append(rawFields, f.Name()+":"+typeName(f.Type()))
	}
	var wantRaw []string
	for _, h := range header {
		wantRaw = append(wantRaw, h+":union[null,string]")
	}
	wantRaw = append(wantRaw, "event_id:string", "source:string", "ingested_at:long(timestamp-micros)")
	if diff := cmp.Diff(wantRaw, rawFields); diff != "" {
		t.Errorf("raw fields (-want +got):\n%s", diff)
	}
	if raw.FullName() != "datamill.orders.Raw" {
		t.Errorf("raw schema named %s, want datamill.orders.Raw", raw.FullName())
	}

	clean := readSchema(t, filepath.Join(dir, "clean.avsc"))
	if _, err := rules.Compile(clean); err != nil {
		t.Errorf("the cleaner would not accept the rules: %v", err)
	}
	key, err := schemas.KeyField(clean)
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(header, key)
	if col < 0 {
		t.Fatalf("key %q is no column of %s", key, ordersCSV)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if r[col] == "" || seen[r[col]] {
			t.Errorf("key %s: value %q is missing or not unique in %s", key, r[col], ordersCSV)
		}
		seen[r[col]] = true
	}
	var got []string
	for _, f := range clean.Fields() {
		s := f.Name() + ":" + typeName(f.Type())
		if rule := f.Prop("datamill.clean"); rule != nil {
			if err := checkRule(f, rule); err != nil {
				t.Errorf("field %s: the cleaner would not accept its rule: %v", f.Name(), err)
			}
			b, _ := json.Marshal(rule)
			s += " " + string(b)
		}
		got = append(got, s)
	}
	want := []string{
		`order_id:string {"required":true,"type":"string"}`,
		`customer:string {"required":true,"type":"enum","values":{"Ana Costa":[],"Ines Duarte":[],"Jonas Berg":[],"Lars Eriksen":[],"Lea Fischer":[],"Mila Novak":[],"Omar Haddad":[],"Paul Weber":[],"Sofia Rossi":[],"Theo Martin":[]}}`,
		`country:string {"required":true,"type":"enum","values":{"DE":[],"ES":[],"FR":[],"IT":[]}}`,
		`amount:union[null,bytes(decimal)] {"max":246.24,"min":6,"type":"decimal"}`,
		`quantity:union[null,int] {"max":6,"min":1,"type":"int"}`,
		`ordered_on:int(date) {"max":"2025-12-09","min":"2025-01-08","required":true,"type":"date"}`,
		`express:string {"required":true,"type":"enum","values":{"false":["no","n","f","0"],"true":["yes","y","t","1"]}}`,
		`note:union[null,string] {"type":"enum","values":{"call before":[],"fragile":[],"gift wrap":[],"leave at the door":[]}}`,
		`returned:string {"required":true,"type":"enum","values":{"false":["no","n","f","0"],"true":["yes","y","t","1"]}}`,
		`quality_flags:array`, `event_id:string`, `source:union[null,string]`, `event_time:long(timestamp-micros)`, `content_hash:string`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clean fields (-want +got):\n%s", diff)
	}

	// dataset.yaml: the file and HTTP as sources; the model, once
	// uncommented, names the label and features among the clean columns.
	text := mustRead(t, filepath.Join(dir, "dataset.yaml"))
	var decl struct {
		Description string
		Sources     []struct{ Kind, Path string }
	}
	if err := yaml.Unmarshal([]byte(text), &decl); err != nil {
		t.Fatalf("dataset.yaml: %v\n%s", err, text)
	}
	abs, _ := filepath.Abs(ordersCSV)
	if len(decl.Sources) != 2 || decl.Sources[0].Kind != "files" || decl.Sources[0].Path != abs || decl.Sources[1].Kind != "http" || decl.Description == "" {
		t.Errorf("dataset.yaml declares %+v, want a description, the file %s and http", decl, abs)
	}
	var model struct {
		Model struct {
			Kind  string
			Label struct {
				Column   string
				Positive []string
			}
			Features []struct{ Column, Kind, Transform string }
			Train    struct {
				MinRows int `yaml:"min_rows"`
			}
		}
	}
	if err := yaml.Unmarshal([]byte(uncomment(text, "# model:")), &model); err != nil {
		t.Fatalf("dataset.yaml's model, uncommented: %v\n%s", err, uncomment(text, "# model:"))
	}
	m := model.Model
	if m.Kind != "logistic" || m.Label.Column != "returned" || !slices.Equal(m.Label.Positive, []string{"true"}) || m.Train.MinRows < 1 {
		t.Errorf("suggested model %+v, want logistic on returned, positive true", m)
	}
	var features []string
	columns := map[string]bool{}
	for _, f := range clean.Fields() {
		columns[f.Name()] = true
	}
	for _, f := range m.Features {
		if !columns[f.Column] || f.Column == key || f.Column == m.Label.Column {
			t.Errorf("feature %s is no clean column but the key or label", f.Column)
		}
		features = append(features, f.Column+":"+f.Kind+":"+f.Transform)
	}
	wantFeatures := []string{
		"customer:categorical:", "country:categorical:", "amount:numeric:", "quantity:numeric:",
		"ordered_on:numeric:days_since", "express:categorical:", "note:categorical:",
	}
	if diff := cmp.Diff(wantFeatures, features); diff != "" {
		t.Errorf("suggested features (-want +got):\n%s", diff)
	}
}

func TestInitNeverOverwritesWithoutForce(t *testing.T) {
	out := t.TempDir()
	dir := initDraft(t, "orders", ordersCSV, out)
	edited := filepath.Join(dir, "clean.avsc")
	if err := os.WriteFile(edited, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	err := run(t.Context(), []string{"init", "orders", "--from", ordersCSV, "--out", out}, nil, &stdout, &stdout)
	if err == nil || !strings.Contains(err.Error(), "--force") || mustRead(t, edited) != "edited" {
		t.Fatalf("init over an existing folder = %v, and clean.avsc is %.20q; want an error naming --force and the file kept", err, mustRead(t, edited))
	}
	initDraft(t, "orders", ordersCSV, out, "--force")
	readSchema(t, edited)
}

func TestInitRefusesWhatCannotBeDeclared(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := map[string]struct {
		args []string
		want string
	}{
		"a dataset name that is no topic or table name": {[]string{"init", "My-Orders", "--from", ordersCSV}, "dataset name"},
		"a column that is no field name":                {[]string{"init", "spaced", "--from", write("spaced.csv", "id,unit price\n1,2\n2,3\n")}, `column "unit price"`},
		"a column named as the envelope":                {[]string{"init", "env", "--from", write("env.csv", "id,source\n1,a\n2,b\n")}, `column "source"`},
		"a key named as a lineage field":                {[]string{"init", "lin", "--from", write("lin.csv", "updated_at,b\n1,x\n2,y\n")}, `column "updated_at", the key`},
		"no column to key the records by":               {[]string{"init", "nokey", "--from", write("nokey.csv", "a,b\nx,1\nx,1\ny,2\ny,2\n")}, "key"},
		"more ids than it checks":                       {[]string{"init", "many", "--from", ordersCSV, "--max-keys", "10"}, "--max-keys"},
	}
	for name, tc := range tests {
		var out bytes.Buffer
		err := run(t.Context(), append(tc.args, "--out", filepath.Join(dir, "out")), nil, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: init = %v, want an error about %s", name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("a refused init wrote %s: %v", filepath.Join(dir, "out"), err)
	}
}

// init without a dataset is still the deployment's init.
func TestInitWithoutADatasetProvisions(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"init", "-h"}, nil, &out, &out)
	if err != nil || !strings.Contains(out.String(), "usage: datamill init\n") || !strings.Contains(out.String(), "usage: datamill init <dataset> --from <file>") {
		t.Errorf("init -h = %v, %q; want both usages", err, out.String())
	}
}

// The draft, unedited, is what the cleaner runs on: it compiles its rules
// and cleans every row of the file, none rejected, one record per key.
func TestInitDraftCleansEveryRow(t *testing.T) {
	ds := "orders_" + strings.ToLower(rand.Text()[:8])
	out := t.TempDir()
	initDraft(t, ds, ordersCSV, out)
	_, rows := readCSV(t, ordersCSV)

	kcfg := testkit.Kafka(t)
	ensureTopics(t, kcfg, "raw."+ds, "clean."+ds, "dlq."+ds)
	env := append(testkit.KafkaEnv(kcfg), "SCHEMA_REGISTRY_URL="+testkit.Registry(t),
		// Where the draft lies for the services of today (SCHEMAS_DIR)
		// and of issue 17 (DATASETS_DIR).
		"SCHEMAS_DIR="+out, "DATASETS_DIR="+out,
	)
	startCleaner(t, append(env, "DATASETS="+ds))
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"produce", ds, ordersCSV}, env, &stdout, &stdout); err != nil {
		t.Fatalf("produce: %v: %s", err, stdout.String())
	}
	testkit.Consume(t, kcfg, "clean."+ds, len(rows))

	// The clean topic's profile: every row, typed, one per key.
	stdout.Reset()
	if err := run(t.Context(), []string{"profile", "clean", "--dataset", ds, "--json"}, env, &stdout, &stdout); err != nil {
		t.Fatalf("profile: %v: %s", err, stdout.String())
	}
	var p struct {
		Rows    int
		Columns []struct {
			Name, Type string
			Distinct   int
			Missing    int
			Top        []struct {
				Value string
				Count int
			}
		}
		Keys struct{ Best string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, c := range p.Columns {
		types[c.Name] = c.Type
		if c.Name == "order_id" && c.Distinct != len(rows) {
			t.Errorf("clean.%s has %d distinct order ids, want %d", ds, c.Distinct, len(rows))
		}
		// The cleaner read every value as the profile did: none was
		// nulled as invalid or out of the drafted range.
		if c.Name == "quality_flags" && (len(c.Top) != 1 || c.Top[0].Value != "[]" || c.Top[0].Count != len(rows)) {
			t.Errorf("clean.%s: quality flags %+v, want none on every record", ds, c.Top)
		}
	}
	want := map[string]string{"amount": "decimal", "quantity": "int", "ordered_on": "date", "express": "bool", "returned": "bool", "country": "enum-like"}
	for col, typ := range want {
		if types[col] != typ {
			t.Errorf("clean.%s: %s is %s, want %s", ds, col, types[col], typ)
		}
	}
	if p.Rows != len(rows) || p.Keys.Best != "order_id" {
		t.Errorf("clean.%s: %d records keyed by %q, want %d by order_id", ds, p.Rows, p.Keys.Best, len(rows))
	}
}

// startCleaner builds the cleaner (into the binaries of dev's tests) and
// runs it with env until the test ends.
func startCleaner(t testing.TB, env []string) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(devBin, "cleaner")
	build := exec.CommandContext(t.Context(), "go", "build", "-ldflags=-s -w", "-o", bin, "./services/cleaner")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the cleaner: %v\n%s", err, b)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(append(toolchainEnv(), testkit.As(env, "cleaner")...), "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=warn", "STAGE_INSTANCE_ID="+filepath.Base(t.TempDir()))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// Registered first, so that it runs once the cleaner has stopped.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cleaner's log:\n%s", logs.String())
		}
	})
	startProcess(t, cmd, syscall.SIGTERM, 15*time.Second)
}

// uncomment returns text from the line marker on, without the "# " of
// its commented lines.
func uncomment(text, marker string) string {
	_, rest, _ := strings.Cut(text, marker)
	var out []string
	for l := range strings.Lines(strings.TrimPrefix(marker, "# ") + rest) {
		out = append(out, strings.TrimPrefix(l, "# "))
	}
	return strings.Join(out, "")
}

// readCSV reads a small CSV file: its header and rows.
func readCSV(t testing.TB, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return records[0], records[1:]
}

// typeName names an Avro type in the tests: "string", "union[null,int]",
// "int(date)".
func typeName(s avro.Schema) string {
	switch x := s.(type) {
	case *avro.UnionSchema:
		var names []string
		for _, u := range x.Types() {
			names = append(names, typeName(u))
		}
		return "union[" + strings.Join(names, ",") + "]"
	case avro.LogicalTypeSchema:
		if l := x.Logical(); l != nil {
			return string(s.Type()) + "(" + string(l.Type()) + ")"
		}
	}
	return string(s.Type())
}

// checkRule checks a field's datamill.clean attribute against the field's
// type: what the cleaner's rule compiler (rules.Compile, which the tests
// run on the whole schema) leaves to the draft.
func checkRule(f *avro.Field, v any) error {
	rule, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%v: want an object", v)
	}
	typ := strings.TrimSuffix(strings.TrimPrefix(typeName(f.Type()), "union[null,"), "]")
	wantTypes := map[string][]string{
		"int": {"int", "long"}, "decimal": {"bytes(decimal)"}, "date": {"int(date)"},
		"string": {"string"}, "enum": {"string"}, "email": {"string"}, "country": {"string"},
	}
	kind, _ := rule["type"].(string)
	if !slices.Contains(wantTypes[kind], typ) {
		return fmt.Errorf("rule type %q on a field of type %s", kind, typ)
	}
	if kind == "enum" {
		if m, _ := rule["values"].(map[string]any); len(m) == 0 {
			return fmt.Errorf("enum without values")
		}
	}
	if required, _ := rule["required"].(bool); required != !strings.HasPrefix(typeName(f.Type()), "union[null,") {
		return fmt.Errorf("required is %v on a field of type %s", required, typeName(f.Type()))
	}
	return nil
}

// On dirty data the cleaner nulls, in each int, decimal and date column of
// the draft, exactly the values the profile called invalid, and finds none
// out of the drafted ranges: the profile reads values as the cleaner does.
func TestInitDraftNullsWhatTheProfileCallsInvalid(t *testing.T) {
	dir := t.TempDir()
	dirty := filepath.Join(dir, "dirty.csv")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"gen", "users", "--rows", "400", "--dirty", "0.4", "--out", dirty}, nil, &out, &out); err != nil {
		t.Fatalf("gen: %v: %s", err, out.String())
	}
	// One row per valid id, so that every row ends as one clean record.
	header, rows := readCSV(t, dirty)
	file := filepath.Join(dir, "users.csv")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write(header)
	seen, kept := map[string]bool{}, 0
	for _, r := range rows {
		id := strings.TrimSpace(r[0])
		if !digitsOnly.MatchString(id) || seen[id] {
			continue
		}
		seen[id] = true
		_ = w.Write(r)
		kept++
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		t.Fatal(err)
	}

	ds := "dirty_" + strings.ToLower(rand.Text()[:8])
	initDraft(t, ds, file, dir)
	out.Reset()
	if err := run(t.Context(), []string{"profile", file, "--json"}, nil, &out, &out); err != nil {
		t.Fatalf("profile: %v", err)
	}
	var p struct {
		Columns []struct {
			Name, Type string
			Invalid    int
		}
	}
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatal(err)
	}

	kcfg := testkit.Kafka(t)
	registry := testkit.Registry(t)
	ensureTopics(t, kcfg, "raw."+ds, "clean."+ds, "dlq."+ds)
	env := append(testkit.KafkaEnv(kcfg), "SCHEMA_REGISTRY_URL="+registry, "SCHEMAS_DIR="+dir, "DATASETS_DIR="+dir)
	startCleaner(t, append(env, "DATASETS="+ds))
	out.Reset()
	if err := run(t.Context(), []string{"produce", ds, file}, env, &out, &out); err != nil {
		t.Fatalf("produce: %v: %s", err, out.String())
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]int{} // field → values nulled
	for _, rec := range testkit.Consume(t, kcfg, "clean."+ds, kept) {
		_, v, err := reg.DecodeAny(t.Context(), rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		for _, flag := range v.(map[string]any)["quality_flags"].([]any) {
			field, problem, _ := strings.Cut(flag.(string), ":")
			flags[field]++
			if problem == "out_of_range" {
				t.Errorf("%s: out of the drafted range", flag)
			}
		}
	}
	checked := 0
	for _, c := range p.Columns {
		switch c.Type {
		case "int", "decimal", "date", "timestamp":
			checked++
			if flags[c.Name] != c.Invalid {
				t.Errorf("%s (%s): the cleaner nulled %d values, the profile found %d invalid", c.Name, c.Type, flags[c.Name], c.Invalid)
			}
		}
	}
	if checked < 4 {
		t.Errorf("only %d int, decimal or date columns in the generated users", checked)
	}
}

var digitsOnly = regexp.MustCompile(`^[0-9]+$`)

func TestInitNotesWhatTheDraftRefusesRejectsOrNulls(t *testing.T) {
	file := filepath.Join(t.TempDir(), "people.csv")
	text := "id,age\n1,30\n2,x\n,40\nfoo,31\n3,32\n4,33\n5,34\n6,35\n7,36\n8,37\n9,38\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"init", "people", "--from", file, "--out", t.TempDir()}, nil, &out, &out); err != nil {
		t.Fatalf("init: %v: %s", err, out.String())
	}
	for _, want := range []string{
		`note: id, the key: values that are no int: 1 (e.g. "foo"); the cleaner rejects their records`,
		"note: id, the key: records without one: 1; the extractor and produce refuse them",
		`note: age: values that are no int: 1 (e.g. "x"); the draft nulls and flags them`,
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("init printed\n%s\nwithout %q", out.String(), want)
		}
	}
}

// A column named as a field the clean record or the table adds keeps its
// name in the raw record and gets the dataset's before it in the clean one.
func TestInitRenamesColumnsNamedAsLineageFields(t *testing.T) {
	file := filepath.Join(t.TempDir(), "items.csv")
	text := "id,updated_at,content_hash,price\n1,2024-01-01,abc,3\n2,2024-01-02,def,4\n3,2024-01-03,ghi,5\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := initDraft(t, "items", file, t.TempDir())
	var raw, clean []string
	for _, f := range readSchema(t, filepath.Join(dir, "raw.avsc")).Fields() {
		raw = append(raw, f.Name())
	}
	schema := readSchema(t, filepath.Join(dir, "clean.avsc"))
	if _, err := rules.Compile(schema); err != nil {
		t.Errorf("the cleaner would not accept the rules: %v", err)
	}
	for _, f := range schema.Fields() {
		name := f.Name()
		if rule, ok := f.Prop("datamill.clean").(map[string]any); ok {
			if err := checkRule(f, rule); err != nil {
				t.Errorf("field %s: %v", name, err)
			}
			if from, ok := rule["from"].(string); ok {
				name += "<-" + from
			}
		}
		clean = append(clean, name)
	}
	wantRaw := []string{"id", "updated_at", "content_hash", "price", "event_id", "source", "ingested_at"}
	wantClean := []string{"id", "items_updated_at<-updated_at", "items_content_hash<-content_hash", "price", "quality_flags", "event_id", "source", "event_time", "content_hash"}
	if diff := cmp.Diff(wantRaw, raw); diff != "" {
		t.Errorf("raw fields (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantClean, clean); diff != "" {
		t.Errorf("clean fields (-want +got):\n%s", diff)
	}
	model := mustRead(t, filepath.Join(dir, "dataset.yaml"))
	if !strings.Contains(model, "{column: items_updated_at, kind: numeric, transform: days_since, name: days_since_updated_at}") {
		t.Errorf("the suggested model does not name the clean column items_updated_at:\n%s", model)
	}
}
