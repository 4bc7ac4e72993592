package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// withDatabase is env with DATABASE_URL set to url and, when owner is
// not empty, DATABASE_OWNER_URL to owner.
func withDatabase(env []string, url, owner string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "DATABASE_") })
	out = append(out, "DATABASE_URL="+url)
	if owner != "" {
		out = append(out, "DATABASE_OWNER_URL="+owner)
	}
	return out
}

// query runs sql as url's role and returns its rows as text, or its error.
func queryAs(t *testing.T, url, sql string) ([]string, error) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	rows, err := conn.Query(t.Context(), sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		vals, err := r.Values()
		return strings.TrimSpace(fmt.Sprintln(vals...)), err
	})
}

// The loader runs as its own role, its schema changed by the migration
// owner: its records land, each batch has its audit rows, and its role
// cannot delete or truncate what it loaded. Restarted without the owner's
// URL, it starts when nothing is missing and stops, naming what is and
// `loader migrate`, when a dataset's table is missing.
func TestLoadsAsItsOwnRoleAndAuditsEveryBatch(t *testing.T) {
	if testkit.RealBroker() {
		t.Fatal("this test uses the fixed topic names of the users dataset: run it on the embedded broker")
	}
	env := testkit.Stack(t, true)
	m := config.ToMap(env)
	superuser := m["DATABASE_URL"]
	roles := testkit.Roles(t, superuser)
	ctx := t.Context()
	kcfg := testkit.KafkaConfig(t, m, 3)
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, kcfg, kafka.PipelineTopics("users")...); err != nil {
		t.Fatal(err)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: m["SCHEMA_REGISTRY_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[users.Clean](ctx, reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	// What the audit must say: per partition, the records and the first
	// and last offsets.
	want := map[int32][3]int64{}
	for id := range int64(n) {
		in := clean(id+1, 1, 30, "FR")
		b, err := codec.Encode(&in)
		if err != nil {
			t.Fatal(err)
		}
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: "clean.users", Key: fmt.Appendf(nil, "%d", in.ID), Value: b}).First()
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[r.Partition]
		if !ok {
			w = [3]int64{0, r.Offset, r.Offset}
		}
		want[r.Partition] = [3]int64{w[0] + 1, min(w[1], r.Offset), max(w[2], r.Offset)}
	}

	asLoader := withDatabase(testkit.As(env, "loader"), roles[pg.RoleLoader], roles[pg.RoleOwner])
	svc := testkit.Start(t, run, append(asLoader, "STAGE_INSTANCE_ID=t", "STAGE_BATCH_MAX=7"))
	testkit.Consume(t, kcfg, "persisted.users", n)
	if err := svc.Stop(t); err != nil {
		t.Fatalf("loader: %v", err)
	}

	got, err := queryAs(t, superuser, `select count(*), min(tableowner) from users, pg_tables where tablename = 'users' group by tableowner`)
	if err != nil || len(got) != 1 || got[0] != fmt.Sprintf("%d %s", n, pg.RoleOwner) {
		t.Errorf("users rows and owner = %v (%v), want %d rows owned by %s", got, err, n, pg.RoleOwner)
	}
	audit, err := queryAs(t, superuser, `select partition, sum(rows), min(first_offset), max(last_offset), string_agg(distinct who, ',')
		from datamill_batches where stage = 'loader' and topic = 'clean.users' group by partition order by partition`)
	if err != nil {
		t.Fatal(err)
	}
	var wantAudit []string
	for _, p := range slices.Sorted(func(yield func(int32) bool) {
		for p := range want {
			if !yield(p) {
				return
			}
		}
	}) {
		w := want[p]
		wantAudit = append(wantAudit, fmt.Sprintf("%d %d %d %d %s", p, w[0], w[1], w[2], pg.RoleLoader))
	}
	if !slices.Equal(audit, wantAudit) {
		t.Errorf("datamill_batches by partition (partition rows first last who) = %v, want %v", audit, wantAudit)
	}
	if got, err := queryAs(t, superuser, `select count(*) > 1 from datamill_batches`); err != nil || got[0] != "true" {
		t.Errorf("one batch audit row only (%v): STAGE_BATCH_MAX=7 makes several batches", err)
	}

	for _, c := range []struct{ role, sql string }{
		{pg.RoleLoader, `delete from users`},
		{pg.RoleLoader, `truncate users`},
		{pg.RoleLoader, `drop table users`},
		{pg.RoleReader, `insert into users (id, event_id, ingested_at, content_hash, created_event_id) values (999, 'e', now(), 'h', 'e')`},
		{pg.RoleOwner, `update datamill_batches set rows = 0`},
		{pg.RoleOwner, `delete from datamill_batches`},
		{pg.RoleOwner, `truncate datamill_batches`},
	} {
		if _, err := queryAs(t, roles[c.role], c.sql); !pg.Refused(err) {
			t.Errorf("as %s, %s = %v; want SQLSTATE 42501", c.role, c.sql, err)
		}
	}
	if got, err := queryAs(t, roles[pg.RoleReader], `select count(*) from users_by_country`); err != nil || got[0] != "1" {
		t.Errorf("the reader's users_by_country = %v (%v), want one country", got, err)
	}

	// Restarted as its role alone: nothing is missing, it starts.
	asRole := withDatabase(testkit.As(env, "loader"), roles[pg.RoleLoader], "")
	testkit.ServeUntilReady(t, run, append(asRole, "STAGE_INSTANCE_ID=t"))
	// Given a dataset whose table the owner has not created: refused,
	// naming the table and the command.
	err = run(ctx, nil, append(asRole, "DATASETS=users,jobs", "HTTP_ADDR=127.0.0.1:0", "LOG_LEVEL=error"), io.Discard)
	if !pg.Refused(err) || !strings.Contains(err.Error(), "create table jobs") || !strings.Contains(err.Error(), "`loader migrate`") {
		t.Errorf("the loader as its role with a table missing = %v; want a refusal naming jobs and `loader migrate`", err)
	}
	// `loader migrate` as the owner creates it; then the role starts.
	migrate := append(withDatabase(testkit.As(env, "loader"), roles[pg.RoleLoader], roles[pg.RoleOwner]), "DATASETS=users,jobs")
	if err := run(ctx, []string{"loader", "migrate"}, migrate, io.Discard); err != nil {
		t.Fatalf("loader migrate: %v", err)
	}
	testkit.ServeUntilReady(t, run, append(asRole, "DATASETS=users,jobs", "STAGE_INSTANCE_ID=t"))
	if got, err := queryAs(t, superuser, `select tableowner from pg_tables where tablename = 'jobs'`); err != nil || !slices.Equal(got, []string{pg.RoleOwner}) {
		t.Errorf("the jobs table's owner = %v (%v), want %s", got, err, pg.RoleOwner)
	}
}
