package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/progress"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

const trainUsage = `usage: scorer train [flags]

Trains a dataset's model (--dataset, default the one dataset of DATASETS) as
the dataset declares it in its dataset.yaml (model: the label, the
features, logistic or ridge), or as --declaration declares it for an
experiment, on the labelled rows of the dataset's table in DATABASE_URL, or of a CSV
export of it (--csv), with a train/test split (stratified by label for a
logistic model), evaluates it on the test split and writes the artefact
<out>/<name>-<version>.json. Flags given override the declaration.

flags:`

// trainSettings are the shared blocks `scorer train` builds its clients
// from, as the services do: KAFKA_* (TLS and SASL included),
// SCHEMA_REGISTRY_* (credentials included) and DATABASE_*. None is
// required: without DATABASE_URL it trains on --csv; without Kafka and the
// registry it publishes no eco sample.
type trainSettings struct {
	// Service gives DATASETS, whose one dataset --dataset defaults to.
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
	// Schemas is the catalog of datasets: the built-in ones and those of
	// DATASETS_DIR, each a folder with its schemas and dataset.yaml.
	Schemas  schemas.Config
	ModelDir string `env:"SCORER_MODEL_DIR" envDefault:"models"`
}

// parseTrainSettings reads the settings from environ. A shared block that
// is set is read as the services read it, its secrets from <VAR>_FILE
// included (KAFKA_SASL_PASSWORD_FILE, SCHEMA_REGISTRY_PASSWORD_FILE,
// DATABASE_URL_FILE), and checked.
func parseTrainSettings(environ []string) (trainSettings, error) {
	var s trainSettings
	m := config.ToMap(environ)
	if err := env.ParseWithOptions(&s, env.Options{Environment: m}); err != nil {
		return s, fmt.Errorf("configuration: %w", err)
	}
	set := func(names ...string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return m[n] != "" })
	}
	var errs []error
	var err error
	if set("KAFKA_BROKERS") {
		s.Kafka, err = config.Parse[kafka.Config](environ)
		errs = append(errs, err)
	}
	if set("SCHEMA_REGISTRY_URL") {
		s.Registry, err = config.Parse[serde.Config](environ)
		errs = append(errs, err)
	}
	if set("DATABASE_URL", "DATABASE_URL_FILE") {
		s.Postgres, err = config.Parse[pg.Config](environ)
		errs = append(errs, err)
	} else if err := s.Postgres.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("configuration: %w", err))
	}
	return s, errors.Join(errs...)
}

// declaration reads the model of dataset ds from the catalog of the
// settings (the built-in datasets and DATASETS_DIR), or, for experiments,
// from the dataset.yaml file given instead of the dataset's own, checked
// against the dataset's clean schema. It returns the model, the dataset's
// key, where it read the model and the clean columns that are lists
// (arrays of strings, text[] in the table).
func declaration(file, ds string, s trainSettings) (*model.Decl, string, string, map[string]bool, error) {
	cat, err := s.Schemas.Open()
	if err != nil {
		return nil, "", "", nil, err
	}
	d, err := cat.Dataset(ds)
	if err != nil {
		return nil, "", "", nil, err
	}
	decl := d.Decl
	if file != "" {
		text, err := os.ReadFile(file) // #nosec G304 -- --declaration, the operator's own file
		if err != nil {
			return nil, "", "", nil, err
		}
		if decl, err = schemas.ParseDeclaration(file, ds, text, d.Clean); err != nil {
			return nil, "", "", nil, err
		}
	}
	if decl.Model == nil {
		return nil, "", "", nil, fmt.Errorf("dataset %s declares no model (no model: section in %s)", ds, cmp.Or(decl.File, "its dataset.yaml"))
	}
	return model.DeclOf(decl.Model), d.Key, cmp.Or(decl.File, "the built-in declaration"), listColumns(d.Clean), nil
}

// listColumns are the fields of a clean schema that hold lists of
// strings: arrays of strings, or unions of null and one.
func listColumns(clean avro.Schema) map[string]bool {
	lists := map[string]bool{}
	rec, ok := clean.(*avro.RecordSchema)
	if !ok {
		return lists
	}
	for _, f := range rec.Fields() {
		types := schemas.NonNull(f.Type())
		if len(types) != 1 || types[0].Type() != avro.Array {
			continue
		}
		if items := schemas.NonNull(types[0].(*avro.ArraySchema).Items()); len(items) == 1 && items[0].Type() == avro.String {
			lists[f.Name()] = true
		}
	}
	return lists
}

