package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

// The commands read the services' KAFKA_* variables: on a broker with TLS,
// SCRAM and ACLs, the admin's credentials (its password from a file)
// produce, tail and reset; the brokers alone do not get in.
func TestCommandsReachASecureBroker(t *testing.T) {
	k := testkit.SecureKafka(t)
	admin := k.ClientConfig(kafka.Admin)
	passFile := filepath.Join(t.TempDir(), "admin.password")
	if err := os.WriteFile(passFile, []byte(admin.SASLPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	registry := "SCHEMA_REGISTRY_URL=" + testkit.Registry(t)
	env := []string{
		"KAFKA_BROKERS=" + strings.Join(admin.Brokers, ","), "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + admin.TLSCAFile,
		"KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "KAFKA_SASL_USERNAME=admin", "KAFKA_SASL_PASSWORD_FILE=" + passFile, registry,
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	input := writeInput(t, "users.csv", "id,age\n1,30\n2,40\n")
	cl, err := kafka.NewClient(admin, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin.Partitions = 1
	if err := kafka.EnsureTopics(ctx, cl, admin, "raw.users"); err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	if err := run(ctx, []string{"produce", "users", input}, env, &out, &out); err != nil {
		t.Fatalf("produce as the admin: %v: %s", err, out.String())
	}
	wantAll(t, "produce's output", out.String(), "published 2 users records to raw.users")

	out.Reset()
	if err := run(ctx, []string{"tail", "raw.users", "--from-beginning", "--max", "2", "--idle", "20s"}, env, &out, &out); err != nil {
		t.Fatalf("tail as the admin: %v: %s", err, out.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("tail printed %d lines, want the 2 records:\n%s", n, out.String())
	}

	// Without credentials, produce is refused and publishes nothing.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Second)
	defer cancelShort()
	out.Reset()
	anonymous := []string{"KAFKA_BROKERS=" + strings.Join(admin.Brokers, ","), "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + admin.TLSCAFile, registry}
	if err := run(short, []string{"produce", "users", input}, anonymous, &out, &out); err == nil {
		t.Errorf("produce without credentials succeeded: %s", out.String())
	}

	cfg, err := cliKafka(map[string]string{
		"KAFKA_BROKERS": strings.Join(admin.Brokers, ","), "KAFKA_TLS": "true",
		"KAFKA_TLS_CA_FILE": admin.TLSCAFile, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "admin", "KAFKA_SASL_PASSWORD_FILE": passFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := resetPipeline(ctx, cfg, "users"); err != nil {
		t.Fatalf("reset the pipeline as the admin: %v", err)
	}
	listed, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listed.Has("raw.users") {
		t.Error("raw.users is still there after the reset")
	}
}
