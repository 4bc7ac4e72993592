package testkit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
)

// Kafka returns the admin's (kafka.Admin) client settings on a secure
// broker for the test: TLS with the broker's CA, SASL SCRAM-SHA-512, ACLs
// for every other principal. When KAFKA_BROKERS is set (the real-broker
// tier, see scripts/kafka) the settings are the KAFKA_* variables of the
// environment, the admin's, and each service's user and ACLs are made
// there with the password ServicePassword gives; otherwise it starts an
// in-process broker for the test (KafkaCluster) and stops it in
// t.Cleanup. The partition count is left to the caller. Tests that share
// a real broker name their topics and groups with Name so that runs never
// collide.
func Kafka(t testing.TB) kafka.Config {
	t.Helper()
	if RealBroker() {
		return realKafka(t)
	}
	return KafkaCluster(t).ClientConfig(kafka.Admin)
}

// KafkaCluster always starts an in-process broker, secure as SecureKafka,
// for tests that need to reach into the broker (fault injection, group
// inspection). Its ClientConfig and Env give a principal's settings.
func KafkaCluster(t testing.TB) *embedded.Kafka {
	t.Helper()
	return SecureKafka(t)
}

// PlaintextKafka starts an in-process broker without TLS, SASL or ACLs,
// open to anyone, for the few tests about plaintext itself. Every other
// test takes Kafka or KafkaCluster.
func PlaintextKafka(t testing.TB) *embedded.Kafka {
	t.Helper()
	k, err := embedded.StartKafka(embedded.KafkaOptions{Partitions: 3})
	if err != nil {
		t.Fatalf("start plaintext kafka: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// RealBroker reports whether tests run against an external broker.
func RealBroker() bool { return os.Getenv("KAFKA_BROKERS") != "" }

// realKafka reads the admin's settings from the environment and, on a
// secure broker, sets each service's password and ACLs.
func realKafka(t testing.TB) kafka.Config {
	t.Helper()
	cfg, err := config.Parse[kafka.Config](os.Environ())
	if err != nil {
		t.Fatalf("the real broker's KAFKA_* variables: %v", err)
	}
	cfg.Partitions = 0
	if cfg.SASLUsername == "" {
		return cfg
	}
	if cfg.SASLUsername != kafka.Admin {
		t.Fatalf("KAFKA_SASL_USERNAME %q: the real-broker tier needs the admin's settings, %s", cfg.SASLUsername, kafka.Admin)
	}
	admin, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, svc := range kafka.Services() {
		if err := kafka.SetSCRAMPassword(ctx, admin, svc, ServicePassword(cfg.SASLPassword, svc)); err != nil {
			t.Fatal(err)
		}
		if err := kafka.GrantACLs(ctx, admin, svc); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// ServicePassword is the password of service on a test's secure broker
// whose admin has adminPassword: so the admin's settings are all a test
// passes around, and As derives a service's from them.
func ServicePassword(adminPassword, service string) string {
	mac := hmac.New(sha256.New, []byte(adminPassword))
	mac.Write([]byte(service))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// KafkaEnv returns cfg's client variables as KEY=value: KAFKA_BROKERS,
// KAFKA_TLS, KAFKA_TLS_CA_FILE and KAFKA_SASL_*, each of them, empty when
// unused, and KAFKA_SASL_PASSWORD_FILE empty, so that appended to an
// inherited environment (a child process's, on the real-broker tier) they
// replace its settings.
func KafkaEnv(cfg kafka.Config) []string {
	return []string{
		"KAFKA_BROKERS=" + strings.Join(cfg.Brokers, ","),
		"KAFKA_TLS=" + strconv.FormatBool(cfg.TLS),
		"KAFKA_TLS_CA_FILE=" + cfg.TLSCAFile,
		"KAFKA_SASL_MECHANISM=" + cfg.SASLMechanism,
		"KAFKA_SASL_USERNAME=" + cfg.SASLUsername,
		"KAFKA_SASL_PASSWORD=" + cfg.SASLPassword,
		"KAFKA_SASL_PASSWORD_FILE=",
	}
}

// As returns environ, which holds the admin's Kafka variables (Stack,
// KafkaEnv of Kafka), with the principal switched to service, one of
// kafka.Services: the service then runs as itself, allowed only its ACLs.
// On a plaintext broker environ comes back as it is.
func As(environ []string, service string) []string {
	m := config.ToMap(environ)
	if m["KAFKA_SASL_USERNAME"] != kafka.Admin || m["KAFKA_SASL_PASSWORD"] == "" {
		return environ
	}
	return append(slices.Clone(environ),
		"KAFKA_SASL_USERNAME="+service,
		"KAFKA_SASL_PASSWORD="+ServicePassword(m["KAFKA_SASL_PASSWORD"], service))
}

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

// KafkaConfig returns the Kafka settings that vars, a process's variables
// as config.ToMap gives them (Stack's, say), hold: the brokers, TLS and
// SASL, with partitions for the topics the test creates.
func KafkaConfig(t testing.TB, vars map[string]string, partitions int32) kafka.Config {
	t.Helper()
	environ := make([]string, 0, len(vars))
	for k, v := range vars {
		if strings.HasPrefix(k, "KAFKA_") {
			environ = append(environ, k+"="+v)
		}
	}
	cfg, err := config.Parse[kafka.Config](environ)
	if err != nil {
		t.Fatalf("the test's Kafka variables: %v", err)
	}
	cfg.Partitions, cfg.ReplicationFactor = partitions, -1
	return cfg
}
