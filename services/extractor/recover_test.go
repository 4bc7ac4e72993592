package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/services/extractor/internal/source/files"
)

// After the broker goes away and comes back, the ingest endpoint publishes
// again: a failed transaction does not leave the producer stuck.
func TestIngestRecoversWhenKafkaComesBack(t *testing.T) {
	_, portText, _ := net.SplitHostPort(testkit.FreeAddr(t))
	port, _ := strconv.Atoi(portText)
	dir := t.TempDir()
	sec := testkit.KafkaSecurity(t, t.TempDir())
	k, err := embedded.StartKafka(embedded.KafkaOptions{Port: port, Partitions: 1, DataDir: dir, Security: sec})
	if err != nil {
		t.Fatal(err)
	}
	registry := testkit.Registry(t)
	addr := testkit.FreeAddr(t)
	env := append(k.Env("extractor"), "SCHEMA_REGISTRY_URL="+registry, "HTTP_ADDR="+addr, "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=error", "EXTRACTOR_PUBLISH_TIMEOUT=2s")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, io.Discard) }()
	defer func() { cancel(); <-done }()
	url := "http://" + addr + "/v1/datasets/users/events"
	postStatus := func() int {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"id":"1"}`))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for postStatus() != http.StatusAccepted {
		if time.Now().After(deadline) {
			t.Fatal("never accepted before the outage")
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.Close()
	if s := postStatus(); s != http.StatusServiceUnavailable {
		t.Fatalf("during the outage: %d, want 503", s)
	}
	k, err = embedded.StartKafka(embedded.KafkaOptions{Port: port, Partitions: 1, DataDir: dir, Security: sec})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	deadline = time.Now().Add(60 * time.Second)
	for {
		s := postStatus()
		if s == http.StatusAccepted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d a minute after Kafka came back", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A process killed mid-publish leaves its transaction open, and reading the
// checkpoints (read_committed) waits for it. A restart with the same
// instance id aborts it at once instead of waiting for it to time out.
func TestARestartAbortsTheOpenTransactionItsPredecessorLeft(t *testing.T) {
	k := testkit.Kafka(t)
	registry := testkit.Registry(t)
	kcfg := k
	kcfg.Partitions = 1
	const instance = "fence-test"

	// The predecessor: a transaction on the checkpoint topic, never ended,
	// that the broker would abort only after 10 minutes.
	setup, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	err = kafka.EnsureCompacted(t.Context(), setup, kcfg, files.CheckpointTopic, 1)
	setup.Close()
	if err != nil {
		t.Fatal(err)
	}
	dead, err := kafka.NewClient(kcfg, zap.NewNop(),
		kgo.TransactionalID("datamill-extractor-"+instance), kgo.TransactionTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	if err := dead.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := dead.ProduceSync(t.Context(), &kgo.Record{Topic: files.CheckpointTopic, Key: []byte("left open"), Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "users.csv")
	write(t, file, "id,age\n1,30\n2,40\n")
	env := append(testkit.As(testkit.KafkaEnv(k), "extractor"), "SCHEMA_REGISTRY_URL="+registry,
		"HTTP_ADDR="+testkit.FreeAddr(t), "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=error", "EXTRACTOR_INSTANCE_ID="+instance,
		"EXTRACTOR_FILES=users="+file, "EXTRACTOR_SCAN_INTERVAL=100ms",
	)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("extractor: %v", err)
		}
	})

	// Without the abort, the file would be read after 10 minutes.
	cp := waitCheckpoint(t, kcfg, func(cp files.Checkpoint) bool { return cp.Done })
	if cp.Records != 2 {
		t.Errorf("checkpoint counts %d records, want 2", cp.Records)
	}
	err = kafka.ReadCommitted(t.Context(), kcfg, zap.NewNop(), files.CheckpointTopic, nil, func(r *kgo.Record) {
		if string(r.Key) == "left open" {
			t.Errorf("the predecessor's record at offset %d was committed, not aborted", r.Offset)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
