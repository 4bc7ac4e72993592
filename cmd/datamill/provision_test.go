package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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

// TestInitCreatesEachKafkaPrincipal runs `datamill init` as the admin of a
// secure broker with KAFKA_PRINCIPALS_DIR, a `datamill secrets` directory
// as compose mounts it: each principal then signs in with the password of
// its file and may do what its ACLs allow and nothing else; running it
// again changes nothing, and a password file replaced rotates that
// password.
func TestInitCreatesEachKafkaPrincipal(t *testing.T) {
	k := testkit.SecureKafka(t)
	secrets := t.TempDir()
	if _, err := makeSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	environ := append(k.Env(kafka.Admin), "DATABASE_URL="+testkit.Postgres(t), "DATASETS=users",
		"KAFKA_PRINCIPALS_DIR="+secrets)
	initOnce := func() {
		t.Helper()
		var out bytes.Buffer
		if err := run(t.Context(), []string{"init"}, environ, &out, io.Discard); err != nil {
			t.Fatalf("init: %v", err)
		}
		if !strings.Contains(out.String(), "kafka principals") {
			t.Errorf("init printed %q, want the principals it made", out.String())
		}
	}
	initOnce()
	initOnce() // idempotent

	// as connects as principal with the password of its file.
	as := func(principal string) *kgo.Client {
		t.Helper()
		pw, err := os.ReadFile(filepath.Join(secrets, kafkaPasswordFile(principal)))
		if err != nil {
			t.Fatal(err)
		}
		cfg := k.ClientConfig(kafka.Admin)
		cfg.SASLUsername, cfg.SASLPassword = principal, strings.TrimSpace(string(pw))
		cl, err := kafka.NewClient(cfg, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	produce := func(cl *kgo.Client, topic string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
	}
	for _, tc := range []struct {
		principal, topic string
		allowed          bool
	}{
		{"extractor", "raw.users", true},
		{"extractor", "clean.users", false},
		{"cleaner", "clean.users", true},
		{"cleaner", "raw.users", false},
		{kafka.UI, "raw.users", false},
		{kafka.Registry, "raw.users", false},
	} {
		err := produce(as(tc.principal), tc.topic)
		if allowed := err == nil; allowed != tc.allowed {
			t.Errorf("%s producing to %s: %v, want allowed %v", tc.principal, tc.topic, err, tc.allowed)
		}
		// An idempotent producer with no topic to write is refused its
		// producer id, on the cluster.
		if err != nil && !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("%s producing to %s: %v, want a refusal by the ACLs", tc.principal, tc.topic, err)
		}
	}
	// The UI reads every topic; the registry creates its own.
	if _, err := kadm.NewClient(as(kafka.UI)).ListEndOffsets(t.Context(), "raw.users"); err != nil {
		t.Errorf("ui describing raw.users: %v", err)
	}
	res, err := kadm.NewClient(as(kafka.Registry)).CreateTopic(t.Context(), 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "_schemas")
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Errorf("registry creating _schemas: %v", err)
	}

	// A password file replaced: the next init rotates that password.
	file := filepath.Join(secrets, kafkaPasswordFile("extractor"))
	old := as("extractor")
	if err := os.WriteFile(file, []byte(testkit.Password(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	initOnce()
	if err := produce(as("extractor"), "raw.users"); err != nil {
		t.Errorf("extractor with its new password: %v", err)
	}
	old.Close()
	stale, err := kafka.NewClient(func() kafka.Config {
		cfg := k.ClientConfig("extractor")
		cfg.SASLPassword = "the-old-one"
		return cfg
	}(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if err := produce(stale, "raw.users"); err == nil {
		t.Error("extractor with a wrong password produced")
	}

	// A missing file is named.
	if err := os.Remove(filepath.Join(secrets, kafkaPasswordFile(kafka.UI))); err != nil {
		t.Fatal(err)
	}
	err = run(t.Context(), []string{"init"}, environ, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), kafkaPasswordFile(kafka.UI)) {
		t.Errorf("init without the ui's password file = %v, want the file named", err)
	}
}
