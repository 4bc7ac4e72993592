package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

func ptr[T any](v T) *T { return &v }

func clean(id int64, minute int, age int32, country string) users.Clean {
	spend := big.NewRat(1999, 100)
	return users.Clean{
		ID: id, Age: &age, Country: &country, MonthlySpend: &spend, QualityFlags: []string{},
		SignupDate: ptr(time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)), Source: ptr("test"),
		EventID: fmt.Sprintf("ev-%d-%d", id, minute), EventTime: time.Date(2025, 1, 1, 0, minute, 0, 0, time.UTC),
		ContentHash: fmt.Sprintf("%d/%s", age, country),
	}
}

// TestLoadsCleanRecordsAndPublishesWhatItDid runs the loader service on the
// embedded stack end to end.
func TestLoadsCleanRecordsAndPublishesWhatItDid(t *testing.T) {
	env := testkit.Stack(t, true)
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	ctx := t.Context()
	kcfg := testkit.KafkaConfig(t, m, 3)
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if testkit.RealBroker() {
		t.Fatal("this test uses the fixed topic names of the users dataset: run it on the embedded broker")
	}
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
	inputs := []users.Clean{
		clean(1, 1, 30, "FR"),
		clean(2, 1, 40, "DE"),
		clean(1, 2, 31, "FR"),  // newer version of 1
		clean(2, 0, 99, "ES"),  // older than 2's row: stale
		clean(3, 1, 20, "fra"), // refused by the table's check
		clean(4, 1, 50, "IT"),
		clean(4, 1, 50, "IT"), // the same event again
	}
	for _, in := range inputs {
		b, err := codec.Encode(&in)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "clean.users", Key: fmt.Appendf(nil, "%d", in.ID), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, nil, append(testkit.As(env, "loader"), "ADMIN_ADDR="+testkit.FreeAddr(t), "STAGE_INSTANCE_ID=t"), io.Discard)
	}()

	persisted := testkit.Consume(t, kcfg, "persisted.users", 4)
	dead := testkit.Consume(t, kcfg, "dlq.users", 1)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("loader: %v", err)
	}

	pcodec, err := serde.NewCodec[users.Persisted](ctx, reg, "persisted.users", schemas.MustSchema("users/persisted"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range persisted {
		var p users.Persisted
		if err := pcodec.Decode(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%s", p.Record.EventID, p.Action))
	}
	want := "ev-1-1:INSERTED ev-1-2:UPDATED ev-2-1:INSERTED ev-4-1:INSERTED"
	if strings.Join(sorted(got), " ") != want {
		t.Errorf("persisted = %v, want %s", sorted(got), want)
	}
	if h := kafka.Header(dead[0], stage.HeaderReason); !strings.Contains(h, "database:") || !strings.Contains(h, "country") {
		t.Errorf("dead letter reason = %q, want the database's refusal", h)
	}

	conn, err := pgx.Connect(ctx, m["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `select id, age, country, monthly_spend::text, event_id from users order by id`)
	table, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id, age int
		var country, spend, ev string
		err := r.Scan(&id, &age, &country, &spend, &ev)
		return fmt.Sprintf("%d/%d/%s/%s/%s", id, age, country, spend, ev), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(table, " "), "1/31/FR/19.99/ev-1-2 2/40/DE/19.99/ev-2-1 4/50/IT/19.99/ev-4-1"; got != want {
		t.Errorf("users table = %s, want %s", got, want)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
