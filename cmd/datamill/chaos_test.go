package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/testkit"
)

// TestChaosLosesNothing runs `datamill chaos` small: services killed with
// SIGKILL one after another and PostgreSQL restarted while users flow, and
// the outcome identical to an undisturbed run. On the real-broker tier it
// runs on that broker, which it restarts once too, with broker.sh (the
// broker of make test-real).
func TestChaosLosesNothing(t *testing.T) {
	args := []string{"chaos", "--events", "4000", "--kills", "6", "--every", "700ms", "--json"}
	env := toolchainEnv()
	brokerRestarts := 0
	if testkit.RealBroker() {
		script, err := filepath.Abs("../../scripts/kafka/broker.sh")
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--reset", "--restart-broker", script+" restart")
		env = append(env, testkit.KafkaEnv(testkit.Kafka(t))...)
		brokerRestarts = 1
	}
	// The lake outlives the chaos stacks, so that DuckDB reads it after
	// them: MinIO on the real tier (make test-real sets S3_*), else an
	// embedded S3 of the test's own.
	s3env := startS3OrOutside(t)
	env = append(env, s3env...)
	var out, errs bytes.Buffer
	if err := run(t.Context(), args, env, &out, &errs); err != nil {
		t.Fatalf("chaos: %v\n%s\n%s", err, out.String(), errs.String())
	}
	t.Log(errs.String())
	var r chaosReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("chaos --json: %v\n%s", err, out.String())
	}
	kills, pgRestarts, restarts := 0, 0, 0
	for _, f := range r.Faults {
		switch {
		case strings.HasPrefix(f.What, "kill -9 "):
			kills++
		case f.What == "restart PostgreSQL":
			pgRestarts++
		case f.What == "restart the Kafka broker":
			restarts++
		}
	}
	if kills != 6 || pgRestarts != 1 || restarts != brokerRestarts {
		t.Errorf("faults %+v: want 6 kills, 1 PostgreSQL restart and %d broker restarts", r.Faults, brokerRestarts)
	}
	ref := r.Reference
	if ref.Raw < 4000 || ref.Clean == 0 || ref.DLQ == 0 || ref.Persisted == 0 || ref.Scored != ref.Persisted {
		t.Errorf("undisturbed run %s: want every stage to have done work, dirty records dead-lettered", ref)
	}
	if len(r.Problems) > 0 {
		t.Errorf("problems: %v", r.Problems)
	}
	// The lake sink, killed among the others, archived every raw event
	// exactly once in both runs.
	for name, o := range map[string]chaosOutcome{"undisturbed": r.Reference, "under faults": r.Chaos} {
		if l := o.Lake; l.Objects == 0 || l.Records != o.Raw || l.ArchivedEvents != o.Raw || l.Rows != o.Raw ||
			l.Missing+l.Doubled+l.Strays != 0 || len(l.Problems) != 0 {
			t.Errorf("lake %s: %s, problems %v; want the %d raw records each in one row", name, l, l.Problems, o.Raw)
		}
	}
	if !slices.ContainsFunc(r.Faults, func(f chaosFault) bool { return f.What == "kill -9 lake" }) {
		t.Errorf("faults %+v: the lake sink was never killed", r.Faults)
	}
	// And DuckDB, reading each run's lake as an analyst would, counts
	// every raw event once: as many rows as raw records, as many distinct
	// event ids, and no partition offset twice.
	for name, o := range map[string]chaosOutcome{"undisturbed": r.Reference, "under faults": r.Chaos} {
		eps := config.ToMap(s3env)
		eps["S3_PREFIX"] = o.Lake.Prefix
		q := queryLake(t.Context(), t, eps, "users")
		offsets := 0
		for _, p := range q.Partitions {
			offsets += len(slices.Compact(slices.Sorted(slices.Values(p.Offsets))))
		}
		if q.Records != o.Raw || q.DistinctEventIDs != o.Raw || offsets != o.Raw {
			t.Errorf("DuckDB on the lake %s (%s): %d rows, %d distinct event ids, %d distinct offsets; want the %d raw records once each",
				name, o.Lake.Prefix, q.Records, q.DistinctEventIDs, offsets, o.Raw)
		}
	}
}

// startS3OrOutside is the S3_* variables of the S3 of make test-real
// (MinIO) when the environment names one, else of an embedded S3 started
// for the test.
func startS3OrOutside(t testing.TB) []string {
	t.Helper()
	if os.Getenv("S3_ENDPOINT") == "" {
		return startS3(t)
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "S3_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestReconcileFindsWhatFaultsBroke checks that each kind of damage a
// fault could do is reported.
func TestReconcileFindsWhatFaultsBroke(t *testing.T) {
	ref := chaosOutcome{
		Raw: 10, Clean: 8, DLQ: 2, Persisted: 3, Scored: 3, PersistedEvents: 3, ScoredEvents: 3,
		TableRows: 2, DistinctValidIDs: 2, TableDigest: "d", Predictions: 3,
		DeadLetters: map[string]int{"cleaner: age": 2},
		predictions: map[string]string{"a": "1", "b": "2", "c": "3"},
		persisted:   map[string]string{"a": "1", "b": "2", "c": "3"},
	}
	clone := func() chaosOutcome {
		o := ref
		o.DeadLetters = map[string]int{"cleaner: age": 2}
		o.predictions = map[string]string{"a": "1", "b": "2", "c": "3"}
		o.persisted = map[string]string{"a": "1", "b": "2", "c": "3"}
		return o
	}
	if p := reconcile("users", ref, clone()); len(p) != 0 {
		t.Fatalf("identical runs: %v", p)
	}
	for name, c := range map[string]struct {
		damage func(*chaosOutcome)
		want   string
	}{
		"raw record lost":          {func(o *chaosOutcome) { o.Raw-- }, "raw.users records"},
		"raw record doubled":       {func(o *chaosOutcome) { o.Raw++ }, "raw.users records"},
		"dead letter by reason":    {func(o *chaosOutcome) { o.DeadLetters["loader: database"] = 1 }, "dead letters by stage and reason"},
		"persisted twice":          {func(o *chaosOutcome) { o.Persisted++ }, "published twice"},
		"scored twice":             {func(o *chaosOutcome) { o.Scored++ }, "scored.users holds"},
		"table differs":            {func(o *chaosOutcome) { o.TableDigest = "e" }, "users table differs"},
		"table row missing":        {func(o *chaosOutcome) { o.TableRows-- }, "users rows"},
		"scored under another key": {func(o *chaosOutcome) { o.MisKeyed = 1 }, "carry another key"},
		"prediction changed":       {func(o *chaosOutcome) { o.predictions["b"] = "9" }, "predictions differ"},
		"lake doubled an event":    {func(o *chaosOutcome) { o.Lake.Problems = []string{"1 records of raw.users are in more than one row"} }, "the lake under faults: 1 records"},
		"prediction missing": {func(o *chaosOutcome) {
			delete(o.predictions, "c")
			o.Predictions--
		}, "persisted events have none"},
	} {
		o := clone()
		c.damage(&o)
		problems := strings.Join(reconcile("users", ref, o), "; ")
		if !strings.Contains(problems, c.want) {
			t.Errorf("%s: problems %q, want one about %q", name, problems, c.want)
		}
	}
}
