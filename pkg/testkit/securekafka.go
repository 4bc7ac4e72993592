package testkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
)

// Password returns a random password of 32 hex digits.
func Password(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random password: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// SecureKafka starts an in-process broker for the test that speaks TLS
// only (a CA in t.TempDir()), authenticates with SASL SCRAM-SHA-512 and
// authorizes with ACLs: the admin (kafka.Admin) and every service of
// kafka.Services, each with its kafka.ACLs; the admin's password is
// random, each service's is ServicePassword of it. Use ClientConfig or
// Env for a principal's client settings.
func SecureKafka(t testing.TB) *embedded.Kafka {
	t.Helper()
	k, err := embedded.StartKafka(embedded.KafkaOptions{Partitions: 3, Security: KafkaSecurity(t, t.TempDir())})
	if err != nil {
		t.Fatalf("start secure kafka: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// KafkaSecurity returns the security block of a secure in-process broker
// with its CA in dir, a random admin password and the services'
// passwords derived from it (ServicePassword).
func KafkaSecurity(t testing.TB, dir string) *embedded.KafkaSecurity {
	t.Helper()
	ca, err := embedded.NewCA(dir)
	if err != nil {
		t.Fatalf("CA: %v", err)
	}
	sec := &embedded.KafkaSecurity{CA: ca, AdminPassword: Password(t), Passwords: map[string]string{}}
	for _, svc := range kafka.Services() {
		sec.Passwords[svc] = ServicePassword(sec.AdminPassword, svc)
	}
	return sec
}

// SecureRealBroker is a real Apache Kafka broker started by
// scripts/kafka/broker.sh start --secure for one test: a SASL_SSL
// listener, StandardAuthorizer, no access without an ACL, and the
// services' users and ACLs created by the admin.
type SecureRealBroker struct {
	brokers   []string
	caFile    string
	passwords map[string]string // the admin's and each service's
	dir       string
}

// SecureRealKafka starts a secure real broker for the test in
// t.TempDir() and stops it in t.Cleanup. It needs java (17 or newer) and
// the jars of broker.sh fetch: without them it is Unavailable.
func SecureRealKafka(t testing.TB) *SecureRealBroker {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		Unavailable(t, "java 17 or newer, for the real Kafka broker (apt-get install openjdk-17-jre-headless)")
	}
	script := brokerScript()
	dir := filepath.Join(t.TempDir(), "kafka")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	var err error
	// The broker takes a free port and the next one, for its controller,
	// which another process may hold: then another pair is tried.
	for attempt := 1; ; attempt++ {
		port, perr := freePort()
		if perr != nil {
			t.Fatal(perr)
		}
		stdout.Reset()
		stderr.Reset()
		cmd := exec.CommandContext(ctx, script, "start", "--secure", "--port", strconv.Itoa(port), "--dir", dir) // #nosec G204 -- the checkout's own script
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err = cmd.Run(); err == nil || attempt == 3 || !strings.Contains(stderr.String(), "already in use") {
			break
		}
	}
	t.Cleanup(func() {
		out, err := exec.Command(script, "stop", "--dir", dir).CombinedOutput() // #nosec G204 -- the checkout's own script
		if err != nil {
			t.Errorf("stop the secure broker: %v: %s", err, out)
		}
	})
	if err != nil {
		if strings.Contains(stderr.String(), "mvn is needed") {
			Unavailable(t, "the Kafka jars (scripts/kafka/broker.sh fetch needs mvn)")
		}
		t.Fatalf("broker.sh start --secure: %v\n%s", err, stderr.String())
	}
	vars := map[string]string{}
	for line := range strings.Lines(stdout.String()) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			vars[k] = v
		}
	}
	pass, err := os.ReadFile(vars["KAFKA_SASL_PASSWORD_FILE"])
	if err != nil {
		t.Fatalf("the admin's password file of broker.sh start --secure (stdout %q): %v", stdout.String(), err)
	}
	b := &SecureRealBroker{
		brokers: strings.Split(vars["KAFKA_BROKERS"], ","), caFile: vars["KAFKA_TLS_CA_FILE"], dir: dir,
		passwords: map[string]string{kafka.Admin: strings.TrimSpace(string(pass))},
	}
	admin, err := kafka.NewClient(b.ClientConfig(kafka.Admin), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, svc := range kafka.Services() {
		b.passwords[svc] = Password(t)
		if err := kafka.SetSCRAMPassword(ctx, admin, svc, b.passwords[svc]); err != nil {
			t.Fatal(err)
		}
		if err := kafka.GrantACLs(ctx, admin, svc); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// ClientConfig returns principal's client settings: TLS with the broker's
// CA, SCRAM-SHA-512 with principal's password.
func (b *SecureRealBroker) ClientConfig(principal string) kafka.Config {
	return kafka.Config{
		Brokers: b.brokers, TLS: true, TLSCAFile: b.caFile, ReplicationFactor: -1,
		SASLMechanism: "SCRAM-SHA-512", SASLUsername: principal, SASLPassword: b.passwords[principal],
	}
}

// Log returns the broker's log file name: kafka-authorizer.log has the
// authorizer's denials, Kafka's audit trail; broker.log everything else,
// failed authentications among it.
func (b *SecureRealBroker) Log(t testing.TB, name string) string {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(b.dir, name)) // #nosec G304 -- a file of the test's own broker
	if err != nil {
		t.Fatalf("the broker's %s: %v", name, err)
	}
	return string(log)
}

// Dir is the broker's directory (configuration, logs, data).
func (b *SecureRealBroker) Dir() string { return b.dir }

// brokerScript is scripts/kafka/broker.sh of this checkout.
func brokerScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "kafka", "broker.sh")
}

// String names the broker for test logs.
func (b *SecureRealBroker) String() string {
	return fmt.Sprintf("secure Apache Kafka on %s", strings.Join(b.brokers, ","))
}