// train is `scorer train`.
func train(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings, err := parseTrainSettings(environ)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var only string
	if len(settings.Datasets) == 1 {
		only = settings.Datasets[0]
	}
	dataset := fs.String("dataset", only, "the dataset whose declared model to train (default: the one dataset of DATASETS)")
	declFile := fs.String("declaration", "", "read the model from this dataset.yaml instead of the dataset's own (for experiments)")
	csvPath := fs.String("csv", "", "train on this CSV export of the dataset's table (with a header row) instead of DATABASE_URL")
	positive := fs.String("positive", "", "comma-separated label values of the positive class (default: the declaration's)")
	testShare := fs.Float64("test-share", 0, "share of rows held out for the test split (default: the declaration's, or 0.2)")
	seed := fs.Uint64("seed", 0, "seed of the split (default: the declaration's, or 1)")
	l2 := fs.Float64("l2", 0, "L2 penalty on the weights, scikit-learn's 1/C or Ridge's alpha (default: the declaration's, or 1)")
	classWeight := fs.String("class-weight", "", "none, or balanced to weigh both classes equally (logistic; default: the declaration's, or none)")
	threshold := fs.Float64("threshold", 0, "probability from which a row is predicted positive (default: the declaration's, or 0.5)")
	out := fs.String("out", settings.ModelDir, "directory of the model artefacts (SCORER_MODEL_DIR)")
	name := fs.String("name", "", "model name (default: the declaration's, or the dataset's)")
	export := fs.String("export-split", "", "also write the split's rows and feature vectors in this directory, for reference checks")
	fs.Usage = func() {
		fmt.Fprintln(stderr, trainUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("train: unexpected argument %q", fs.Arg(0))
	}
	if *dataset == "" {
		return fmt.Errorf("train: DATASETS=%s names several datasets: give --dataset", strings.Join(settings.Datasets, ","))
	}
	decl, key, from, lists, err := declaration(*declFile, *dataset, settings)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "positive":
			decl.Label.Positive = strings.Split(*positive, ",")
		case "test-share":
			decl.Train.TestShare = *testShare
		case "threshold":
			decl.Train.Threshold = *threshold
		case "name":
			decl.Name = *name
		case "seed":
			decl.Train.Seed = *seed
		case "l2":
			decl.Train.L2 = *l2
		case "class-weight":
			decl.Train.ClassWeight = *classWeight
		}
	})
	if err := decl.Check(); err != nil {
		return fmt.Errorf("train: %s model: %w", *dataset, err)
	}

	var records []model.Record
	source := *csvPath
	if source != "" {
		records, err = readCSV(source, decl, lists)
	} else {
		if settings.Postgres.URL == "" {
			return errors.New("train: set DATABASE_URL or give --csv")
		}
		source = "the " + *dataset + " table"
		records, err = readTable(ctx, settings, *dataset, key, decl)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stderr, "train: %d rows of %s from %s, model from %s\n", len(records), *dataset, source, from)

	bar := progress.New(stderr, nil, "train: newton steps", 0, time.Second)
	m, split, err := model.TrainModel(records, model.Config{
		Dataset: *dataset, Decl: decl,
		OnIteration: func(it int, _ float64) { bar.Set(int64(it), int64(it)) },
	})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	bar.Finish()
	path, err := m.Save(*out)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if *export != "" {
		if err := exportSplit(*export, decl.Columns(), lists, split); err != nil {
			return fmt.Errorf("train: export the split: %w", err)
		}
	}
	report(stdout, m, path)
	if len(settings.Kafka.Brokers) > 0 && settings.Registry.RegistryURL != "" {
		if err := publishTraining(ctx, settings, m); err != nil {
			fmt.Fprintf(stderr, "train: eco sample not published: %v\n", err)
		}
	}
	return nil
}

