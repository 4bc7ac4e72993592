package main

import (
	"bufio"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

func TestTailPrintsDecodedRecordsAndDeadLetters(t *testing.T) {
	kcfg := testkit.Kafka(t)
	kcfg.Partitions = 1
	registryURL := testkit.Registry(t)
	ctx := t.Context()
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic, dlq := testkit.Name(t, "clean.users"), testkit.Name(t, "dlq.users")
	if err := kafka.EnsureTopics(ctx, cl, kcfg, topic, dlq); err != nil {
		t.Fatal(err)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registryURL})
	if err != nil {
		t.Fatal(err)
	}
	clean, err := serde.NewCodec[users.Clean](ctx, reg, topic, schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	dead, err := serde.NewCodec[schemas.DeadLetter](ctx, reg, dlq, schemas.MustSchema("deadletter"))
	if err != nil {
		t.Fatal(err)
	}
	country, spend := "FR", big.NewRat(1250, 100)
	b, err := clean.Encode(&users.Clean{ID: 7, Country: &country, MonthlySpend: &spend, QualityFlags: []string{}, EventID: "e7", EventTime: time.Unix(1700000000, 0), ContentHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	db, err := dead.Encode(&schemas.DeadLetter{Dataset: "users", Stage: "cleaner", Reasons: []string{"age: not a number"}, SourceTopic: "raw.users", Value: b, FailedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	err = cl.ProduceSync(ctx,
		&kgo.Record{Topic: topic, Key: []byte("7"), Value: b},
		&kgo.Record{Topic: dlq, Key: []byte("7"), Value: db, Headers: []kgo.RecordHeader{{Key: stage.HeaderReason, Value: []byte("age: not a number")}}},
	).FirstErr()
	if err != nil {
		t.Fatal(err)
	}

	env := append(testkit.KafkaEnv(kcfg), "SCHEMA_REGISTRY_URL="+registryURL)
	lines := func(topic string) []map[string]any {
		var out strings.Builder
		if err := run(ctx, []string{"tail", topic, "--from-beginning", "--max", "1", "--idle", "20s"}, env, &out, &out); err != nil {
			t.Fatalf("tail %s: %v: %s", topic, err, out.String())
		}
		var got []map[string]any
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("tail printed a line that is not JSON: %q", sc.Text())
			}
			got = append(got, m)
		}
		return got
	}

	got := lines(topic)
	if len(got) != 1 {
		t.Fatalf("tail --max 1 printed %d lines", len(got))
	}
	v := got[0]["value"].(map[string]any)
	if v["id"] != float64(7) || v["country"] != "FR" || v["monthly_spend"] != "12.50" || got[0]["key"] != "7" {
		t.Errorf("tail printed %v", got[0])
	}

	got = lines(dlq)
	if len(got) != 1 {
		t.Fatalf("tail of the dead letters printed %d lines", len(got))
	}
	h := got[0]["headers"].(map[string]any)
	dv := got[0]["value"].(map[string]any)
	orig, _ := dv["original"].(map[string]any)
	if h[stage.HeaderReason] != "age: not a number" || dv["stage"] != "cleaner" || orig == nil || orig["id"] != float64(7) {
		t.Errorf("dead letter printed as %v", got[0])
	}
}

func TestTailUsage(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"tail"}, nil, &out, &out); err != errUsage || !strings.Contains(out.String(), "usage: datamill tail") {
		t.Errorf("tail without a topic = %v, %q", err, out.String())
	}
}
