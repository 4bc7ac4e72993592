package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/embedded"
)

// Kafka returns seed brokers for the test. When KAFKA_BROKERS is set (the
// real-broker tier, see scripts/kafka) it returns those brokers; otherwise
// it starts an in-process kfake broker for the test and stops it in
// t.Cleanup. Tests that share a real broker name their topics and groups
// with Name so that runs never collide.
func Kafka(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	return KafkaCluster(t).Brokers()
}

// KafkaCluster always starts an in-process broker, for tests that need to
// reach into the broker (fault injection, group inspection).
func KafkaCluster(t testing.TB) *embedded.Kafka {
	t.Helper()
	k, err := embedded.StartKafka(embedded.KafkaOptions{Partitions: 3})
	if err != nil {
		t.Fatalf("start kafka: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// RealBroker reports whether tests run against an external broker.
func RealBroker() bool { return os.Getenv("KAFKA_BROKERS") != "" }

// Registry starts an in-process schema registry for the test and returns
// its URL.
func Registry(t testing.TB) string {
	t.Helper()
	r, err := embedded.StartRegistry(0)
	if err != nil {
		t.Fatalf("start schema registry: %v", err)
	}
	t.Cleanup(r.Close)
	return r.URL()
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns base suffixed with the test's name and a random tag, a valid
// and unique Kafka topic or group name.
func Name(t testing.TB, base string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := base + "." + unsafeName.ReplaceAllString(t.Name(), "_") + "." + hex.EncodeToString(b[:])
	if len(name) > 240 {
		name = name[len(name)-240:]
	}
	return name
}
