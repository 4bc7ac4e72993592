package schemas

import (
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
)

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The files of a dataset that is not built in: orders, with a numeric,
// a categorical, a date, a boolean and a text column, and a yes/no label.
const (
	ordersRaw = `{"type":"record","name":"Raw","namespace":"shop.orders","fields":[
		{"name":"order_no","type":["null","string"],"default":null},
		{"name":"amount","type":["null","string"],"default":null},
		{"name":"channel","type":["null","string"],"default":null},
		{"name":"ordered_on","type":["null","string"],"default":null},
		{"name":"gift","type":["null","string"],"default":null},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"returned","type":["null","string"],"default":null},
		{"name":"event_id","type":"string"},{"name":"source","type":"string"},
		{"name":"ingested_at","type":{"type":"long","logicalType":"timestamp-micros"}}]}`
	ordersClean = `{"type":"record","name":"Clean","namespace":"shop.orders","datamill.key":"order_no","fields":[
		{"name":"order_no","type":"long","datamill.clean":{"type":"int","required":true,"min":1}},
		{"name":"amount","type":["null",{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}],"default":null,"datamill.clean":{"type":"decimal","min":0}},
		{"name":"channel","type":["null","string"],"default":null,"datamill.clean":{"type":"enum","values":{"web":[],"store":[]}}},
		{"name":"ordered_on","type":["null",{"type":"int","logicalType":"date"}],"default":null,"datamill.clean":{"type":"date"}},
		{"name":"gift","type":["null","boolean"],"default":null,"datamill.clean":{"type":"boolean"}},
		{"name":"note","type":["null","string"],"default":null,"datamill.clean":{"type":"string"}},
		{"name":"returned","type":["null","string"],"default":null,"datamill.clean":{"type":"enum","values":{"yes":["y"],"no":["n"]}}},
		{"name":"quality_flags","type":{"type":"array","items":"string"},"default":[]},
		{"name":"event_id","type":"string"},
		{"name":"source","type":["null","string"],"default":null},
		{"name":"event_time","type":{"type":"long","logicalType":"timestamp-micros"}},
		{"name":"content_hash","type":"string"}]}`
	ordersDecl = `description: Orders and whether they came back.
sources:
  - kind: http
  - kind: files
    path: /data/orders
model:
  kind: logistic
  label: {column: returned, positive: ["yes"]}
  features:
    - {column: amount, kind: numeric, transform: log1p}
    - {column: channel, kind: categorical, top: 5}
    - {column: ordered_on, kind: numeric, transform: days_since, name: age_days}
    - {column: gift, kind: boolean}
    - {column: note, kind: tokens, buckets: 64}
  train: {min_rows: 50, retrain: 1h}
views:
  - name: orders_by_channel
    sql: select channel, count(*) from orders group by channel
`
)

// datasetsDir writes datasets, by name, each as its files by name, to a
// new DATASETS_DIR.
func datasetsDir(t testing.TB, datasets map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, files := range datasets {
		for file, text := range files {
			writeFile(t, filepath.Join(dir, name, file), text)
		}
	}
	return dir
}

func orders() map[string]string {
	return map[string]string{"raw.avsc": ordersRaw, "clean.avsc": ordersClean, "dataset.yaml": ordersDecl}
}

