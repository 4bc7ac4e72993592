package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// TestDevRestartOnItsDataDirectoryConverges runs `datamill dev` on a data
// directory twice. The first run loads a file while the scorer has no
// model yet, and stops: its rows are in PostgreSQL, their persisted records
// only in the in-process Kafka, which the stop loses. The second run, on
// the same directory with a model, reads the file again (its checkpoints
// are gone too), whose events find their rows unchanged and are not
// published again, and a second file. In the end every row has exactly one
// prediction, of its latest event, and one scored record.
func TestDevRestartOnItsDataDirectoryConverges(t *testing.T) {
	dir, inbox, models := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.Symlink(devBin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	// drop writes users [from, from+n) into the extractor's directory.
	drop := func(name string, from, n int) {
		t.Helper()
		var b strings.Builder
		b.WriteString("id,age,gender,country,signup_date,last_login,account_status,monthly_spend\n")
		for id := from; id < from+n; id++ {
			fmt.Fprintf(&b, "%d,%d,%s,%s,2023-%02d-%02d,2024-%02d-01,active,%d.50\n",
				id, 20+id%50, []string{"F", "M", "x"}[id%3], []string{"FR", "DE", "IT"}[id%3], 1+id%12, 1+id%28, 1+id%12, id%300)
		}
		tmp := filepath.Join(inbox, "."+name)
		if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"EXTRACTOR_FILES=users=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms",
		"SCORER_MODEL_DIR=" + models, "SCORER_MODEL_POLL=100ms",
		// Rows the stream has not scored 10 s after they were applied
		// are the reconciliation's: far more than the stream takes here.
		"SCORER_RECONCILE_INTERVAL=500ms", "SCORER_RECONCILE_AGE=10s",
	}

	drop("first.csv", 1, 300)
	withStackIn(t, dir, env, func(ctx context.Context, p *pipeline, d *devStack) {
		p.drained(ctx)
		rows, predictions := tableCounts(ctx, t, p.eps["DATABASE_URL"])
		if rows != 300 || predictions != 0 {
			t.Fatalf("first run: %d users rows and %d predictions, want 300 rows and no prediction without a model", rows, predictions)
		}
	})

	if err := trainModel(t.Context(), filepath.Join(dir, "bin", "scorer"), generated(t), t.TempDir(), models, 7, t.Logf); err != nil {
		t.Fatal(err)
	}
	withStackIn(t, dir, env, func(ctx context.Context, p *pipeline, d *devStack) {
		drop("second.csv", 1001, 100)
		deadline := time.Now().Add(3 * time.Minute)
		for {
			p.drained(ctx)
			c := p.scrapeAll(ctx, "loader")
			if c.in >= 400 {
				if c.out != 100 || c.duplicates != 300 {
					t.Errorf("second run: the loader read %d records, published %d and counted %d duplicates; want 400, 100 and the first file's 300",
						c.in, c.out, c.duplicates)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("second run: the loader read %d records within 3 minutes, want both files' 400", c.in)
			}
			time.Sleep(100 * time.Millisecond)
		}

		// Every row ends with the prediction of its latest event.
		conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var missing, rows, predictions int
		for {
			err := conn.QueryRow(ctx, `select
				(select count(*) from users u where not exists (select 1 from predictions p where p.event_id = u.event_id)),
				(select count(*) from users), (select count(*) from predictions)`).Scan(&missing, &rows, &predictions)
			if err != nil {
				t.Fatal(err)
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("second run: %d of %d users rows still have no prediction of their latest event", missing, rows)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if rows != 400 || predictions != 400 {
			t.Errorf("second run: %d users rows and %d predictions, want 400 of each", rows, predictions)
		}

		// One scored record per prediction, in the new Kafka: the first
		// file's from the reconciliation, the second's from the stream.
		reg, err := serde.NewRegistry(serde.Config{RegistryURL: p.eps["SCHEMA_REGISTRY_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		codec, err := serde.NewCodec[users.Scored](ctx, reg, "scored.users", schemas.MustSchema("users/scored"))
		if err != nil {
			t.Fatal(err)
		}
		scored := map[string]int{}
		for _, rec := range testkit.Consume(t, p.kcfg, "scored.users", 400) {
			var sc users.Scored
			if err := codec.Decode(rec.Value, &sc); err != nil {
				t.Fatal(err)
			}
			scored[sc.EventID]++
		}
		r, err := conn.Query(ctx, `select event_id from users`)
		if err != nil {
			t.Fatal(err)
		}
		events, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if scored[e] != 1 {
				t.Errorf("event %s has %d scored records, want 1", e, scored[e])
			}
		}
		var persisted int
		p.read(ctx, "persisted.users", func(*kgo.Record) { persisted++ })
		if persisted != 100 {
			t.Errorf("second run: persisted.users holds %d records, want the second file's 100 (the first file's rows were unchanged)", persisted)
		}
	})
}

// tableCounts returns the rows of the users and predictions tables.
func tableCounts(ctx context.Context, t *testing.T, databaseURL string) (rows, predictions int) {
	t.Helper()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The scorer makes its predictions table when it starts, which a
	// small pipeline's loader may finish before.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var made bool
		if err := conn.QueryRow(ctx, `select to_regclass('predictions') is not null`).Scan(&made); err != nil {
			t.Fatal(err)
		}
		if made {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scorer made no predictions table within 30 s")
		}
	}
	if err := conn.QueryRow(ctx, `select (select count(*) from users), (select count(*) from predictions)`).Scan(&rows, &predictions); err != nil {
		t.Fatal(err)
	}
	return rows, predictions
}

// withStackIn is withStack on the data directory dir, which outlives the
// stack: PostgreSQL's cluster is created there at the first run and found
// again at the next. Kafka starts empty each time, as `datamill dev`'s
// in-process broker does; on the real-broker tier its pipeline is reset.
func withStackIn(t *testing.T, dir string, env []string, fn func(ctx context.Context, p *pipeline, d *devStack)) {
	t.Helper()
	logs, err := os.Create(filepath.Join(t.TempDir(), "services.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	d := &devStack{
		flags:   devFlags{dir: dir, partitions: 3, readyTimeout: 90 * time.Second, secureKafka: true},
		env:     map[string]string{},
		environ: append(append(toolchainEnv(), "LOG_LEVEL=warn"), env...),
		out:     &lockedWriter{w: logs},
	}
	if testkit.RealBroker() {
		resetRealBroker(t)
		useRealKafka(t, d)
	}
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		fn(ctx, &pipeline{t: t, eps: eps, svc: svc, kcfg: stackKafka(t, eps)}, d)
		return nil
	}
	if err := d.run(t.Context()); err != nil {
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("stack: %v\nservices' log (end):\n%s", err, lastLines(string(b), 40))
	}
}
