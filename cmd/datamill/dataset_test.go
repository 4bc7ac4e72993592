package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// generated returns the built-in dataset the generator writes.
func generated(t testing.TB) *schemas.Dataset {
	t.Helper()
	ds, err := schemas.BuiltIn().Dataset(gen.Dataset)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// datasetsDir is the test's DATASETS_DIR, which declares orders.
func datasetsDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "datasets"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The commands that run generated records refuse, before starting
// anything, a dataset nobody declared and a declared one without a
// generator, each with a message that says which.
func TestCommandsRefuseADatasetTheyCannotRun(t *testing.T) {
	env := []string{"DATASETS_DIR=" + datasetsDir(t)}
	tests := map[string]struct {
		args []string
		want []string
	}{
		"chaos, unknown":        {[]string{"chaos", "--dataset", "nope"}, []string{"chaos: --dataset", `unknown dataset "nope"`, "orders, users"}},
		"chaos, no generator":   {[]string{"chaos", "--dataset", "orders"}, []string{"chaos: --dataset", `no generator for dataset "orders"`, "only users, jobs have one"}},
		"bench, unknown":        {[]string{"bench", "--dataset", "nope"}, []string{"bench: --dataset", `unknown dataset "nope"`}},
		"bench, no generator":   {[]string{"bench", "--dataset", "orders"}, []string{"bench: --dataset", `no generator for dataset "orders"`}},
		"demo, unknown":         {[]string{"demo", "--dataset", "nope"}, []string{"demo: --dataset", `unknown dataset "nope"`}},
		"demo, no generator":    {[]string{"demo", "--dataset", "orders"}, []string{"demo: --dataset", `no generator for dataset "orders"`, "datamill produce orders"}},
		"gen, unknown":          {[]string{"gen", "nope"}, []string{"gen: ", `unknown dataset "nope"`}},
		"gen, no generator":     {[]string{"gen", "orders"}, []string{"gen: ", `no generator for dataset "orders"`, "only users, jobs have one"}},
		"tail, unknown":         {[]string{"tail", "clean", "--dataset", "nope"}, []string{"tail: --dataset", `unknown dataset "nope"`}},
		"tail, topic and a set": {[]string{"tail", "clean.orders", "--dataset", "orders"}, []string{"--dataset orders goes with a step", "not with the topic clean.orders"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			err := run(t.Context(), tc.args, env, &out, &out)
			if err == nil || errors.Is(err, errUsage) {
				t.Fatalf("datamill %v = %v, want an error saying why:\n%s", tc.args, err, out.String())
			}
			wantAll(t, fmt.Sprintf("the error of datamill %v", tc.args), err.Error(), tc.want...)
		})
	}
}

// tail reads the topic of a step of a dataset of DATASETS_DIR, decoded
// through the registry.
func TestTailReadsAStepOfADatasetOfDatasetsDir(t *testing.T) {
	s := newProduceStack(t)
	cl, err := kafka.NewClient(s.kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, s.kcfg, "raw.orders"); err != nil {
		t.Fatal(err)
	}
	env := append([]string{"DATASETS_DIR=" + datasetsDir(t)}, s.env...)
	file := writeInput(t, "orders.csv", "order_no,amount,channel,ordered_on,gift,note,returned\n1,19.99,web,2024-03-01,true,blue,n\n2,5.00,store,2024-03-02,false,,y\n")
	var out strings.Builder
	if err := run(t.Context(), []string{"produce", "orders", file}, env, &out, &out); err != nil {
		t.Fatalf("produce orders: %v: %s", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"tail", "raw", "--dataset", "orders", "--from-beginning", "--max", "2", "--idle", "20s"}, env, &out, &out); err != nil {
		t.Fatalf("tail raw --dataset orders: %v: %s", err, out.String())
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var line struct {
			Topic string
			Value map[string]any
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("tail printed a line that is not JSON: %q", sc.Text())
		}
		got = append(got, fmt.Sprintf("%s %v %v", line.Topic, line.Value["order_no"], line.Value["channel"]))
	}
	slices.Sort(got)
	if want := []string{"raw.orders 1 web", "raw.orders 2 store"}; !slices.Equal(got, want) {
		t.Errorf("tail raw --dataset orders printed %q, want %q:\n%s", got, want, out.String())
	}
}

// The reset deletes the pipeline topics of the datasets it is given, a
// dataset of DATASETS_DIR as well as a built-in one, the stages' state
// topics and datamill's groups, and leaves other datasets' topics.
func TestResetDeletesTheGivenDatasetsPipeline(t *testing.T) {
	k := testkit.KafkaCluster(t) // never a shared broker: the reset deletes every group of datamill's
	kcfg := k.ClientConfig(kafka.Admin)
	kcfg.Partitions = 1
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	topics := append(kafka.PipelineTopics("orders", "users"), kafka.StateTopic("cleaner", "orders"))
	if err := kafka.EnsureTopics(ctx, cl, kcfg, topics...); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	group := stage.Group("cleaner", "orders")
	offsets := kadm.Offsets{}
	offsets.AddOffset(kafka.Topic(kafka.Raw, "orders"), 0, 0, -1)
	if _, err := adm.CommitOffsets(ctx, group, offsets); err != nil {
		t.Fatal(err)
	}
	resetCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := resetPipeline(resetCtx, k.ClientConfig(kafka.Admin), "orders"); err != nil {
		t.Fatal(err)
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := listed.Names()
	slices.Sort(left)
	if want := []string{"clean.users", "dlq.users", "persisted.users", "raw.users", "scored.users"}; !slices.Equal(left, want) {
		t.Errorf("topics after the reset of orders: %v, want the users pipeline's only", left)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(groups.Groups(), group) {
		t.Errorf("groups after the reset: %v, want no %s", groups.Groups(), group)
	}
}

// The table digest covers every column of the dataset's table but the
// clocks: for users, the columns the hand-written digest named before.
func TestTableDigestQueryCoversEveryColumnButTheClocks(t *testing.T) {
	cat, err := schemas.Open(datasetsDir(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"users": `row("id", "age", "gender", "country", "city", "email", "signup_date", "last_login", "account_status", ` +
			`"monthly_spend", "quality_flags", "event_id", "source", "content_hash", created_event_id)::text, E'\n' order by "id"), '')) from "users"`,
		"orders": `row("order_no", "amount", "channel", "ordered_on", "gift", "note", "returned", "quality_flags", "event_id", ` +
			`"source", "content_hash", created_event_id)::text, E'\n' order by "order_no"), '')) from "orders"`,
	}
	for name, want := range tests {
		ds, err := cat.Dataset(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tableDigestQuery(ds)
		if err != nil || !strings.HasSuffix(got, want) {
			t.Errorf("tableDigestQuery(%s) = %q, %v; want it to end with %q", name, got, err, want)
		}
	}
}

// The predictions read for comparison are every column but those the
// database fills in, keyed by event id, from the dataset's predictions
// table.
func TestReadPredictionsLeavesOutWhatTheDatabaseFillsIn(t *testing.T) {
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `
create table orders_predictions (
    id            bigint generated always as identity primary key,
    order_no      bigint not null,
    prediction    integer not null,
    probability   double precision not null,
    model_version text not null,
    event_id      text not null unique,
    created_at    timestamptz not null default now()
);
insert into orders_predictions (order_no, prediction, probability, model_version, event_id)
values (7, 1, 0.75, 'm1', 'e7'), (8, 0, 0.125, 'm1', 'e8')`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readPredictions(ctx, conn, "orders")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"e7": "(7,1,0.75,m1,e7)", "e8": "(8,0,0.125,m1,e8)"}
	if !maps.Equal(got, want) {
		t.Errorf("readPredictions(orders) = %v, want %v", got, want)
	}
	if _, err := readPredictions(ctx, conn, "users"); err == nil || !strings.Contains(err.Error(), "predictions") {
		t.Errorf("readPredictions(users) without its table = %v, want an error naming the predictions table", err)
	}
}

// The stack of a command that runs one dataset creates that dataset's
// topics and gives its services that dataset, whatever DATASETS says.
func TestCommandStackRunsTheDatasetItIsGiven(t *testing.T) {
	d := commandStack(devFlags{}, io.Discard, "run", []string{"DATASETS=users", "PATH=/bin"}, []string{"DATASETS=orders"})
	got, err := servicesDatasets(d.env)
	if err != nil || !slices.Equal(got, []string{"orders"}) {
		t.Errorf("the stack's datasets = %v, %v; want [orders]", got, err)
	}
	if !slices.Contains(d.environ, "DATASETS=orders") || slices.Contains(d.environ, "DATASETS=users") {
		t.Errorf("the services' environment %v: want DATASETS=orders only", d.environ)
	}
	got, err = servicesDatasets(map[string]string{})
	if err != nil || !slices.Equal(got, []string{"users"}) {
		t.Errorf("without DATASETS: %v, %v; want the services' default, [users]", got, err)
	}
}

// bench and chaos, which run generated records through the pipeline, still
// refuse jobs: its generator writes offers, not users.
func TestPipelineCommandsRefuseGeneratedJobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dataset.yaml", "raw.avsc", "clean.avsc"} {
		b, err := os.ReadFile(filepath.Join(datasetsDir(t), "orders", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), bytes.ReplaceAll(b, []byte("orders"), []byte("jobs")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"DATASETS_DIR=" + filepath.Dir(dir)}
	for _, cmd := range []string{"chaos", "bench"} { // demo runs jobs from a local board
		err := run(t.Context(), []string{cmd, "--dataset", "jobs"}, env, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "generated jobs records cannot run through the pipeline yet") {
			t.Errorf("datamill %s --dataset jobs = %v, want a refusal", cmd, err)
		}
	}
}