func TestADatasetOfDatasetsDirIsFoundWithItsDerivedSchemas(t *testing.T) {
	dir := datasetsDir(t, map[string]map[string]string{"orders": orders()})
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Datasets(), ","); got != "jobs,orders,users" {
		t.Errorf("Datasets() = %s, want jobs,orders,users", got)
	}
	d, err := c.Dataset("orders")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "orders" || d.Key != "order_no" {
		t.Errorf("Dataset(orders) is %s keyed by %s, want orders keyed by order_no", d.Name, d.Key)
	}
	m := d.Decl.Model
	if m == nil {
		t.Fatal("orders has no model")
	}
	var names []string
	for _, f := range m.Features {
		names = append(names, f.Name)
	}
	want := Model{Kind: Logistic, Name: "orders", Label: Label{Column: "returned", Positive: []string{"yes"}}}
	if m.Kind != want.Kind || m.Name != want.Name || !cmp.Equal(m.Label, want.Label) ||
		strings.Join(names, ",") != "amount,channel,age_days,gift,note" || m.Features[4].Buckets != 64 || m.Features[1].MinShare != DefaultMinShare {
		t.Errorf("model = %+v, want %+v with the features amount,channel,age_days,gift,note", m, want)
	}
	if tr := m.Train; tr.MinRows != 50 || time.Duration(tr.Retrain) != time.Hour || tr.TestShare != DefaultTestShare || tr.Threshold != DefaultThreshold {
		t.Errorf("train = %+v, want min_rows 50, retrain 1h and the defaults", tr)
	}
	if len(d.Decl.Sources) != 2 || d.Decl.Sources[1].Kind != "files" || len(d.Decl.Views) != 1 || d.Decl.Views[0].Name != "orders_by_channel" {
		t.Errorf("sources %+v, views %+v; want http and files, and orders_by_channel", d.Decl.Sources, d.Decl.Views)
	}
	var files struct {
		Path string `yaml:"path"`
	}
	if err := d.Decl.Sources[1].Options(&files); err != nil || files.Path != "/data/orders" {
		t.Errorf("files source options = %+v, %v; want path /data/orders", files, err)
	}

	clean := map[string]any{
		"order_no": int64(7), "amount": big.NewRat(1999, 100), "channel": "web",
		"ordered_on": time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), "gift": true, "note": "blue, size 9",
		"returned": "no", "quality_flags": []any{"note:trimmed"}, "event_id": "e7", "source": "http",
		"event_time": time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC), "content_hash": "ab",
	}
	roundTrip(t, d.Clean, clean)
	roundTrip(t, d.Persisted, map[string]any{
		FieldRecord: clean, FieldAction: "INSERTED", FieldPersistedAt: time.Date(2024, 3, 2, 10, 0, 1, 0, time.UTC),
	})
	roundTrip(t, d.Scored, map[string]any{
		"order_no": int64(7), FieldEventID: "e7", FieldProbability: 0.25, FieldPredictedLabel: 0,
		FieldModelVersion: "orders-1", FieldScoredAt: time.Date(2024, 3, 2, 10, 0, 2, 0, time.UTC),
	})
	for kind, s := range map[string]avro.Schema{"persisted": d.Persisted, "scored": d.Scored} {
		if got, err := c.Schema("orders/" + kind); err != nil || got != s {
			t.Errorf("Schema(orders/%s) = %v, %v; want the dataset's", kind, got, err)
		}
	}
	if _, err := c.Dataset("payments"); err == nil || !strings.Contains(err.Error(), `unknown dataset "payments"`) {
		t.Errorf("Dataset(payments) = %v, want unknown", err)
	}
}

// roundTrip encodes v with s and checks it decodes to the same values.
func roundTrip(t testing.TB, s avro.Schema, v map[string]any) {
	t.Helper()
	b, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatalf("encode %v with %s: %v", v, s.(avro.NamedSchema).FullName(), err)
	}
	var got map[string]any
	if err := avro.Unmarshal(s, b, &got); err != nil {
		t.Fatalf("decode with %s: %v", s.(avro.NamedSchema).FullName(), err)
	}
	opts := cmp.Options{
		cmp.Comparer(func(a, b *big.Rat) bool { return a.Cmp(b) == 0 }),
		cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	}
	if diff := cmp.Diff(v, got, opts); diff != "" {
		t.Errorf("%s round trip (-in +out):\n%s", s.(avro.NamedSchema).FullName(), diff)
	}
}

