package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     kafka.Config
		wantErr string
	}{
		"ok":             {cfg: kafka.Config{Brokers: []string{"k:9092"}, Partitions: 3}},
		"no brokers":     {cfg: kafka.Config{Partitions: 3}, wantErr: "KAFKA_BROKERS"},
		"bad mechanism":  {cfg: kafka.Config{Brokers: []string{"k"}, Partitions: 1, SASLMechanism: "GSSAPI"}, wantErr: "KAFKA_SASL_MECHANISM"},
		"scram no user":  {cfg: kafka.Config{Brokers: []string{"k"}, Partitions: 1, SASLMechanism: "SCRAM-SHA-512"}, wantErr: "KAFKA_SASL_USERNAME"},
		"plain in clear": {cfg: kafka.Config{Brokers: []string{"k"}, Partitions: 1, SASLMechanism: "PLAIN", SASLUsername: "u"}, wantErr: "KAFKA_SASL_MECHANISM=PLAIN sends the password in clear: it needs KAFKA_TLS=true"},
		"plain over tls": {cfg: kafka.Config{Brokers: []string{"k"}, Partitions: 1, SASLMechanism: "PLAIN", SASLUsername: "u", TLS: true}},
		"half a cert":    {cfg: kafka.Config{Brokers: []string{"k"}, Partitions: 1, TLSCertFile: "c.pem"}, wantErr: "KAFKA_TLS_KEY_FILE"},
		"no partitions":  {cfg: kafka.Config{Brokers: []string{"k"}}, wantErr: "KAFKA_TOPIC_PARTITIONS"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Validate(%+v) = %v", tc.cfg, err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.wantErr)
			}
		})
	}
}

func TestOptsRejectsMissingCA(t *testing.T) {
	cfg := kafka.Config{Brokers: []string{"k"}, Partitions: 1, TLS: true, TLSCAFile: "/nonexistent/ca.pem"}
	if _, err := kafka.Opts(cfg, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "KAFKA_TLS_CA_FILE") {
		t.Fatalf("Opts = %v, want an error naming KAFKA_TLS_CA_FILE", err)
	}
}

func TestPipelineTopics(t *testing.T) {
	got := strings.Join(kafka.PipelineTopics("users"), " ")
	if want := "eco.samples raw.users clean.users persisted.users scored.users dlq.users"; got != want {
		t.Errorf("PipelineTopics(users) = %q, want %q", got, want)
	}
}

func TestEnsureTopicsCreatesOnceAndProduces(t *testing.T) {
	cfg := testkit.Kafka(t)
	cfg.Partitions = 3
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	a, b := testkit.Name(t, "raw"), testkit.Name(t, "clean")
	if err := kafka.EnsureTopics(ctx, cl, cfg, a, b); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(ctx, cl, cfg, a, b); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	details, err := kadm.NewClient(cl).ListTopics(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{a, b} {
		if n := len(details[topic].Partitions); n != 3 {
			t.Errorf("%s has %d partitions, want 3", topic, n)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: a, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to the created topic: %v", err)
	}
}

func TestEnsureCompacted(t *testing.T) {
	cfg := testkit.Kafka(t)
	cfg.Partitions = 2
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	state := testkit.Name(t, "state")
	for range 2 {
		if err := kafka.EnsureCompacted(ctx, cl, cfg, state, 5); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := kafka.Partitions(ctx, cl, state); err != nil || n != 5 {
		t.Fatalf("state topic: %d partitions (%v), want 5", n, err)
	}
	if err := kafka.EnsureCompacted(ctx, cl, cfg, state, 4); err == nil || !strings.Contains(err.Error(), "has 5 partitions, want 4") {
		t.Errorf("EnsureCompacted with another count = %v, want an error naming both", err)
	}
	configs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range configs {
		for _, kv := range c.Configs {
			if kv.Key == "cleanup.policy" && kv.Value != nil {
				policy = *kv.Value
			}
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}
}
