package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/testkit"
)

// After the broker goes away and comes back, the ingest endpoint publishes
// again: a failed transaction does not leave the producer stuck.
func TestIngestRecoversWhenKafkaComesBack(t *testing.T) {
	_, portText, _ := net.SplitHostPort(testkit.FreeAddr(t))
	port, _ := strconv.Atoi(portText)
	dir := t.TempDir()
	k, err := embedded.StartKafka(embedded.KafkaOptions{Port: port, Partitions: 1, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	registry := testkit.Registry(t)
	addr := testkit.FreeAddr(t)
	env := []string{"KAFKA_BROKERS=127.0.0.1:" + portText, "SCHEMA_REGISTRY_URL=" + registry, "HTTP_ADDR=" + addr, "LOG_LEVEL=error", "EXTRACTOR_PUBLISH_TIMEOUT=2s"}
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
	k, err = embedded.StartKafka(embedded.KafkaOptions{Port: port, Partitions: 1, DataDir: dir})
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
