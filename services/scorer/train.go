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
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/progress"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

const trainUsage = `usage: scorer train [flags]

Trains the churn model on labelled users — the users table of DATABASE_URL,
or a CSV export of it (--csv) — with a stratified train/test split, evaluates
it on the test split and writes the artefact <out>/<name>-<version>.json.

flags:`

// train is `scorer train`.
func train(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := config.ToMap(environ)
	csvPath := fs.String("csv", "", "train on this CSV export of the users table (with a header row) instead of DATABASE_URL")
	churned := fs.String("churned", "churned", "comma-separated account statuses that mean churned")
	testShare := fs.Float64("test-share", 0.2, "share of users held out for the test split")
	seed := fs.Uint64("seed", 1, "seed of the split")
	l2 := fs.Float64("l2", 1, "L2 penalty on the weights (scikit-learn's 1/C)")
	classWeight := fs.String("class-weight", "none", "none, or balanced to weigh both classes equally")
	threshold := fs.Float64("threshold", 0.5, "probability from which a user is predicted to churn")
	out := fs.String("out", cmp.Or(env["SCORER_MODEL_DIR"], "models"), "directory of the model artefacts (SCORER_MODEL_DIR)")
	name := fs.String("name", "churn", "model name")
	export := fs.String("export-split", "", "also write the split's feature vectors to train.csv and test.csv in this directory, for reference checks")
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

	var examples []model.Example
	var err error
	source := *csvPath
	if source != "" {
		examples, err = readCSV(source)
	} else {
		url := env["DATABASE_URL"]
		if url == "" {
			return errors.New("train: set DATABASE_URL or give --csv")
		}
		source = "the users table"
		examples, err = readTable(ctx, url)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stderr, "train: %d labelled users from %s\n", len(examples), source)

	bar := progress.New(stderr, nil, "train: newton steps", 0, time.Second)
	cfg := model.Config{
		Name: *name, Churned: strings.Split(*churned, ","), TestShare: *testShare, Seed: *seed, L2: *l2,
		ClassWeight: *classWeight, Threshold: *threshold,
		OnIteration: func(it int, _ float64) { bar.Set(int64(it), int64(it)) },
	}
	m, split, err := model.TrainModel(examples, cfg)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	bar.Finish()
	path, err := m.Save(*out)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if *export != "" {
		if err := exportSplit(*export, split); err != nil {
			return fmt.Errorf("train: export the split: %w", err)
		}
	}
	report(stdout, m, path)
	if env["KAFKA_BROKERS"] != "" && env["SCHEMA_REGISTRY_URL"] != "" {
		if err := publishTraining(ctx, env, m); err != nil {
			fmt.Fprintf(stderr, "train: eco sample not published: %v\n", err)
		}
	}
	return nil
}

// publishTraining tells the eco meter what the training used: one sample
// of stage "train" with its Newton steps and their CPU seconds.
func publishTraining(ctx context.Context, env map[string]string, m *model.Model) error {
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: env["SCHEMA_REGISTRY_URL"]})
	if err != nil {
		return err
	}
	publish, closePublisher, err := eco.NewPublisher(ctx, kafka.Config{Brokers: strings.Split(env["KAFKA_BROKERS"], ","), Partitions: 1, ReplicationFactor: -1}, reg, zap.NewNop())
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
		RunID: cmp.Or(env["RUN_ID"], "default"), Service: "scorer", Stage: "train", Dataset: &m.Dataset,
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
	fmt.Fprintf(w, "  trained on %d users (%d in the test split), %d Newton steps, %.2f CPU s, %.2f s\n",
		m.Training.Rows, t.Rows, m.Training.Iterations, m.Training.CPUSeconds, m.Training.WallSeconds)
	fmt.Fprintf(w, "  test split at threshold %.2f: ROC-AUC %.4f, accuracy %.4f, precision %.4f, recall %.4f, F1 %.4f, log loss %.4f, Brier %.4f\n",
		t.Threshold, t.AUC, t.Accuracy, t.Precision, t.Recall, t.F1, t.LogLoss, t.Brier)
	c := t.Confusion
	fmt.Fprintf(w, "  confusion: %d true positives, %d false positives, %d true negatives, %d false negatives\n",
		c.TruePositives, c.FalsePositives, c.TrueNegatives, c.FalseNegatives)
	fmt.Fprintf(w, "  top coefficients: %s\n", strings.Join(m.TopWeights(6), ", "))
}

// The users table's columns the model reads.
const trainColumns = "age, gender, country, signup_date, last_login, monthly_spend::float8, account_status"

// readTable reads the labelled users of the users table, by id.
func readTable(ctx context.Context, url string) ([]model.Example, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "select "+trainColumns+" from users where account_status is not null order by id")
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	var out []model.Example
	var age *int32
	var e model.Example
	_, err = pgx.ForEachRow(rows, []any{&age, &e.User.Gender, &e.User.Country, &e.User.SignupDate, &e.User.LastLogin, &e.User.MonthlySpend, &e.Status}, func() error {
		u := e
		if age != nil {
			u.User.Age = new(float64(*age))
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return out, nil
}

// readCSV reads labelled users from a CSV export of the users table: a
// header row naming at least account_status; columns the model does not
// use are ignored, empty cells are missing.
func readCSV(path string) ([]model.Example, error) {
	f, err := os.Open(path)
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
	if _, ok := col["account_status"]; !ok {
		return nil, fmt.Errorf("%s: no account_status column (header %v)", path, header)
	}
	var out []model.Example
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		cell := func(name string) *string {
			i, ok := col[name]
			if !ok || i >= len(rec) || rec[i] == "" {
				return nil
			}
			return &rec[i]
		}
		status := cell("account_status")
		if status == nil {
			continue
		}
		e := model.Example{Status: *status, User: model.User{Gender: cell("gender"), Country: cell("country")}}
		var errs []error
		e.User.Age, err = number(cell("age"))
		errs = append(errs, err)
		e.User.MonthlySpend, err = number(cell("monthly_spend"))
		errs = append(errs, err)
		e.User.SignupDate, err = day(cell("signup_date"))
		errs = append(errs, err)
		e.User.LastLogin, err = day(cell("last_login"))
		errs = append(errs, err)
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		out = append(out, e)
	}
}

func number(s *string) (*float64, error) {
	if s == nil {
		return nil, nil
	}
	v, err := strconv.ParseFloat(*s, 64)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func day(s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := time.Parse(time.DateOnly, *s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// exportSplit writes the feature vectors and labels of both splits.
func exportSplit(dir string, s *model.Split) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, part := range map[string]struct {
		x *model.Matrix
		y []float64
	}{"train.csv": {s.TrainX, s.TrainY}, "test.csv": {s.TestX, s.TestY}} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := csv.NewWriter(f)
		_ = w.Write(append(append([]string{}, s.Features...), "label"))
		row := make([]string, s.TrainX.Cols+1)
		for i := range part.x.Rows {
			for j, v := range part.x.Row(i) {
				row[j] = strconv.FormatFloat(v, 'g', -1, 64)
			}
			row[len(row)-1] = strconv.FormatFloat(part.y[i], 'g', -1, 64)
			_ = w.Write(row)
		}
		w.Flush()
		if err := errors.Join(w.Error(), f.Close()); err != nil {
			return err
		}
	}
	return nil
}