func TestAFolderForABuiltInDatasetReplacesTheFilesItHolds(t *testing.T) {
	dir := datasetsDir(t, map[string]map[string]string{"users": {
		"raw.avsc":       `{"type":"record","name":"Raw","namespace":"datamill.users","fields":[{"name":"id","type":["null","string"],"default":null}]}`,
		"README":         "not a schema",
		"persisted.avsc": `{"type":"record","name":"Persisted","fields":[]}`,
	}})
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Overrides(), ","); got != "users/raw.avsc" {
		t.Errorf("Overrides() = %s, want users/raw.avsc", got)
	}
	if got := strings.Join(c.Ignored(), ","); got != "users/persisted.avsc" {
		t.Errorf("Ignored() = %s, want users/persisted.avsc", got)
	}
	d, err := c.Dataset("users")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Raw.(*avro.RecordSchema).Fields()); n != 1 {
		t.Errorf("users/raw from the directory has %d fields, want 1", n)
	}
	if d.Clean != MustSchema("users/clean") || d.Persisted != MustSchema("users/persisted") || d.Scored != MustSchema("users/scored") {
		t.Error("the schemas absent from the directory are not the built-in ones")
	}
	if d.Decl.Model == nil || d.Decl.Model.Name != "churn" {
		t.Errorf("users' declaration, absent from the directory, is %+v, want the built-in one", d.Decl)
	}
}

// A clean schema of a built-in dataset given in the directory is the one
// its persisted and scored schemas derive from, and the one its built-in
// declaration is checked against.
func TestAnEvolvedCleanSchemaDerivesTheRest(t *testing.T) {
	b, err := fs.ReadFile(Files, "avro/users/clean.avsc")
	if err != nil {
		t.Fatal(err)
	}
	const tier = `{"name":"tier","type":["null","string"],"default":null},`
	evolved := strings.Replace(string(b), `"fields": [`, `"fields": [`+tier, 1)
	c, err := Open(datasetsDir(t, map[string]map[string]string{"users": {"clean.avsc": evolved}}))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Dataset("users")
	if err != nil {
		t.Fatal(err)
	}
	rec := d.Persisted.(*avro.RecordSchema).Fields()[0].Type().(*avro.RecordSchema)
	if rec.Fields()[0].Name() != "tier" {
		t.Errorf("the persisted record embeds %s, want the evolved clean record", rec)
	}
	if err := CheckBackward(d.Persisted, MustSchema("users/persisted")); err != nil {
		t.Error(err)
	}

	noAge := strings.Replace(string(b), `"name": "age"`, `"name": "years"`, 1)
	_, err = Open(datasetsDir(t, map[string]map[string]string{"users": {"clean.avsc": noAge}}))
	if err == nil || !strings.Contains(err.Error(), "built-in avro/users/dataset.yaml") || !strings.Contains(err.Error(), "column age is not a field") {
		t.Errorf("a clean schema without the model's column age: %v, want the built-in declaration refused", err)
	}
}