// publishTraining tells the eco meter what the training used: one sample
// of stage "train" with its Newton steps and their CPU seconds.
func publishTraining(ctx context.Context, s trainSettings, m *model.Model) error {
	reg, err := serde.NewRegistry(s.Registry)
	if err != nil {
		return err
	}
	publish, closePublisher, err := eco.NewPublisher(ctx, s.Kafka, reg, zap.NewNop())
	if err != nil {
		return err
	}
	defer closePublisher()
	r, err := eco.Read()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	iterations := int64(m.Training.Iterations)
	start := m.Created.Truncate(time.Microsecond)
	return publish(ctx, &schemas.EcoSample{
		RunID: s.RunID, Service: "scorer", Stage: "train", Dataset: &m.Dataset,
		Instance: fmt.Sprintf("%s:%d", host, os.Getpid()), WindowStart: start,
		WindowEnd: start.Add(time.Duration(m.Training.WallSeconds * float64(time.Second))).Truncate(time.Microsecond),
		WallS:     m.Training.WallSeconds, CPUS: m.Training.CPUSeconds,
		MemReservedBytes: r.MemReservedBytes, MemSource: r.MemSource, Vcpus: r.VCPUs,
		RecordsIn: int64(m.Training.Rows), TrainingIterations: &iterations, CPUSPerEpoch: m.Training.CPUSecondsPerEpoch,
		BytesIn: map[string]int64{}, BytesOut: map[string]int64{}, StoredBytes: map[string]int64{},
	})
}

func report(w io.Writer, m *model.Model, path string) {
	t := m.Test
	fmt.Fprintf(w, "model %s %s → %s\n", m.Name, m.Version, path)
	solved := fmt.Sprintf("%d Newton steps", m.Training.Iterations)
	if m.Kind == model.Ridge {
		solved = "solved in closed form"
	}
	fmt.Fprintf(w, "  %s regression of %s on %d %s rows (%d in the test split), %s, %.2f CPU s, %.2f s\n",
		m.Kind, m.Label.Column, m.Training.Rows, m.Dataset, t.Rows, solved, m.Training.CPUSeconds, m.Training.WallSeconds)
	if m.Kind == model.Ridge {
		fmt.Fprintf(w, "  test split: RMSE %.4f, MAE %.4f, R² %.4f\n", t.RMSE, t.MAE, t.R2)
	} else {
		fmt.Fprintf(w, "  test split at threshold %.2f: ROC-AUC %.4f, accuracy %.4f, precision %.4f, recall %.4f, F1 %.4f, log loss %.4f, Brier %.4f\n",
			t.Threshold, t.AUC, t.Accuracy, t.Precision, t.Recall, t.F1, t.LogLoss, t.Brier)
		c := t.Confusion
		fmt.Fprintf(w, "  confusion: %d true positives, %d false positives, %d true negatives, %d false negatives\n",
			c.TruePositives, c.FalsePositives, c.TrueNegatives, c.FalseNegatives)
	}
	fmt.Fprintf(w, "  top coefficients: %s\n", strings.Join(m.TopWeights(6), ", "))
}

// readTable reads the labelled rows of the dataset's table, whose key is
// key, through the shared PostgreSQL settings (readLabelled).
func readTable(ctx context.Context, s trainSettings, ds, key string, d *model.Decl) ([]model.Record, error) {
	pool, err := pg.Open(ctx, s.Postgres)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return readLabelled(ctx, pool, ds, key, d)
}

// querier runs a query: a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readLabelled reads the rows of the dataset's table whose label is set,
// in key order: the columns the declaration names.
func readLabelled(ctx context.Context, db querier, ds, key string, d *model.Decl) ([]model.Record, error) {
	cols := d.Columns()
	idents := make([]string, len(cols))
	for i, c := range cols {
		idents[i] = pgx.Identifier{c}.Sanitize()
	}
	query := fmt.Sprintf("select %s from %s where %s is not null order by %s",
		strings.Join(idents, ", "), pgx.Identifier{ds}.Sanitize(), idents[0], pgx.Identifier{key}.Sanitize())
	rows, err := db.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ds, err)
	}
	defer rows.Close()
	var out []model.Record
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ds, err)
		}
		r := make(model.Map, len(cols))
		for i, v := range values {
			if n, ok := v.(pgtype.Numeric); ok {
				f, err := n.Float64Value()
				if err != nil {
					return nil, fmt.Errorf("read %s: column %s: %w", ds, cols[i], err)
				}
				v = nil
				if f.Valid {
					v = f.Float64
				}
			}
			r[cols[i]] = v
		}
		out = append(out, r)
	}
	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ds, err)
	}
	return out, nil
}

