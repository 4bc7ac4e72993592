package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
)

// The users schemas gain an optional field, tier, while the pipeline runs.
// The cleaner and the loader are redeployed with the new schemas (consumers
// first, as BACKWARD compatibility wants), then the extractor; then a
// producer still on the old schemas and two on the new (`datamill
// produce` and the extractor's HTTP ingest) publish side by side. The scorer stays on
// the schemas it was built with. Nothing breaks: every record is loaded
// and scored, the loader adds the column, the rows loaded before keep
// their values, and the new field reaches the table and persisted.users
// cleaned by its rule. A schema that changes the field's type is refused
// when the producer registers it, and nothing is published.
func TestAnAddedFieldFlowsThroughWhileOldAndNewProducersRunSideBySide(t *testing.T) {
	dir := t.TempDir()
	const cols = "id,age,country,account_status,signup_date,last_login,monthly_spend,tier"
	write := func(name string, from, to int, tier func(id int) string) string {
		t.Helper()
		lines := []string{cols}
		for id := from; id <= to; id++ {
			lines = append(lines, fmt.Sprintf("%d,%d,FR,active,2023-01-%02d,2024-06-01,%d.50,%s", id, 20+id%50, 1+id%28, id%90, tier(id)))
		}
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	tierOf := func(id int) string { return []string{"pro", "free", "Premium", "gold"}[id%4] }
	before := write("before.csv", 1, 40, tierOf)
	old := write("old.csv", 101, 140, tierOf)
	current := write("new.csv", 201, 240, tierOf)
	var body strings.Builder
	for id := 301; id <= 340; id++ {
		fmt.Fprintf(&body, `{"id":"%d","age":"%d","country":"DE","account_status":"active","tier":"%s"}`+"\n", id, 20+id%50, tierOf(id))
	}

	const raw = `{"name":"tier","type":["null","string"],"default":null,"doc":"Plan, as the source wrote it."}`
	const clean = `{"name":"tier","type":["null","string"],"default":null,"doc":"Plan: free or pro.",` +
		`"datamill.clean":{"type":"enum","values":{"free":[],"pro":["premium"]}}}`
	evolved := testkit.SchemaDir(t, map[string]string{
		"users/raw":       testkit.AddField(t, "users/raw", "Raw", raw),
		"users/clean":     testkit.AddField(t, "users/clean", "Clean", clean),
		"users/persisted": testkit.AddField(t, "users/persisted", "Clean", clean),
	})
	// The same field, made required: a reader of a string cannot read the
	// nulls the registered schema allows. (The records themselves fit it,
	// so only the registry refuses it: produce refuses records that do not
	// fit before it registers anything.)
	retyped := testkit.SchemaDir(t, map[string]string{
		"users/raw": testkit.AddField(t, "users/raw", "Raw", `{"name":"tier","type":"string"}`),
	})

	models := t.TempDir()
	withStack(t, []string{"SCORER_MODEL_DIR=" + models, "SCORER_MODEL_POLL=100ms"}, func(ctx context.Context, p *pipeline, d *devStack) {
		// The scorer scores with a model trained on other users.
		if err := trainModel(ctx, filepath.Join(d.flags.dir, "bin", "scorer"), generated(t), t.TempDir(), models, 7, t.Logf); err != nil {
			t.Fatal(err)
		}
		produce := func(file string, env ...string) (string, error) {
			var out strings.Builder
			env = append(env, stackEnv(p.t, p.eps)...)
			err := run(ctx, []string{"produce", "users", file}, env, &out, &out)
			return out.String(), err
		}
		settled := func() chaosOutcome {
			t.Helper()
			o, err := settle(ctx, p.kcfg, generated(t), p.eps, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		if out, err := produce(before); err != nil {
			t.Fatalf("produce %s: %v: %s", before, err, out)
		}
		settled()
		conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		table := func(where string, except ...string) []string {
			t.Helper()
			q := "select (to_jsonb(u) - 'updated_at'::text"
			for _, c := range except {
				q += " - '" + c + "'::text"
			}
			r, err := conn.Query(ctx, q+")::text from users u where "+where+" order by id")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := pgx.CollectRows(r, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		loaded := table("true")
		if len(loaded) != 40 {
			t.Fatalf("%d users loaded from %s, want 40", len(loaded), before)
		}

		for _, name := range []string{"cleaner", "loader", "extractor"} {
			if err := d.redeploy(ctx, name, "SCHEMAS_DIR="+evolved); err != nil {
				t.Fatalf("redeploy %s: %v", name, err)
			}
		}
		var wg sync.WaitGroup
		outs, errs := make([]string, 3), make([]error, 3)
		wg.Go(func() { outs[0], errs[0] = produce(old) })
		wg.Go(func() { outs[1], errs[1] = produce(current, "SCHEMAS_DIR="+evolved) })
		wg.Go(func() { outs[2], errs[2] = postEvents(ctx, p.ingest, body.String()) })
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("producer %d: %v: %s", i, err, outs[i])
			}
		}
		if !strings.Contains(outs[0], "ignoring fields users has no place for: tier") {
			t.Errorf("the old producer said %q, want it to name the field it has no place for", outs[0])
		}
		o := settled()
		t.Logf("after the three producers: %v", o)
		if o.Raw != 160 || o.Clean != 160 || o.DLQ != 0 || o.Persisted != 160 || o.Scored != 160 || o.Predictions != 160 || o.TableRows != 160 {
			t.Errorf("outcome %v, want 160 records at every stage, no dead letter, 160 rows and predictions", o)
		}

		var typ string
		if err := conn.QueryRow(ctx, `select data_type from information_schema.columns
			where table_name = 'users' and column_name = 'tier'`).Scan(&typ); err != nil || typ != "text" {
			t.Fatalf("column users.tier: %q, %v; want it added as text", typ, err)
		}
		if got := table("id <= 40", "tier"); !slices.Equal(got, loaded) {
			t.Errorf("the rows loaded before changed:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(loaded, "\n"))
		}
		tiers := func(where string) string {
			t.Helper()
			var s string
			if err := conn.QueryRow(ctx, `select string_agg(coalesce(tier, '-') || case when 'tier:unknown_value' = any(quality_flags) then '!' else '' end, ' ' order by id)
				from users where `+where).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if got := tiers("id <= 140"); got != strings.TrimSpace(strings.Repeat("- ", 80)) {
			t.Errorf("tiers of the rows from before and from the old producer: %s, want none", got)
		}
		// 201 is free, 202 Premium → pro, 203 gold → null and flagged, 204 pro…
		for _, ids := range []string{"id between 201 and 240", "id > 300"} {
			if got, want := tiers(ids), strings.TrimSpace(strings.Repeat("free pro -! pro ", 10)); got != want {
				t.Errorf("tiers of the new producers' rows (%s): %s, want %s", ids, got, want)
			}
		}

		// persisted.users carries the field to the consumers that read it.
		reg, err := serde.NewRegistry(serde.Config{RegistryURL: p.eps["SCHEMA_REGISTRY_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		withTier := 0
		if err := kafka.ReadCommitted(ctx, p.kcfg, zap.NewNop(), "persisted.users", nil, func(r *kgo.Record) {
			_, v, err := reg.DecodeAny(ctx, r.Value)
			if err != nil {
				t.Errorf("persisted record: %v", err)
				return
			}
			if tier, _ := v.(map[string]any)["record"].(map[string]any)["tier"].(string); tier != "" {
				withTier++
			}
		}); err != nil {
			t.Fatal(err)
		}
		if withTier != 60 {
			t.Errorf("%d persisted records carry a tier, want the new producers' 60 valid ones", withTier)
		}

		out, err := produce(current, "SCHEMAS_DIR="+retyped)
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "field tier: string cannot read union[null,string]") {
			t.Errorf("producing with tier retyped: %v (%s), want a refusal naming the field", err, out)
		}
		if n := p.read(ctx, "raw.users", nil).records; n != 160 {
			t.Errorf("raw.users holds %d records after the refused producer, want 160", n)
		}
	})
}

// postEvents posts an NDJSON body of users to the extractor's ingest endpoint
// at addr and returns its answer.
func postEvents(ctx context.Context, addr, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/datasets/users/events", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusAccepted {
		err = fmt.Errorf("ingest answered %s", resp.Status)
	}
	return string(b), err
}