func TestBadDeclarationsAreRefusedNamingTheFileAndTheField(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(ordersDecl, old) {
			t.Fatalf("the orders declaration has no %q", old)
		}
		return strings.Replace(ordersDecl, old, new, 1)
	}
	for name, tc := range map[string]struct{ decl, want string }{
		"unknown key":                              {replace("  kind: logistic", "  kind: logistic\n  lable: {column: returned}"), "line 8: unknown key lable"},
		"unknown top-level key":                    {"modle: {}\n", "line 1: unknown key modle"},
		"model column missing":                     {replace("column: gift", "column: wrapped"), "model.features[3] (wrapped).column: column wrapped is not a field of the clean schema"},
		"categorical over a number":                {replace("{column: channel, kind: categorical, top: 5}", "{column: amount, kind: categorical, name: amount_band}"), "model.features[1] (amount).column: amount is a fractional number; a categorical feature needs text"},
		"categorical over a list":                  {replace("{column: channel, kind: categorical, top: 5}", "{column: quality_flags, kind: categorical}"), "model.features[1] (quality_flags).column: quality_flags is a list of texts; a categorical feature needs text"},
		"numeric over text":                        {replace("{column: gift, kind: boolean}", "{column: note, kind: numeric, name: n}"), "model.features[3] (note).column: note is text; a numeric feature needs a number"},
		"days since a number":                      {replace("column: ordered_on", "column: order_no"), "model.features[2] (order_no).column: order_no is an integer; a numeric days_since feature needs a date or a timestamp"},
		"unknown transform":                        {replace("transform: log1p", "transform: sqrt"), `model.features[0] (amount).transform "sqrt": want log1p or days_since`},
		"unknown feature kind":                     {replace("kind: boolean", "kind: flag"), `model.features[3] (gift).kind "flag"`},
		"label missing":                            {replace("label: {column: returned, positive: [\"yes\"]}", "label: {positive: [\"yes\"]}"), "model.label.column: no column"},
		"a positive value the rule never gives":    {replace(`positive: ["yes"]`, `positive: ["returned"]`), `model.label.positive: "returned" is not a value of returned (no, yes)`},
		"a boolean label's positive not a boolean": {replace(`column: returned, positive: ["yes"]`, `column: gift, positive: ["yes"]`), `model.label.positive: "yes" is not a value of gift, a boolean: want true or false`},
		"logistic without positives":               {replace(`, positive: ["yes"]`, ""), "model.label.positive: a logistic model needs the values of the positive class"},
		"ridge over text":                          {replace(`kind: logistic`+"\n"+`  label: {column: returned, positive: ["yes"]}`, "kind: ridge\n  label: {column: returned}"), "model.label.column: returned is text; a ridge target is a number"},
		"unknown model kind":                       {replace("kind: logistic", "kind: forest"), `model.kind "forest": want logistic or ridge`},
		"the label as a feature":                   {replace("{column: gift, kind: boolean}", "{column: returned, kind: categorical}"), "model.features[3] (returned): the label cannot be a feature"},
		"two features of one name":                 {replace("name: age_days", "name: amount"), "model.features[2] (ordered_on).name: amount names two features"},
		"view without a name":                      {replace("  - name: orders_by_channel\n", "  - name: \"\"\n"), `views[0].name "": want a lower-case SQL name`},
		"view named as the table":                  {replace("  - name: orders_by_channel\n", "  - name: orders\n"), "views[0].name orders: the name of the dataset's table"},
		"view name too long":                       {replace("  - name: orders_by_channel\n", "  - name: "+strings.Repeat("v", 64)+"\n"), "views[0].name " + strings.Repeat("v", 64) + ": longer than PostgreSQL's 63 bytes"},
		"source without a kind":                    {replace("  - kind: http\n", "  - path: /x\n"), "sources[0]: no kind"},
		"a bad duration":                           {replace("retrain: 1h", "retrain: daily"), `time: invalid duration "daily"`},
		"a test share of 1":                        {replace("min_rows: 50", "min_rows: 50, test_share: 1"), "model.train.test_share 1: want it in (0, 1)"},
	} {
		t.Run(name, func(t *testing.T) {
			files := orders()
			files["dataset.yaml"] = tc.decl
			dir := datasetsDir(t, map[string]map[string]string{"orders": files})
			_, err := Open(dir)
			file := filepath.Join(dir, "orders", "dataset.yaml")
			if err == nil || !strings.Contains(err.Error(), file+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open with the declaration\n%s\n= %v\nwant an error naming %s and saying %q", tc.decl, err, file, tc.want)
			}
		})
	}
}

func TestASourceRefusesOptionsItsKindDoesNotHave(t *testing.T) {
	dir := datasetsDir(t, map[string]map[string]string{"orders": orders()})
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Dataset("orders")
	if err != nil {
		t.Fatal(err)
	}
	var http struct{}
	if err := d.Decl.Sources[0].Options(&http); err != nil {
		t.Errorf("http options = %v, want none and no error", err)
	}
	var other struct {
		URL string `yaml:"url"`
	}
	err = d.Decl.Sources[1].Options(&other)
	if want := filepath.Join(dir, "orders", "dataset.yaml") + ": sources[1] (files): "; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "unknown key path") {
		t.Errorf("Options = %v, want an error saying %q and unknown key path", err, want)
	}
}

