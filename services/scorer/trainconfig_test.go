package main

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
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
