package embedded

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
)

func secure(t *testing.T, dir string) *KafkaSecurity {
	t.Helper()
	ca, err := NewCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	sec := &KafkaSecurity{CA: ca, AdminPassword: "admin-pass", Passwords: map[string]string{}}
	for _, svc := range kafka.Services() {
		sec.Passwords[svc] = svc + "-pass"
	}
	return sec
}

// produce writes one record to topic as cfg's principal.
func produce(t *testing.T, cfg kafka.Config, topic string) error {
	t.Helper()
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
}

// ping connects as cfg's principal.
func ping(t *testing.T, cfg kafka.Config) error {
	t.Helper()
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestSecureKafkaKeepsUsersAndACLsAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	sec := secure(t, dir)
	opts := KafkaOptions{Partitions: 1, DataDir: filepath.Join(dir, "data"), Security: sec}
	k, err := StartKafka(opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := k.ClientConfig("extractor")
	cfg.Partitions = 1
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(t.Context(), cl, cfg, "raw.users"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	k.Close()

	// The extractor's password changes; the admin's stays.
	sec.Passwords["extractor"] = "new-extractor-pass"
	opts.Port = 0
	k, err = StartKafka(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := produce(t, k.ClientConfig("extractor"), "raw.users"); err != nil {
		t.Errorf("extractor with its new password after the restart: %v", err)
	}
	old := k.ClientConfig("extractor")
	old.SASLPassword = "extractor-pass"
	if err := ping(t, old); !errors.Is(err, io.EOF) {
		t.Errorf("extractor with its old password after the restart: %v, want the connection closed", err)
	}
	if err := produce(t, k.ClientConfig("cleaner"), "raw.users"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("cleaner writing raw.users after the restart: %v, want %v", err, kerr.TopicAuthorizationFailed)
	}

	// A restart with another admin password is refused, saying why.
	k.Close()
	sec.AdminPassword = "another"
	if _, err := StartKafka(opts); err == nil {
		t.Error("a restart with another admin password started")
	}
}

func TestKafkaEnv(t *testing.T) {
	tests := map[string]struct {
		security *KafkaSecurity
		want     []string
	}{
		"plaintext": {want: []string{"KAFKA_BROKERS"}},
		"secure": {security: secure(t, t.TempDir()), want: []string{
			"KAFKA_BROKERS", "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE", "KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
			"KAFKA_SASL_USERNAME=loader", "KAFKA_SASL_PASSWORD=loader-pass",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			k, err := StartKafka(KafkaOptions{Security: tc.security})
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			env := k.Env("loader")
			if len(env) != len(tc.want) {
				t.Fatalf("Env(loader) = %q, want %d variables %q", env, len(tc.want), tc.want)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(env, func(e string) bool { return e == w || len(e) > len(w) && e[:len(w)+1] == w+"=" }) {
					t.Errorf("Env(loader) = %q, want %s", env, w)
				}
			}
		})
	}
}
