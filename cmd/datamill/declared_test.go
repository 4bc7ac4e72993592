package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
)

// offersDataset writes a dataset that is not built in, offers, into a new
// DATASETS_DIR and returns it: raw and clean schemas, the cleaning rules
// in the clean one, and a dataset.yaml whose model predicts whether an
// offer got applied to (yes/no) from numeric (with blanks), categorical,
// date, boolean and text columns.
func offersDataset(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "offers"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"raw.avsc": `{"type": "record", "name": "Raw", "namespace": "jobs.offers", "fields": [
			{"name": "id", "type": ["null", "string"], "default": null},
			{"name": "salary", "type": ["null", "string"], "default": null},
			{"name": "city", "type": ["null", "string"], "default": null},
			{"name": "posted", "type": ["null", "string"], "default": null},
			{"name": "remote", "type": ["null", "string"], "default": null},
			{"name": "title", "type": ["null", "string"], "default": null},
			{"name": "applied", "type": ["null", "string"], "default": null},
			{"name": "event_id", "type": "string"},
			{"name": "source", "type": "string"},
			{"name": "ingested_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}`,
		"clean.avsc": `{"type": "record", "name": "Clean", "namespace": "jobs.offers", "datamill.key": "id", "fields": [
			{"name": "id", "type": "long", "datamill.clean": {"type": "int", "required": true, "min": 1}},
			{"name": "salary", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}], "default": null,
				"datamill.clean": {"type": "decimal", "min": 0, "max": 1000000}},
			{"name": "city", "type": ["null", "string"], "default": null, "datamill.clean": {"type": "string"}},
			{"name": "posted", "type": ["null", {"type": "int", "logicalType": "date"}], "default": null, "datamill.clean": {"type": "date"}},
			{"name": "remote", "type": ["null", "boolean"], "default": null},
			{"name": "title", "type": ["null", "string"], "default": null, "datamill.clean": {"type": "string"}},
			{"name": "applied", "type": ["null", "string"], "default": null, "datamill.clean": {"type": "enum", "values": {"yes": ["y"], "no": ["n"]}}},
			{"name": "quality_flags", "type": {"type": "array", "items": "string"}, "default": []},
			{"name": "event_id", "type": "string"},
			{"name": "source", "type": ["null", "string"], "default": null},
			{"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
			{"name": "content_hash", "type": "string"}]}`,
		"dataset.yaml": `
description: Job offers and whether anyone applied.
sources: [{kind: files}]
model:
  kind: logistic
  label: {column: applied, positive: ["yes"]}
  features:
    - {column: salary, kind: numeric, transform: log1p}
    - {column: posted, kind: numeric, transform: days_since, name: age_days}
    - {column: city, kind: categorical, top: 3}
    - {column: remote, kind: boolean}
    - {column: title, kind: tokens, buckets: 16}
  train: {min_rows: 100, test_share: 0.25}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, "offers", name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// offersCSV is n offers, one salary in seven blank, remote, well paid Go
// offers applied to more; then two offers without a valid id (dead
// letters) and the first offer again (a duplicate).
func offersCSV(n int) string {
	var b strings.Builder
	b.WriteString("id,salary,city,posted,remote,title,applied\n")
	cities := []string{"Paris", "Lyon", "Lille", "Nantes", "Brest"}
	titles := []string{"Go developer", "Java developer", "Data engineer", "Go SRE", "Accountant"}
	ref := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	first := ""
	for i := 1; i <= n; i++ {
		salary := fmt.Sprintf("%d.50", 30000+(i*7919)%60000)
		if i%7 == 0 {
			salary = ""
		}
		remote := i%3 == 0
		title := titles[(i*31)%len(titles)]
		score := 0
		if remote {
			score++
		}
		if strings.HasPrefix(title, "Go") {
			score++
		}
		if salary != "" && 30000+(i*7919)%60000 > 60000 {
			score++
		}
		applied := "n"
		if score >= 2 || (score == 1 && i%4 == 0) {
			applied = "y"
		}
		line := fmt.Sprintf("%d,%s,%s,%s,%t,%s,%s\n", i, salary, cities[i%len(cities)], ref.AddDate(0, 0, -(i%90)).Format(time.DateOnly), remote, title, applied)
		if i == 1 {
			first = line
		}
		b.WriteString(line)
	}
	b.WriteString("x1,100.00,Paris,2026-11-01,true,Go developer,y\n")
	b.WriteString(",100.00,Paris,2026-11-01,true,Go developer,n\n")
	b.WriteString(first)
	return b.String()
}

// withDatasetStack runs fn on the stack of `datamill dev`, as withStack
// does, with the variables of set given to dev itself and to every
// service (DATASETS among them, which dev reads for the topics it makes
// and the datasets it gives the services), as a command that runs one
// dataset builds its stack.
func withDatasetStack(t *testing.T, set []string, fn func(ctx context.Context, p *pipeline, d *devStack)) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(devBin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "services.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	d := commandStack(devFlags{partitions: 3, dir: dir, readyTimeout: 90 * time.Second, secureKafka: true}, logs, "declared",
		append(toolchainEnv(), "LOG_LEVEL=warn"), set)
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		fn(ctx, &pipeline{t: t, eps: eps, svc: svc, kcfg: stackKafka(t, eps)}, d)
		return nil
	}
	if err := d.run(t.Context()); err != nil {
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("stack: %v\nservices' log (end):\n%s", err, lastLines(string(b), 40))
	}
}

// TestADeclaredDatasetRunsThroughThePipeline is issue 17's first "done
// when": a dataset that is not built in, declared in a DATASETS_DIR and
// extracted from a file, goes through extractor → cleaner → loader →
// scorer with no Go of its own. Its table has the declared types and
// constraints; the scorer trains its model by itself once the table holds
// min_rows labelled rows, and `scorer train --dataset` trains it too;
// every persisted event gets one prediction and one scored record; the
// counts reconcile.
func TestADeclaredDatasetRunsThroughThePipeline(t *testing.T) {
	datasets, inbox, models := offersDataset(t), t.TempDir(), t.TempDir()
	const n = 400
	if err := os.WriteFile(filepath.Join(inbox, "offers.csv"), []byte(offersCSV(n)), 0o644); err != nil {
		t.Fatal(err)
	}
	set := []string{
		"DATASETS=offers", "DATASETS_DIR=" + datasets,
		"EXTRACTOR_FILES=offers=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms",
		"SCORER_MODEL_DIR=" + models, "SCORER_MODEL_POLL=100ms", "SCORER_SELF_TRAIN_INTERVAL=200ms",
	}
	withDatasetStack(t, set, func(ctx context.Context, p *pipeline, d *devStack) {
		conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))

		// The loader created the table from the clean schema.
		rows, err := conn.Query(ctx, `select a.attname, format_type(a.atttypid, a.atttypmod) || case when a.attnotnull then ' not null' else '' end
			from pg_attribute a where a.attrelid = 'offers'::regclass and a.attnum > 0 and not a.attisdropped
			and a.attname in ('id', 'salary', 'city', 'posted', 'remote', 'title', 'applied')`)
		if err != nil {
			t.Fatal(err)
		}
		columns := map[string]string{}
		var name, typ string
		if _, err := pgx.ForEachRow(rows, []any{&name, &typ}, func() error { columns[name] = typ; return nil }); err != nil {
			t.Fatal(err)
		}
		wantColumns := map[string]string{
			"id": "bigint not null", "salary": "numeric(10,2)", "city": "text", "posted": "date",
			"remote": "boolean", "title": "text", "applied": "text",
		}
		if diff := cmp.Diff(wantColumns, columns); diff != "" {
			t.Errorf("the offers table's columns (-want +got):\n%s", diff)
		}
		var constraints string
		if err := conn.QueryRow(ctx, `select string_agg(pg_get_constraintdef(oid), '; ' order by conname) from pg_constraint
			where conrelid = 'offers'::regclass and contype in ('p', 'c')`).Scan(&constraints); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"PRIMARY KEY (id)", "id >= 1", "salary >=", "salary <="} {
			if !strings.Contains(constraints, want) {
				t.Errorf("the offers table's constraints %q: want one with %q", constraints, want)
			}
		}

		// Everything extracted is cleaned and loaded.
		deadline := time.Now().Add(2 * time.Minute)
		for p.read(ctx, "raw.offers", nil).records < n+3 {
			if time.Now().After(deadline) {
				t.Fatalf("raw.offers holds fewer than %d records after two minutes", n+3)
			}
			time.Sleep(50 * time.Millisecond)
		}
		raw := p.read(ctx, "raw.offers", nil)
		p.waitCommitted(ctx, "datamill-cleaner-offers", "raw.offers", raw.next)
		clean := p.read(ctx, "clean.offers", nil)
		p.waitCommitted(ctx, "datamill-loader-offers", "clean.offers", clean.next)

		// The scorer trains the declared model by itself and scores every
		// persisted event.
		persisted := p.read(ctx, "persisted.offers", nil)
		for deadline := time.Now().Add(2 * time.Minute); ; {
			var count int
			if err := conn.QueryRow(ctx, `select count(*) from offers_predictions`).Scan(&count); err == nil && count >= persisted.records {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("fewer predictions than the %d persisted events after two minutes", persisted.records)
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.waitCommitted(ctx, "datamill-scorer-offers", "persisted.offers", persisted.next)
		if trained, _ := filepath.Glob(filepath.Join(models, "offers-*.json")); len(trained) != 1 {
			t.Errorf("self-trained artefacts %v, want one offers-*.json", trained)
		}
		var registered int
		if err := conn.QueryRow(ctx, `select count(*) from scorer_models where dataset = 'offers' and promoted`).Scan(&registered); err != nil || registered != 1 {
			t.Errorf("%d promoted offers models in the registry (%v), want 1", registered, err)
		}

		// Counts reconcile, and every persisted event has one prediction
		// and one scored record.
		deadByCleaner := 0
		p.read(ctx, "dlq.offers", func(r *kgo.Record) {
			if kafka.Header(r, stage.HeaderStage) == "cleaner" {
				deadByCleaner++
			}
		})
		cleaner := p.scrapeAll(ctx, "cleaner")
		if raw.records != n+3 || raw.records != clean.records+deadByCleaner+cleaner.duplicates || deadByCleaner != 2 || cleaner.duplicates != 1 {
			t.Errorf("raw %d, clean %d, dead letters %d, duplicates %d: want raw %d = clean + 2 dead letters + 1 duplicate",
				raw.records, clean.records, deadByCleaner, cleaner.duplicates, n+3)
		}
		events := map[string]int{}
		p.read(ctx, "persisted.offers", func(r *kgo.Record) { events[string(r.Key)]++ })
		scoredKeys := map[string]int{}
		scored := p.read(ctx, "scored.offers", func(r *kgo.Record) { scoredKeys[string(r.Key)]++ })
		var tableRows, predictions, withoutPrediction, orphans int
		if err := conn.QueryRow(ctx, `select (select count(*) from offers), (select count(*) from offers_predictions),
			(select count(*) from offers o where not exists (select 1 from offers_predictions p where p.event_id = o.event_id)),
			(select count(*) from offers_predictions p where not exists (select 1 from offers o where o.id = p.offer_id))`).
			Scan(&tableRows, &predictions, &withoutPrediction, &orphans); err != nil {
			t.Fatal(err)
		}
		if persisted.records != n || scored.records != persisted.records || predictions != persisted.records || tableRows != n ||
			withoutPrediction != 0 || orphans != 0 {
			t.Errorf("persisted %d, scored %d, predictions %d, rows %d (%d without a prediction, %d predictions of no row): want %d of each",
				persisted.records, scored.records, predictions, tableRows, withoutPrediction, orphans, n)
		}
		t.Logf("raw %d, clean %d, dead letters %d, duplicates %d, persisted %d, scored %d, predictions %d",
			raw.records, clean.records, deadByCleaner, cleaner.duplicates, persisted.records, scored.records, predictions)
		if !cmp.Equal(events, scoredKeys) {
			t.Errorf("the scored records' keys are not the persisted events' keys: %d persisted keys, %d scored keys", len(events), len(scoredKeys))
		}

		// `scorer train --dataset` trains it by hand too.
		out := t.TempDir()
		cmd := exec.CommandContext(ctx, filepath.Join(devBin, "scorer"), "train", "--dataset", "offers", "--out", out)
		cmd.Env = append(toolchainEnv(), "DATABASE_URL="+p.eps["DATABASE_URL"], "DATASETS_DIR="+datasets)
		report, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("scorer train --dataset offers: %v\n%s", err, report)
		}
		if trained, _ := filepath.Glob(filepath.Join(out, "offers-*.json")); len(trained) != 1 || !strings.Contains(string(report), "logistic regression of applied") {
			t.Errorf("scorer train --dataset offers wrote %v and said:\n%s", trained, report)
		}
	})
}
