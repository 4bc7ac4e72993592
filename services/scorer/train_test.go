package main

import (
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// usersCSV writes n users in the users table's columns whose churn follows
// inactivity, as an export of the table would.
func usersCSV(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"id", "age", "gender", "country", "city", "signup_date", "last_login", "account_status", "monthly_spend"})
	rng := rand.New(rand.NewPCG(4, 2))
	ref := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	for i := range n {
		inactive := rng.IntN(300)
		status := "active"
		if rng.Float64() < float64(inactive)/300 {
			status = "churned"
		}
		age := fmt.Sprint(18 + rng.IntN(60))
		if i%17 == 0 {
			age = "" // missing
		}
		_ = w.Write([]string{
			fmt.Sprint(i), age, []string{"female", "male"}[i%2], []string{"FR", "DE"}[i%2], "",
			ref.AddDate(0, 0, -inactive-rng.IntN(500)).Format(time.DateOnly), ref.AddDate(0, 0, -inactive).Format(time.DateOnly),
			status, fmt.Sprintf("%.2f", rng.Float64()*100),
		})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTrainFromCSVWritesTheArtefactAndTheSplit(t *testing.T) {
	models, split := t.TempDir(), t.TempDir()
	var out strings.Builder
	err := run(t.Context(), []string{"scorer", "train", "--csv", usersCSV(t, 2000), "--out", models, "--export-split", split, "--seed", "3"}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	path, err := model.Latest(models, "churn")
	if err != nil || path == "" {
		t.Fatalf("no artefact in %s (%v)", models, err)
	}
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Training.Rows != 2000 || m.Test.Rows != 400 || m.Test.AUC < 0.65 || m.Training.Seed != 3 {
		t.Errorf("artefact: training %+v, test %+v", m.Training, m.Test)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("ROC-AUC %.4f", m.Test.AUC)) || !strings.Contains(out.String(), "top coefficients: days_since_login") {
		t.Errorf("report:\n%s", out.String())
	}
	for name, rows := range map[string]int{"train": 1600, "test": 400} {
		recs := readAll(t, filepath.Join(split, name+"_features.csv"))
		if len(recs) != rows+1 || recs[0][len(recs[0])-1] != "label" || len(recs[0]) != len(m.Features)+1 {
			t.Errorf("%s features: %d rows, header %v", name, len(recs), recs[0])
		}
		recs = readAll(t, filepath.Join(split, name+".csv"))
		want := []string{"account_status", "age", "signup_date", "last_login", "monthly_spend", "gender", "country"}
		if len(recs) != rows+1 || !slices.Equal(recs[0], want) {
			t.Errorf("%s rows: %d rows, header %v, want the declared columns %v", name, len(recs), recs[0], want)
		}
	}
}

func readAll(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestTrainFromTheUsersTable(t *testing.T) {
	url := testkit.Postgres(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	// The columns of the loader's users table that training reads.
	if _, err := conn.Exec(t.Context(), `create table users (id bigint primary key, age integer, gender text, country text,
		signup_date date, last_login date, account_status text, monthly_spend numeric(12, 2))`); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(usersCSV(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1:] {
		if _, err := conn.Exec(t.Context(), `insert into users values ($1, nullif($2, '')::integer, $3, $4, $5, $6, $7, $8)`,
			r[0], r[1], r[2], r[3], r[5], r[6], r[7], r[8]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(t.Context(), `insert into users (id) values (-1)`); err != nil { // unlabelled: left out
		t.Fatal(err)
	}
	models := t.TempDir()
	var out strings.Builder
	if err := run(t.Context(), []string{"scorer", "train", "--out", models}, []string{"DATABASE_URL=" + url}, &out); err != nil {
		t.Fatal(err)
	}
	path, _ := model.Latest(models, "churn")
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Training.Rows != 1000 {
		t.Errorf("trained on %d users, want the 1000 labelled ones", m.Training.Rows)
	}
}

func TestTrainErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("id,age\n1,30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noModel := jobsDataset(t)
	if err := os.WriteFile(filepath.Join(noModel, "jobs", "dataset.yaml"), []byte("description: Job offers, no model.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  []string
		want string
	}{
		"no source":    {nil, nil, "DATABASE_URL or give --csv"},
		"no label":     {[]string{"--csv", bad}, nil, "no account_status column"},
		"bad weight":   {[]string{"--csv", usersCSV(t, 100), "--class-weight", "heavy"}, nil, `class_weight "heavy"`},
		"bad argument": {[]string{"extra"}, nil, `unexpected argument "extra"`},
		"bad sasl":     {[]string{"--csv", usersCSV(t, 100)}, []string{"KAFKA_BROKERS=127.0.0.1:1", "KAFKA_SASL_MECHANISM=NOPE"}, `KAFKA_SASL_MECHANISM "NOPE"`},
		"unknown":      {[]string{"--dataset", "orders", "--csv", usersCSV(t, 100)}, nil, `unknown dataset "orders"`},
		"no model":     {[]string{"--dataset", "jobs", "--csv", usersCSV(t, 100)}, []string{"DATASETS_DIR=" + noModel}, "dataset jobs declares no model"},
		"two datasets": {[]string{"--csv", usersCSV(t, 100)}, []string{"DATASETS=users,jobs"}, "give --dataset"},
		"bad override": {[]string{"--csv", usersCSV(t, 100), "--threshold", "2"}, nil, "threshold 2"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(t.Context(), append([]string{"scorer", "train", "--out", t.TempDir()}, tc.args...), tc.env, &strings.Builder{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// With Kafka and the registry at hand, training tells the eco meter what
// it used: one sample of stage train with its Newton steps.
func TestTrainPublishesItsEcoSample(t *testing.T) {
	kcfg, registry := testkit.Kafka(t), testkit.Registry(t)
	env := append(testkit.As(testkit.KafkaEnv(kcfg), "scorer"), "SCHEMA_REGISTRY_URL="+registry, "RUN_ID=r7")
	models := t.TempDir()
	if err := run(t.Context(), []string{"scorer", "train", "--csv", usersCSV(t, 500), "--out", models}, env, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	path, _ := model.Latest(models, "churn")
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[schemas.EcoSample](t.Context(), reg, kafka.EcoSamples, schemas.MustSchema("ecosample"))
	if err != nil {
		t.Fatal(err)
	}
	recs := testkit.Consume(t, kcfg, kafka.EcoSamples, 1)
	var s schemas.EcoSample
	if err := codec.Decode(recs[0].Value, &s); err != nil {
		t.Fatal(err)
	}
	if s.Stage != "train" || s.RunID != "r7" || s.TrainingIterations == nil || *s.TrainingIterations != int64(m.Training.Iterations) ||
		len(s.CPUSPerEpoch) != m.Training.Iterations || s.RecordsIn != 500 || s.CPUS != m.Training.CPUSeconds {
		t.Errorf("training sample %+v, artefact %+v", s, m.Training)
	}
}