// readCSV reads rows from a CSV export of a dataset's table: a header row
// naming at least the label and feature columns; the other columns are
// ignored, empty cells are missing, and each declared cell must read as
// its feature's kind asks (a number, a date, a boolean). A cell of a list
// column (lists, the clean schema's arrays of strings) is written as
// PostgreSQL writes a text[] ({DE,EU}, {"New York",US}, {} for none) and
// read as the list of its items.
func readCSV(path string, d *model.Decl, lists map[string]bool) ([]model.Record, error) {
	f, err := os.Open(path) // #nosec G304 -- --csv, the operator's own file
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	if _, ok := col[d.Label.Column]; !ok {
		return nil, fmt.Errorf("%s: no %s column (header %v)", path, d.Label.Column, header)
	}
	var missing []string
	for _, c := range d.Columns() {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: no column %s for the declared features (header %v)", path, strings.Join(missing, ", "), header)
	}
	checks := map[string]func(string) bool{}
	for _, f := range d.Features {
		checks[f.Column] = readable(f)
	}
	if d.Kind == model.Ridge {
		checks[d.Label.Column] = func(s string) bool { _, ok := model.Number(s); return ok }
	}
	var out []model.Record
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		row := model.Map{}
		var errs []error
		for _, c := range d.Columns() {
			i := col[c]
			if i >= len(rec) || rec[i] == "" {
				continue
			}
			if lists[c] {
				items, err := parseTextArray(rec[i])
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %q: %w", c, rec[i], err))
				}
				row[c] = items
				continue
			}
			if ok := checks[c]; ok != nil && !ok(rec[i]) {
				errs = append(errs, fmt.Errorf("%s %q does not read as its feature asks", c, rec[i]))
			}
			row[c] = rec[i]
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		out = append(out, row)
	}
}

// readable says whether a CSV cell reads as feature f needs it.
func readable(f model.FeatureDecl) func(string) bool {
	switch {
	case f.Kind == model.KindNumeric && f.Transform == model.DaysSince:
		return func(s string) bool { _, ok := model.Date(s); return ok }
	case f.Kind == model.KindNumeric:
		return func(s string) bool { _, ok := model.Number(s); return ok }
	case f.Kind == model.KindBoolean:
		return func(s string) bool { _, ok := model.Bool(s); return ok }
	}
	return nil
}

// exportSplit writes the rows of both splits, their declared columns as
// text (train.csv, test.csv; a list column, one of lists, as PostgreSQL
// writes a text[], which readCSV reads back), and their feature vectors
// and labels (train_features.csv, test_features.csv).
func exportSplit(dir string, columns []string, lists map[string]bool, s *model.Split) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	type part struct {
		rows []model.Record
		x    *model.Matrix
		y    []float64
	}
	for name, p := range map[string]part{"train": {s.TrainRows, s.TrainX, s.TrainY}, "test": {s.TestRows, s.TestX, s.TestY}} {
		err := writeCSV(filepath.Join(dir, name+".csv"), columns, len(p.rows), func(i int, row []string) {
			for j, c := range columns {
				if v := p.rows[i].Value(c); lists[c] {
					row[j] = formatTextArray(v)
				} else {
					row[j], _ = model.Text(v)
				}
			}
		})
		if err != nil {
			return err
		}
		err = writeCSV(filepath.Join(dir, name+"_features.csv"), append(slices.Clone(s.Features), "label"), p.x.Rows, func(i int, row []string) {
			for j, v := range p.x.Row(i) {
				row[j] = strconv.FormatFloat(v, 'g', -1, 64)
			}
			row[len(row)-1] = strconv.FormatFloat(p.y[i], 'g', -1, 64)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// writeCSV writes a header and n rows, each filled by fill.
func writeCSV(path string, header []string, n int, fill func(i int, row []string)) error {
	f, err := os.Create(path) // #nosec G304 -- a file in --export-split, the operator's own directory
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(header)
	row := make([]string, len(header))
	for i := range n {
		fill(i, row)
		_ = w.Write(row)
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}