func TestOpenRefusesWhatItCannotRead(t *testing.T) {
	bad := datasetsDir(t, map[string]map[string]string{"users": {"clean.avsc": `{"type":"record","name":"Clean","fields":[{"name":"id","type":"lnog"}]}`}})
	file := filepath.Join(t.TempDir(), "file.avsc")
	writeFile(t, file, `"string"`)
	noClean := datasetsDir(t, map[string]map[string]string{"payments": {"raw.avsc": ordersRaw}})
	keyless := datasetsDir(t, map[string]map[string]string{"orders": {
		"raw.avsc": ordersRaw, "clean.avsc": strings.Replace(ordersClean, `"datamill.key":"order_no",`, "", 1),
	}})
	badName := datasetsDir(t, map[string]map[string]string{"Orders": orders()})
	for name, tc := range map[string]struct{ dir, want string }{
		"missing":           {filepath.Join(bad, "nope"), "no such file or directory"},
		"a file":            {file, "is not a directory"},
		"no dataset":        {t.TempDir(), "holds no dataset"},
		"does not parse":    {bad, filepath.Join(bad, "users", "clean.avsc") + ": avro: unknown type: lnog"},
		"no clean schema":   {noClean, "dataset payments: open " + filepath.Join(noClean, "payments", "clean.avsc")},
		"no key":            {keyless, "declares no key field (datamill.key)"},
		"a name in capital": {badName, "folder Orders: a dataset's name is lower-case"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "DATASETS_DIR") {
				t.Errorf("Open(%s) = %v, want an error naming DATASETS_DIR and %q", tc.dir, err, tc.want)
			}
		})
	}
}

func TestCatalogWithoutADirectoryIsTheBuiltInDatasets(t *testing.T) {
	c, err := Config{}.Open()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Datasets(), ","); got != "jobs,users" {
		t.Errorf("Datasets() = %s, want jobs,users", got)
	}
	if s, err := c.Schema("users/raw"); err != nil || s != MustSchema("users/raw") {
		t.Errorf("Schema(users/raw) = %v, %v; want the built-in schema", s, err)
	}
	if len(c.Overrides()) != 0 {
		t.Errorf("Overrides() = %v, want none", c.Overrides())
	}
}

// SCHEMAS_DIR, the deprecated name of DATASETS_DIR, still names the
// directory; both naming different ones is refused.
func TestSchemasDirIsReadAsDatasetsDir(t *testing.T) {
	dir := datasetsDir(t, map[string]map[string]string{"orders": orders()})
	other := t.TempDir()
	for name, tc := range map[string]struct {
		cfg          Config
		wantVariable string
		wantErr      string
	}{
		"SCHEMAS_DIR alone":    {cfg: Config{SchemasDir: dir}, wantVariable: "SCHEMAS_DIR"},
		"DATASETS_DIR alone":   {cfg: Config{Dir: dir}, wantVariable: "DATASETS_DIR"},
		"both, the same":       {cfg: Config{Dir: dir, SchemasDir: dir}, wantVariable: "DATASETS_DIR"},
		"both, not the same":   {cfg: Config{Dir: dir, SchemasDir: other}, wantErr: "set DATASETS_DIR alone"},
		"SCHEMAS_DIR unusable": {cfg: Config{SchemasDir: other}, wantVariable: "SCHEMAS_DIR", wantErr: "SCHEMAS_DIR " + other + ": holds no dataset"},
	} {
		t.Run(name, func(t *testing.T) {
			got, variable, err := tc.cfg.Directory()
			if tc.wantVariable != "" && (err != nil || variable != tc.wantVariable || got != cmpOr(tc.cfg.Dir, tc.cfg.SchemasDir)) {
				t.Errorf("Directory() = %s, %s, %v; want the directory from %s", got, variable, err, tc.wantVariable)
			}
			c, err := tc.cfg.Open()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Open() = %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Dataset("orders"); err != nil {
				t.Error(err)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestPredictionsTableIsTheSeedsForUsersAndPrefixedOtherwise(t *testing.T) {
	for name, want := range map[string]string{
		"users":  "predictions",
		"orders": "orders_predictions",
		"jobs":   "jobs_predictions",
	} {
		if got := PredictionsTable(name); got != want {
			t.Errorf("PredictionsTable(%q) = %q, want %q", name, got, want)
		}
	}
}
