package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/loader/migrations"
)

// migrated is a new database with the loader's migrations applied and the
// users table, created from its clean schema as the loader does at start.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := database(t)
	d, err := newDataset(schemas.BuiltIn(), "users")
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := d.evolve(t.Context(), pool); err != nil || !ev.Created {
		t.Fatalf("evolve = %+v, %v; want the users table created", ev, err)
	}
	return pool
}

// database is a new database with the loader's migrations applied: no
// dataset table.
func database(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pg.Migrate(t.Context(), pool, "loader", migrations.FS); err != nil {
		t.Fatal(err)
	}
	return pool
}

// values is c as generic Avro values.
func values(t *testing.T, c users.Clean) map[string]any {
	t.Helper()
	s := schemas.MustSchema("users/clean")
	b, err := avro.Marshal(s, c)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := avro.Unmarshal(s, b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// decoded is v written with writer and read by d, as its codec reads it.
func decoded(t *testing.T, d *dataset, writer avro.Schema, v map[string]any) record {
	t.Helper()
	b, err := avro.Marshal(writer, v)
	if err != nil {
		t.Fatal(err)
	}
	s, err := avro.NewSchemaCompatibility().Resolve(d.cleanSchema, writer)
	if err != nil {
		t.Fatal(err)
	}
	p := reflect.New(d.typ)
	if err := avro.Unmarshal(s, b, p.Interface()); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadBatch runs d's handler on values and returns the persisted records.
func loadBatch(t *testing.T, pool *pgxpool.Pool, d *dataset, records ...record) []map[string]any {
	t.Helper()
	batch := make([]stage.Message[record], len(records))
	for i, v := range records {
		batch[i] = stage.Message[record]{Value: v, Origin: stage.Origin{Topic: "clean.users", Offset: int64(i)}}
	}
	res, err := d.handler(pool, "loader")(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 {
		t.Fatalf("rejected: %+v", res.Rejected)
	}
	var out []map[string]any
	for _, o := range res.Outputs {
		v := map[string]any{"record": o.Value.clean.Interface(), "action": string(o.Value.action), "persisted_at": o.Value.at}
		b, err := avro.Marshal(d.persistedSchema, v)
		if err != nil {
			t.Fatalf("persisted record %v does not encode with %s: %v", v, d.persisted, err)
		}
		var back map[string]any
		if err := avro.Unmarshal(d.persistedSchema, b, &back); err != nil {
			t.Fatal(err)
		}
		out = append(out, back)
	}
	return out
}

// rows returns the users table, a row a line: its values as JSON without
// the columns named in except.
func rows(t *testing.T, pool *pgxpool.Pool, except ...string) []string {
	t.Helper()
	q := "select (to_jsonb(u) - 'updated_at'::text"
	for _, c := range except {
		q += " - '" + c + "'::text"
	}
	r, err := pool.Query(t.Context(), q+")::text from users u order by id")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTheUsersTableHasAColumnForEveryCleanField(t *testing.T) {
	pool := migrated(t)
	d, err := newDataset(schemas.BuiltIn(), "users")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range d.table.Columns {
		names = append(names, c.Name)
	}
	want := "id age gender country city email signup_date last_login account_status monthly_spend quality_flags"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("columns = %s, want %s", got, want)
	}
	ev, err := d.evolve(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Created || len(ev.Added) > 0 || len(ev.Differ) > 0 || len(ev.Constrained) > 0 {
		t.Errorf("the users table created from the clean schema and the schema disagree: %+v", ev)
	}
}

// The clean schema gains an optional field: the loader adds its column,
// the rows loaded before keep every value, records written with either
// schema load, and a loader still on the old schema goes on beside it.
func TestANewOptionalFieldBecomesAColumnAndOldRowsKeepTheirValues(t *testing.T) {
	pool := migrated(t)
	ctx := t.Context()
	v1, err := newDataset(schemas.BuiltIn(), "users")
	if err != nil {
		t.Fatal(err)
	}
	clean1 := schemas.MustSchema("users/clean")
	loadBatch(t, pool, v1, decoded(t, v1, clean1, values(t, clean(1, 1, 30, "FR"))), decoded(t, v1, clean1, values(t, clean(2, 1, 40, "DE"))))
	before := rows(t, pool)

	const tier = `{"name":"tier","type":["null","string"],"default":null,"datamill.clean":{"type":"string"}}`
	dir := testkit.SchemaDir(t, map[string]string{
		"users/clean":     testkit.AddField(t, "users/clean", "Clean", tier),
		"users/persisted": testkit.AddField(t, "users/persisted", "Clean", tier),
	})
	cat, err := schemas.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := newDataset(cat, "users")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v2.evolve(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Added) != 1 || ev.Added[0].Name != "tier" || ev.Added[0].Type != "text" || len(ev.Differ) > 0 {
		t.Errorf("evolve = %+v, want the column tier text added", ev)
	}
	if again, err := v2.evolve(ctx, pool); err != nil || len(again.Added) > 0 {
		t.Errorf("evolving again = %+v, %v; want nothing added", again, err)
	}
	if got := rows(t, pool, "tier"); !slices.Equal(got, before) {
		t.Errorf("rows after the column was added:\n%s\nwant as before:\n%s", strings.Join(got, "\n"), strings.Join(before, "\n"))
	}

	clean2 := v2.cleanSchema
	withTier := func(c users.Clean, tier string) map[string]any {
		v := values(t, c)
		v["tier"] = tier
		return v
	}
	pro := decoded(t, v2, clean2, withTier(clean(3, 1, 20, "IT"), "pro"))
	newer := decoded(t, v2, clean2, withTier(clean(1, 2, 31, "FR"), "free"))
	old := decoded(t, v2, clean1, values(t, clean(4, 1, 50, "ES"))) // written with the old schema
	out := loadBatch(t, pool, v2, pro, newer, old)
	if len(out) != 3 || out[0]["record"].(map[string]any)["tier"] != "pro" {
		t.Errorf("persisted = %v, want three records, the first of tier pro", out)
	}
	// A loader still on the old schema writes beside the new one.
	loadBatch(t, pool, v1, decoded(t, v1, clean1, values(t, clean(5, 1, 60, "PT"))))

	r, err := pool.Query(ctx, `select id, coalesce(tier, '-'), age from users order by id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(r, func(r pgx.CollectableRow) (string, error) {
		var id, age int
		var tier string
		err := r.Scan(&id, &tier, &age)
		return fmt.Sprintf("%d:%s:%d", id, tier, age), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "1:free:31 2:-:40 3:pro:20 4:-:50 5:-:60"; strings.Join(got, " ") != want {
		t.Errorf("users (id:tier:age) = %s, want %s", strings.Join(got, " "), want)
	}
}

func TestNewDatasetRefusesWhatItCannotStore(t *testing.T) {
	for name, tc := range map[string]struct {
		clean string
		want  string
	}{
		"a record field": {
			clean: testkit.AddField(t, "users/clean", "Clean", `{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"}]},"default":{"street":""}}`),
			want:  "field address: a record has no column type",
		},
		"a union of two types": {
			clean: testkit.AddField(t, "users/clean", "Clean", `{"name":"rank","type":["null","int","string"],"default":null}`),
			want:  "field rank: a union of 2 types besides null",
		},
	} {
		t.Run(name, func(t *testing.T) {
			cat, err := schemas.Open(testkit.SchemaDir(t, map[string]string{"users/clean": tc.clean}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newDataset(cat, "users"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("newDataset = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
