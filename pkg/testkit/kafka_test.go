package testkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
)

// The broker a test gets is secure: Stack's variables are the admin's,
// a client with the brokers alone is not let in, and As makes a service's
// environment, whose client may do what the service's ACLs allow and
// nothing else.
func TestStackIsSecureAndAsRunsAServiceAsItself(t *testing.T) {
	env := Stack(t, false)
	admin := KafkaConfig(t, config.ToMap(env), 1)
	if !admin.TLS || admin.SASLUsername != kafka.Admin || admin.SASLPassword == "" {
		t.Fatalf("Stack's Kafka settings %+v: want TLS and the admin's SCRAM credentials", config.Redacted(admin))
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if !RealBroker() {
		open, err := kafka.NewClient(kafka.Config{Brokers: admin.Brokers}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
		defer cancelShort()
		if err := open.Ping(short); err == nil {
			t.Error("a client with the brokers alone reached the test's broker")
		}
		open.Close()
	}

	ds := Name(t, "ds")
	raw, clean := kafka.Topic(kafka.Raw, ds), kafka.Topic(kafka.Clean, ds)
	cl, err := kafka.NewClient(admin, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, admin, raw, clean); err != nil {
		t.Fatal(err)
	}

	cleaner := KafkaConfig(t, config.ToMap(As(env, "cleaner")), 1)
	if cleaner.SASLUsername != "cleaner" {
		t.Fatalf("As(env, cleaner) connects as %q", cleaner.SASLUsername)
	}
	svc, err := kafka.NewClient(cleaner, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for topic, want := range map[string]error{clean: nil, raw: kerr.TopicAuthorizationFailed} {
		err := svc.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
		if !errors.Is(err, want) {
			t.Errorf("the cleaner producing to %s: %v, want %v", topic, err, want)
		}
	}
}

// PlaintextKafka, the opt-out, is open to a client with the brokers alone,
// and As leaves a plaintext environment as it is.
func TestPlaintextKafkaIsOpen(t *testing.T) {
	k := PlaintextKafka(t)
	cfg := k.ClientConfig(kafka.Admin)
	if cfg.TLS || cfg.SASLMechanism != "" {
		t.Fatalf("plaintext broker's settings %+v", cfg)
	}
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(t.Context()); err != nil {
		t.Errorf("a client with the brokers alone: %v", err)
	}
	env := KafkaEnv(cfg)
	if got := config.ToMap(As(env, "cleaner")); got["KAFKA_SASL_USERNAME"] != "" || got["KAFKA_TLS"] != "false" {
		t.Errorf("As on a plaintext environment = %v, want it unchanged: %v", got, env)
	}
}
