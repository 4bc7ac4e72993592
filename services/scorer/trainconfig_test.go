package main

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

// scorer train builds its clients from the shared settings: against a
// broker that wants SCRAM and a registry that wants a password, its eco
// sample gets through when the settings carry them.
func TestTrainBuildsItsClientsFromTheSharedSettings(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "trainer", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	reg := srfake.NewRegistry(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("sr-user:sr-pass"))))
	srv := httptest.NewServer(reg.Handler())
	t.Cleanup(srv.Close)

	kcfg := kafka.Config{
		Brokers: cluster.ListenAddrs(), Partitions: 1, ReplicationFactor: -1,
		SASLMechanism: "SCRAM-SHA-256", SASLUsername: "trainer", SASLPassword: "s3cret",
	}
	env := []string{
		"KAFKA_BROKERS=" + strings.Join(kcfg.Brokers, ","), "KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
		"KAFKA_SASL_USERNAME=trainer", "KAFKA_SASL_PASSWORD=s3cret", "KAFKA_TOPIC_PARTITIONS=1",
		"SCHEMA_REGISTRY_URL=" + srv.URL, "SCHEMA_REGISTRY_USERNAME=sr-user", "SCHEMA_REGISTRY_PASSWORD=sr-pass", "RUN_ID=sasl",
	}
	if err := run(t.Context(), []string{"scorer", "train", "--csv", usersCSV(t, 300), "--out", t.TempDir()}, env, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}

	registry, err := serde.NewRegistry(serde.Config{RegistryURL: srv.URL, Username: "sr-user", Password: "sr-pass"})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[schemas.EcoSample](t.Context(), registry, kafka.EcoSamples, schemas.MustSchema("ecosample"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop(), kgo.ConsumeTopics(kafka.EcoSamples), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no eco sample of the training within 10 s")
		}
		for _, r := range fetches.Records() {
			var s schemas.EcoSample
			if err := codec.Decode(r.Value, &s); err != nil {
				t.Fatal(err)
			}
			if s.Stage != "train" || s.RunID != "sasl" || s.RecordsIn != 300 {
				t.Errorf("sample %+v", s)
			}
			return
		}
	}
}

// scorer train reads the shared blocks' secrets from <VAR>_FILE, as the
// services do: datamill dev gives only the files.
func TestTrainSettingsReadSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := map[string]struct {
		environ []string
		got     func(trainSettings) string
		want    string
	}{
		"kafka": {
			environ: []string{"KAFKA_BROKERS=127.0.0.1:1", "KAFKA_TLS=true", "KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "KAFKA_SASL_USERNAME=scorer", "KAFKA_SASL_PASSWORD_FILE=" + file("kafka", "k-pass")},
			got:     func(s trainSettings) string { return s.Kafka.SASLPassword },
			want:    "k-pass",
		},
		"registry": {
			environ: []string{"SCHEMA_REGISTRY_URL=http://127.0.0.1:1", "SCHEMA_REGISTRY_USERNAME=u", "SCHEMA_REGISTRY_PASSWORD_FILE=" + file("registry", "r-pass")},
			got:     func(s trainSettings) string { return s.Registry.Password },
			want:    "r-pass",
		},
		"database": {
			environ: []string{"DATABASE_URL_FILE=" + file("database", "postgres://u:p@127.0.0.1:1/db")},
			got:     func(s trainSettings) string { return s.Postgres.URL },
			want:    "postgres://u:p@127.0.0.1:1/db",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := parseTrainSettings(tc.environ)
			if err != nil {
				t.Fatalf("parseTrainSettings(%q): %v", tc.environ, err)
			}
			if got := tc.got(s); got != tc.want {
				t.Errorf("parseTrainSettings(%q): %q, want %q", tc.environ, got, tc.want)
			}
		})
	}
	if _, err := parseTrainSettings([]string{"KAFKA_BROKERS=127.0.0.1:1", "KAFKA_SASL_MECHANISM=PLAIN", "KAFKA_SASL_USERNAME=u"}); err == nil {
		t.Error("parseTrainSettings took PLAIN without TLS")
	}
}
