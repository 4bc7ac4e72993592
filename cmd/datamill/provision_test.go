package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

func TestInitCreatesTopicsAndAppliesMigrationsOnce(t *testing.T) {
	kcfg := testkit.KafkaCluster(t).ClientConfig(kafka.Admin)
	dbURL := testkit.Postgres(t)
	environ := append(testkit.KafkaEnv(kcfg), "DATABASE_URL="+dbURL, "KAFKA_TOPIC_PARTITIONS=6", "DATASETS=users,jobs")

	var out bytes.Buffer
	if err := run(t.Context(), []string{"init"}, environ, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "migrations of loader: ") || strings.Contains(out.String(), "loader: 0 applied") {
		t.Errorf("first init printed %q, want the loader's migrations applied", out.String())
	}

	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range kafka.PipelineTopics("users", "jobs") {
		d, ok := details[topic]
		if !ok || d.Err != nil {
			t.Errorf("topic %s missing after init (%v)", topic, d.Err)
			continue
		}
		if topic != kafka.EcoSamples && len(d.Partitions) != 6 {
			t.Errorf("topic %s has %d partitions, want 6", topic, len(d.Partitions))
		}
	}

	var tables int
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(t.Context(), `select count(*) from information_schema.tables
		where table_name in ('applied_events', 'eco_samples', 'eco_stage_totals')`).Scan(&tables)
	if err != nil || tables != 3 {
		t.Errorf("tables after init: %d (%v), want the loader's ledger and the ecometer's 2", tables, err)
	}

	out.Reset()
	if err := run(t.Context(), []string{"init"}, environ, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), ": 0 applied"); got != 2 {
		t.Errorf("second init printed %q, want nothing applied", out.String())
	}
}

func TestInitNamesMissingVariables(t *testing.T) {
	err := run(t.Context(), []string{"init"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "KAFKA_BROKERS") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("init without configuration = %v, want KAFKA_BROKERS and DATABASE_URL named", err)
	}
}
