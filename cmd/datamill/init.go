package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/datamill/datamill/cmd/datamill/internal/profile"
	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/schemas"
)

// initOrDraft is `datamill init`: without a dataset it prepares a
// deployment (initCommand); `datamill init <ds> --from <file>` drafts a
// dataset's declaration from a file's profile instead.
func initOrDraft(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		if err := initCommand(ctx, args, environ, stdout, stderr); err != nil {
			return err
		}
		fmt.Fprintln(stderr)
		return draftDataset(ctx, args, environ, stdout, stderr)
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "--from" || a == "-from" || strings.HasPrefix(a, "--from=") || strings.HasPrefix(a, "-from=") {
			return draftDataset(ctx, args, environ, stdout, stderr)
		}
	}
	return initCommand(ctx, args, environ, stdout, stderr)
}

// datasetName is what a dataset may be called: it names topics, an Avro
// namespace and a table.
var datasetName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// avroName is what a column must be called to be a field of a schema.
var avroName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// draftDataset writes the draft declaration of a dataset from a file.
func draftDataset(_ context.Context, args, _ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the file (CSV, JSON or NDJSON) to draft the declaration from (required)")
	out := fs.String("out", "datasets", "the directory of datasets (DATASETS_DIR) to write the dataset's folder into")
	force := fs.Bool("force", false, "replace the files of an existing folder")
	var pf profileFlags
	pf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: datamill init <dataset> --from <file> [flags]

Drafts a dataset's declaration from a file's profile (see datamill profile),
in <out>/<dataset>/: raw.avsc (every column of the file as optional text,
plus the extraction envelope), clean.avsc (each column's type and cleaning
rule: ranges, enum values, nullability; the key column as datamill.key) and
dataset.yaml (the file as a source, HTTP ingest, and a commented-out model
suggested from the profile). The draft loads the file as it is; edit it to
say what the data should be. An existing folder is left alone without
--force.

flags:`)
		fs.PrintDefaults()
	}
	ds, rest := firstArg(args)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if ds == "" && fs.NArg() > 0 {
		ds = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return errUsage
		}
	}
	if ds == "" || *from == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if !datasetName.MatchString(ds) {
		return fmt.Errorf("init: dataset name %q: want lower-case letters, digits and _, starting with a letter", ds)
	}
	dir := filepath.Join(*out, ds)
	if _, err := os.Stat(dir); err == nil && !*force { // #nosec G703 -- --out is the operator's own directory
		return fmt.Errorf("init: %s exists; --force replaces its raw.avsc, clean.avsc and dataset.yaml", dir)
	}
	rep, err := profileFile(*from, pf, stderr)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	abs, err := filepath.Abs(*from)
	if err != nil {
		return err
	}
	d, err := newDraft(ds, filepath.Base(*from), rep)
	if err != nil {
		return fmt.Errorf("init %s: %w", ds, err)
	}
	files, err := d.files(abs)
	if err != nil {
		return fmt.Errorf("init %s: %w", ds, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { // #nosec G301 G703 -- --out, the operator's own; the services may read it as another user (a container)
		return fmt.Errorf("init: %w", err)
	}
	for _, name := range []string{"raw.avsc", "clean.avsc", "dataset.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil { // #nosec G306 G703 -- declarations the services may read as another user (a container)
			return fmt.Errorf("init: %w", err)
		}
	}
	fmt.Fprintf(stdout, "wrote %s: raw.avsc, clean.avsc, dataset.yaml (%d columns from %d rows of %s, key %s)\n",
		dir, len(d.columns), rep.Rows, *from, d.key.Name)
	if dup := rep.Keys.Duplicates; dup != nil {
		fmt.Fprintf(stdout, "note: %s, the key: values that occur more than once: %d (%s); the newest record of each key is the one kept\n",
			d.key.Name, dup.Values, plural(dup.ExtraRows, "extra row"))
	}
	for _, n := range d.notes {
		fmt.Fprintln(stdout, "note: "+n)
	}
	fmt.Fprintf(stdout, "next: edit the draft, then run the pipeline with DATASETS_DIR=%s and DATASETS=%s\n", *out, ds)
	return nil
}

// draft is a dataset's declaration drafted from a profile.
type draft struct {
	name, file string
	rows       int64
	columns    []profile.Column // in the file's order
	key        profile.Column
	notes      []string
}

func newDraft(name, file string, rep *report) (*draft, error) {
	d := &draft{name: name, file: file, rows: rep.Rows, columns: rep.Columns}
	if len(d.columns) == 0 {
		return nil, errors.New("the file has no column")
	}
	// The envelope of a raw record leaves no room for a column of the
	// same name; a column named as a field the clean record or the table
	// adds gets another name there.
	reserved := []string{ingest.FieldEventID, ingest.FieldSource, ingest.FieldIngestedAt}
	var errs []error
	for _, c := range d.columns {
		switch {
		case !avroName.MatchString(c.Name):
			errs = append(errs, fmt.Errorf("column %q: a field name has only letters, digits and _, not starting with a digit; rename it in the file", c.Name))
		case slices.Contains(reserved, c.Name):
			errs = append(errs, fmt.Errorf("column %q: the name of a field every raw record carries; rename it in the file", c.Name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if rep.Keys.Best == "" && len(rep.Keys.Unchecked) > 0 {
		return nil, fmt.Errorf("no key checked: %s had more distinct values than --max-keys; raise it", strings.Join(rep.Keys.Unchecked, ", "))
	}
	if rep.Keys.Best == "" {
		return nil, errors.New("no column has distinct values in 90% of the rows to key the records by; add an id column to the file")
	}
	for _, c := range d.columns {
		if c.Name == rep.Keys.Best {
			d.key = c
		}
	}
	if slices.Contains(lineage, d.key.Name) {
		return nil, fmt.Errorf("column %q, the key: the name of a field every clean record carries; rename it in the file", d.key.Name)
	}
	return d, nil
}

// avroRecord and avroField write a schema with its attributes in the
// order a reader expects them.
type avroRecord struct {
	Type      string      `json:"type"`
	Name      string      `json:"name"`
	Namespace string      `json:"namespace"`
	Doc       string      `json:"doc"`
	Key       string      `json:"datamill.key,omitempty"`
	Fields    []avroField `json:"fields"`
}

type avroField struct {
	Name    string          `json:"name"`
	Type    any             `json:"type"`
	Default json.RawMessage `json:"default,omitempty"`
	Doc     string          `json:"doc"`
	Rule    *cleanRule      `json:"datamill.clean,omitempty"`
}

// cleanRule is a field's rule for the cleaner (pkg/rules).
type cleanRule struct {
	Type     string              `json:"type"`
	From     string              `json:"from,omitempty"`
	Required bool                `json:"required,omitempty"`
	Min      any                 `json:"min,omitempty"`
	Max      any                 `json:"max,omitempty"`
	Values   map[string][]string `json:"values,omitempty"`
}

var null = json.RawMessage("null")

func optional(t any) any { return []any{"null", t} }

var (
	dateType      = map[string]any{"type": "int", "logicalType": "date"}
	timestampType = map[string]any{"type": "long", "logicalType": "timestamp-micros"}
)

// files renders the draft's three files; path is the file's absolute path.
func (d *draft) files(path string) (map[string][]byte, error) {
	raw := avroRecord{
		Type: "record", Name: "Raw", Namespace: "datamill." + d.name,
		Doc: fmt.Sprintf("A %s record as its source gave it: every source value kept as the text it came as, plus the extraction envelope.", d.name),
	}
	for _, c := range d.columns {
		raw.Fields = append(raw.Fields, avroField{Name: c.Name, Type: optional("string"), Default: null, Doc: c.Name + " as given by the source."})
	}
	raw.Fields = append(raw.Fields,
		avroField{Name: ingest.FieldEventID, Type: "string", Doc: "Deterministic id of this event: the same source record always gets the same id."},
		avroField{Name: ingest.FieldSource, Type: "string", Doc: "Where the record came from, e.g. file:/data/" + d.file + "#42 or http."},
		avroField{Name: ingest.FieldIngestedAt, Type: timestampType, Doc: "When the extractor read the record."},
	)

	clean := avroRecord{
		Type: "record", Name: "Clean", Namespace: "datamill." + d.name, Key: d.key.Name,
		Doc: fmt.Sprintf("A %s record after cleaning: typed and normalised. Invalid optional values are null and named in quality_flags. Drafted by datamill init from %d rows of %s.", d.name, d.rows, d.file),
	}
	for _, c := range d.columns {
		clean.Fields = append(clean.Fields, d.cleanField(c))
	}
	clean.Fields = append(clean.Fields,
		avroField{
			Name: "quality_flags", Type: map[string]any{"type": "array", "items": "string"}, Default: json.RawMessage("[]"),
			Doc: "Fields set to null because their value was invalid, as field:problem, e.g. age:out_of_range.",
		},
		avroField{Name: schemas.FieldEventID, Type: "string", Doc: "Id of the raw event this record was cleaned from."},
		avroField{Name: schemas.FieldSource, Type: optional("string"), Default: null, Doc: "Where the raw event came from, as the extractor named it."},
		avroField{Name: schemas.FieldEventTime, Type: timestampType, Doc: "When the source event was ingested; orders the versions of a record."},
		avroField{Name: schemas.FieldContentHash, Type: "string", Doc: "Hex SHA-256 of the typed content, to recognise unchanged re-sends."},
	)
	out := map[string][]byte{}
	for name, rec := range map[string]avroRecord{"raw.avsc": raw, "clean.avsc": clean} {
		b, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return nil, err
		}
		if _, err := schemas.Parse(string(b)); err != nil {
			return nil, fmt.Errorf("drafted %s does not parse: %w", name, err)
		}
		out[name] = append(b, '\n')
	}
	out["dataset.yaml"] = d.yaml(path)
	return out, nil
}

// cleanField is a column's clean field: its type and rule from its profile.
// A column without a missing or invalid value is required, the key always.
func (d *draft) cleanField(c profile.Column) avroField {
	f := avroField{Name: d.cleanName(c.Name)}
	rule := &cleanRule{}
	var typ any = "string"
	what := string(c.Type)
	switch c.Type {
	case profile.Int:
		rule.Type, rule.Min, rule.Max = "int", c.IntMin, c.IntMax
		typ = "int"
		if c.IntMin < -1<<31 || c.IntMax > 1<<31-1 || c.Name == d.key.Name {
			typ = "long"
		}
	case profile.Decimal:
		rule.Type, rule.Min, rule.Max = "decimal", c.Numeric.Min, c.Numeric.Max
		digits := len(strconv.FormatFloat(max(-c.Numeric.Min, c.Numeric.Max), 'f', 0, 64))
		typ = map[string]any{"type": "bytes", "logicalType": "decimal", "precision": min(max(12, digits+2), 38), "scale": 2}
		what = "decimal, two decimals"
	case profile.Date, profile.Timestamp:
		rule.Type = "date"
		rule.Min, rule.Max = c.DayMin.Format(time.DateOnly), c.DayMax.Format(time.DateOnly)
		typ = dateType
		if c.Type == profile.Timestamp {
			what = "timestamp, kept as its day"
		}
	case profile.Bool:
		rule.Type = "enum"
		rule.Values = map[string][]string{
			"true":  slices.DeleteFunc(profile.BoolSpellings(true), func(s string) bool { return s == "true" }),
			"false": slices.DeleteFunc(profile.BoolSpellings(false), func(s string) bool { return s == "false" }),
		}
		what = "true or false"
	case profile.Enum:
		rule.Type, rule.Values = "enum", enumValues(c.Values)
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range rule.Values {
				if !yield(k) {
					return
				}
			}
		})
		what = "one of " + strings.Join(names, ", ")
	case profile.Text:
		rule.Type = "string"
		if c.Email {
			rule.Type, what = "email", "email address, lower-cased"
		}
	default:
		rule.Type, what = "string", "text (the file had no value)"
	}
	if c.Name == d.key.Name && c.Type != profile.Int {
		// A key is read as the text it is, whatever it looks like.
		rule, typ, what = &cleanRule{Type: "string"}, "string", "text"
	}
	required := c.Name == d.key.Name || c.Type != profile.Empty && c.Missing == 0 && c.Invalid == 0
	f.Doc = fmt.Sprintf("%s: %s; %s missing in %s.", c.Name, what, percent(c.MissingShare), d.file)
	if c.Name == d.key.Name {
		f.Doc = fmt.Sprintf("%s, the record key: %s.", c.Name, what)
	}
	if required {
		rule.Required = true
		f.Type = typ
	} else {
		f.Type, f.Default = optional(typ), null
	}
	switch {
	case c.Name == d.key.Name && c.Type == profile.Int && c.Invalid > 0:
		d.notes = append(d.notes, fmt.Sprintf("%s, the key: values that are no int: %d (e.g. %s); the cleaner rejects their records", c.Name, c.Invalid, quoteAll(c.InvalidExamples)))
	case c.Invalid > 0:
		d.notes = append(d.notes, fmt.Sprintf("%s: values that are no %s: %d (e.g. %s); the draft nulls and flags them", c.Name, c.Type, c.Invalid, quoteAll(c.InvalidExamples)))
	}
	if c.Name == d.key.Name && c.Missing > 0 {
		d.notes = append(d.notes, fmt.Sprintf("%s, the key: records without one: %d; the extractor and produce refuse them", c.Name, c.Missing))
	}
	if f.Name != c.Name {
		rule.From = c.Name
		d.notes = append(d.notes, fmt.Sprintf("%s: named %s in the clean record and the table, where %s is a field of every record", c.Name, f.Name, c.Name))
	}
	f.Rule = rule
	return f
}

// lineage are the fields every clean record and every table row has
// besides the dataset's own: the clean lineage and the loader's columns.
var lineage = []string{
	"quality_flags", schemas.FieldEventID, schemas.FieldSource, schemas.FieldEventTime, schemas.FieldContentHash,
	ingest.FieldIngestedAt, "created_event_id", "updated_at",
}

// cleanName is a column's name in the clean record: its own, or, when a
// lineage field has it, the dataset's name before it (orders_updated_at).
func (d *draft) cleanName(column string) string {
	if slices.Contains(lineage, column) {
		return d.name + "_" + column
	}
	return column
}

// enumValues groups values that are the same once lower-cased (as the
// cleaner compares them) under their most frequent spelling.
func enumValues(values []profile.Count) map[string][]string {
	canonical := map[string]string{} // folded → spelling
	out := map[string][]string{}
	for _, v := range values { // most frequent first
		folded := strings.ToLower(v.Value)
		if _, ok := canonical[folded]; !ok {
			canonical[folded] = v.Value
			out[v.Value] = []string{}
		}
	}
	return out
}

// yaml renders dataset.yaml: the file and HTTP as sources, and a model
// suggested from the profile, commented out.
func (d *draft) yaml(path string) []byte {
	var b bytes.Buffer
	q := func(s string) string { j, _ := json.Marshal(s); return string(j) }
	fmt.Fprintf(&b, "# The declaration of %s, drafted by datamill init from %s; edit it.\n", d.name, d.file)
	fmt.Fprintf(&b, "description: %s\n", q(fmt.Sprintf("%s, drafted from %s (%d rows).", d.name, d.file, d.rows)))
	fmt.Fprintf(&b, "sources:\n  - kind: files\n    path: %s\n  - kind: http\n", q(path))
	model := d.model()
	if len(model) == 0 {
		fmt.Fprintln(&b, "# No column looks like a label to learn (a yes/no or two-valued column, or a number); declare a model here to score the records.")
		return b.Bytes()
	}
	fmt.Fprintln(&b, "# A model suggested from the profile: uncomment it and check the label and features.")
	for _, l := range model {
		fmt.Fprintln(&b, "# "+l)
	}
	return b.Bytes()
}

// model suggests a model as YAML lines: a label (a bool or two-valued
// column for logistic regression, else a number for ridge) and every
// other column that makes a feature.
func (d *draft) model() []string {
	q := func(s string) string { j, _ := json.Marshal(s); return string(j) }
	var label *profile.Column
	kind := "logistic"
	labelRank := func(c profile.Column) int {
		n := strings.ToLower(c.Name)
		for _, hint := range []string{"label", "target", "churn", "outcome", "class", "fraud", "default", "converted", "status"} {
			if strings.Contains(n, hint) {
				return 1
			}
		}
		return 0
	}
	for _, c := range d.columns {
		binary := c.Type == profile.Bool || c.Type == profile.Enum && len(enumValues(c.Values)) == 2
		if c.Name != d.key.Name && binary && (label == nil || labelRank(c) >= labelRank(*label)) {
			label = &c
		}
	}
	if label == nil {
		kind = "ridge"
		for _, c := range d.columns {
			numeric := c.Type == profile.Int || c.Type == profile.Decimal
			if c.Name != d.key.Name && numeric && (label == nil || labelRank(c) >= labelRank(*label)) {
				label = &c
			}
		}
	}
	if label == nil {
		return nil
	}
	lines := []string{"model:", "  kind: " + kind, "  name: " + d.name, "  label:", "    column: " + d.cleanName(label.Name)}
	if kind == "logistic" {
		positive := "true"
		if label.Type == profile.Enum {
			vals := slices.Collect(func(yield func(string) bool) {
				for k := range enumValues(label.Values) {
					if !yield(k) {
						return
					}
				}
			})
			// The rarer value is usually the one to find.
			count := func(v string) int64 {
				for _, c := range label.Values {
					if c.Value == v {
						return c.Count
					}
				}
				return 0
			}
			slices.SortFunc(vals, func(a, b string) int { return cmp.Or(cmp.Compare(count(a), count(b)), cmp.Compare(a, b)) })
			positive = vals[0]
		}
		lines = append(lines, "    positive: ["+q(positive)+"]")
	}
	lines = append(lines, "  features:")
	features := 0
	for _, c := range d.columns {
		if c.Name == d.key.Name || c.Name == label.Name {
			continue
		}
		var f string
		name := d.cleanName(c.Name)
		switch c.Type {
		case profile.Int, profile.Decimal:
			f = fmt.Sprintf("{column: %s, kind: numeric}", name)
			if n := c.Numeric; n.Min >= 0 && n.Median > 0 && n.P99 > 5*n.Median {
				f = fmt.Sprintf("{column: %s, kind: numeric, transform: log1p}", name)
			}
		case profile.Date, profile.Timestamp:
			f = fmt.Sprintf("{column: %s, kind: numeric, transform: days_since, name: days_since_%s}", name, c.Name)
		case profile.Bool:
			// The cleaner has no boolean type: the column is the text
			// true or false, a category.
			f = fmt.Sprintf("{column: %s, kind: categorical}", name)
		case profile.Enum:
			f = fmt.Sprintf("{column: %s, kind: categorical, top: %d}", name, min(len(enumValues(c.Values)), 10))
		case profile.Text:
			if c.Email || c.DistinctAtLeast || float64(c.Distinct) > 0.5*float64(d.rows-c.Missing) {
				continue // nearly one value per record: an identifier, no feature
			}
			f = fmt.Sprintf("{column: %s, kind: categorical, top: 20}", name)
		default:
			continue
		}
		lines = append(lines, "    - "+f)
		features++
	}
	if features == 0 {
		return nil
	}
	lines = append(lines, "  train:", fmt.Sprintf("    min_rows: %d", min(200, max(d.rows*4/5, 1))), "    retrain: 24h", "    test_share: 0.2")
	if kind == "logistic" {
		lines = append(lines, "    threshold: 0.5")
	}
	return lines
}
