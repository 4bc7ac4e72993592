package kafka_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
)

// secureBroker is a broker with TLS, SCRAM-SHA-512 and the pipeline's
// ACLs: the in-process one or a real one.
type secureBroker interface {
	ClientConfig(principal string) kafka.Config
}

// TestSecurity runs the security checks on the in-process secure broker
// and, in the real-broker tier (KAFKA_BROKERS set: make test-real) or with
// DATAMILL_SECURE_REAL_KAFKA=true (make test-security), on a secure
// Apache Kafka broker it starts with broker.sh start --secure,
// where every denial must also be in the broker's audit trail: the
// authorizer's log, the broker's for a failed authentication.
func TestSecurity(t *testing.T) {
	t.Run("in-process", func(t *testing.T) {
		// kfake closes the connection of a failed authentication
		// without answering it.
		checkSecurity(t, testkit.SecureKafka(t), io.EOF, nil)
	})
	if testkit.SecureRealKafkaWanted() {
		t.Run("apache-kafka", func(t *testing.T) {
			b := testkit.SecureRealKafka(t)
			checkSecurity(t, b, kerr.SaslAuthenticationFailed, func(t *testing.T, log string, want ...string) {
				awaitLog(t, b, log, want...)
			})
		})
	}
}

// audited checks that a line of the broker's log file has every one of
// want; nil where the broker keeps no audit trail.
type audited func(t *testing.T, log string, want ...string)

// The real broker's logs (scripts/kafka/broker.sh).
const (
	authorizerLog = "kafka-authorizer.log"
	brokerLog     = "broker.log"
)

// denied is how the authorizer logs a denial.
func denied(principal, operation string) string {
	return "Principal = " + kafka.Principal(principal) + " is Denied operation = " + operation
}

// checkSecurity shows that every service can do its job on b, and each
// denial with its real error; a wrong password fails with badPassword.
func checkSecurity(t *testing.T, b secureBroker, badPassword error, audit audited) {
	ds := testkit.Name(t, "users")
	topic := func(step string) string { return kafka.Topic(step, ds) }
	cfg := func(principal string) kafka.Config {
		c := b.ClientConfig(principal)
		c.Partitions = 1
		return c
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// Each service does its job, in the pipeline's order: the records
	// the extractor writes reach scored.<dataset> through the stages.
	t.Run("each service does its job", func(t *testing.T) {
		extract(ctx, t, cfg("extractor"), ds)
		for _, s := range []struct{ name, from, to string }{
			{"cleaner", kafka.Raw, kafka.Clean},
			{"loader", kafka.Clean, kafka.Persisted},
			{"scorer", kafka.Persisted, kafka.Scored},
		} {
			transform(ctx, t, cfg(s.name), s.name, ds, topic(s.from), topic(s.to))
		}
		// The cleaner's dedupe state, every stage's control topic.
		for _, s := range []struct{ principal, topic string }{
			{"cleaner", kafka.StateTopic("cleaner", ds)},
			{"cleaner", stage.ControlTopic("cleaner", ds)},
			{"loader", stage.ControlTopic("loader", ds)},
			{"scorer", stage.ControlTopic("scorer", ds)},
			{"extractor", kafka.StateTopic("extractor", "files")},
		} {
			compacted(ctx, t, cfg(s.principal), s.topic)
		}
		consumeInGroup(ctx, t, cfg("lake"), stage.Group("lake", ds), topic(kafka.Raw), 2)
		for _, svc := range kafka.Services() {
			sample(ctx, t, cfg(svc))
		}
		consumeInGroup(ctx, t, cfg("ecometer"), "datamill-ecometer", kafka.EcoSamples, len(kafka.Services()))
	})

	t.Run("a service producing to another's topic", func(t *testing.T) {
		err := produce(ctx, t, cfg("cleaner"), topic(kafka.Raw))
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("cleaner producing to %s: %v, want %v", topic(kafka.Raw), err, kerr.TopicAuthorizationFailed)
		}
		t.Logf("cleaner → %s: %v", topic(kafka.Raw), err)
		if audit != nil {
			audit(t, authorizerLog, denied("cleaner", "WRITE"), "Topic:LITERAL:"+topic(kafka.Raw))
		}
	})

	t.Run("a service joining another's group", func(t *testing.T) {
		group := stage.Group("loader", ds)
		err := joinGroup(ctx, t, cfg("cleaner"), group, topic(kafka.Raw))
		if !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("cleaner joining %s: %v, want %v", group, err, kerr.GroupAuthorizationFailed)
		}
		t.Logf("cleaner in %s: %v", group, err)
		if audit != nil {
			audit(t, authorizerLog, denied("cleaner", "DESCRIBE"), "Group:LITERAL:"+group)
		}
	})

	t.Run("a service using another's transactional id", func(t *testing.T) {
		id := stage.Group("loader", ds) + "-i1"
		// The producer fails for good...
		cl := client(t, cfg("cleaner"), kgo.TransactionalID(id))
		err := cl.BeginTransaction()
		if err == nil {
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: topic(kafka.Clean), Value: []byte("x")}).FirstErr()
		}
		if err == nil {
			t.Fatalf("cleaner produced in a transaction of %s", id)
		}
		t.Logf("cleaner as %s: %v", id, err)
		// ...on the broker's answer to its InitProducerID, which the
		// client's error quotes but does not wrap.
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch = &id, 60000, -1, -1
		resp, err := req.RequestWith(ctx, client(t, cfg("cleaner")))
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			t.Fatalf("cleaner initializing transactional id %s: %v, want %v", id, err, kerr.TransactionalIDAuthorizationFailed)
		}
		if audit != nil {
			audit(t, authorizerLog, denied("cleaner", "DESCRIBE"), "TransactionalId:LITERAL:"+id)
		}
	})

	t.Run("a service creating a topic outside its prefixes", func(t *testing.T) {
		err := kafka.EnsureTopics(ctx, client(t, cfg("lake")), cfg("lake"), topic(kafka.Scored)+".lake")
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("lake creating a scored topic: %v, want %v", err, kerr.TopicAuthorizationFailed)
		}
		if audit != nil {
			audit(t, authorizerLog, denied("lake", "CREATE"), "Topic:LITERAL:"+topic(kafka.Scored)+".lake")
		}
	})

	t.Run("a plaintext client", func(t *testing.T) {
		c := cfg("extractor")
		c.TLS = false
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := client(t, c).Ping(short)
		if err == nil {
			t.Fatal("a client without TLS reached the broker")
		}
		t.Logf("plaintext client: %v", err)
		if audit != nil {
			audit(t, brokerLog, "Failed authentication with /127.0.0.1", "SSL handshake failed")
		}
	})

	t.Run("a wrong password", func(t *testing.T) {
		c := cfg("extractor")
		c.SASLPassword = "not-" + c.SASLPassword
		err := client(t, c).Ping(ctx)
		if !errors.Is(err, badPassword) {
			t.Fatalf("a wrong password: %v, want %v", err, badPassword)
		}
		t.Logf("wrong password: %v", err)
		if audit != nil {
			audit(t, brokerLog, "Failed authentication with /127.0.0.1", "invalid credentials with SASL mechanism SCRAM-SHA-512")
		}
	})

	t.Run("PLAIN without TLS", func(t *testing.T) {
		c := cfg("extractor")
		c.TLS, c.SASLMechanism = false, "PLAIN"
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "KAFKA_SASL_MECHANISM=PLAIN") || !strings.Contains(err.Error(), "KAFKA_TLS=true") {
			t.Fatalf("Validate with PLAIN and no TLS = %v, want an error naming KAFKA_SASL_MECHANISM and KAFKA_TLS", err)
		}
	})
}

func client(t *testing.T, cfg kafka.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kafka.NewClient(cfg, zap.NewNop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(ctx context.Context, t *testing.T, cfg kafka.Config, topic string) error {
	t.Helper()
	return client(t, cfg).ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
}

// extract does what the extractor does: create raw. and dlq., read their
// limits, and write to both in a transaction of its own id.
func extract(ctx context.Context, t *testing.T, cfg kafka.Config, ds string) {
	t.Helper()
	raw, dlq := kafka.Topic(kafka.Raw, ds), kafka.Topic(kafka.DLQ, ds)
	cl := client(t, cfg, kgo.TransactionalID("datamill-extractor-i1"))
	if err := kafka.EnsureTopics(ctx, cl, cfg, raw, dlq); err != nil {
		t.Fatalf("extractor: %v", err)
	}
	if _, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, raw, dlq); err != nil {
		t.Fatalf("extractor: describe the configs of %s and %s: %v", raw, dlq, err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{raw, raw, dlq} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: tp, Value: []byte("event")}).FirstErr(); err != nil {
			t.Fatalf("extractor: produce to %s: %v", tp, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("extractor: commit: %v", err)
	}
}

// transform does what a stage does: create its topics, then consume its
// input in its group and write to its output and dlq. in a transaction
// that commits the group's offsets, until its output has what its input
// had.
func transform(ctx context.Context, t *testing.T, cfg kafka.Config, name, ds, in, out string) {
	t.Helper()
	group := stage.Group(name, ds)
	sess, err := kgo.NewGroupTransactSession(append(opts(t, cfg),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.TransactionalID(group+"-i1"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := kafka.EnsureTopics(ctx, sess.Client(), cfg, in, out, kafka.Topic(kafka.DLQ, ds)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for n := 0; n < 2; {
		fetches := sess.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("%s: consume %s in %s: %v", name, in, group, err)
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Topic: out, Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("%s: produce to %s: %v", name, out, err)
				}
			})
			n++
		})
		if committed, err := sess.End(ctx, kgo.TryCommit); err != nil || !committed {
			t.Fatalf("%s: commit the transaction of %s: committed %v, %v", name, group, committed, err)
		}
	}
}

func opts(t *testing.T, cfg kafka.Config) []kgo.Opt {
	t.Helper()
	o, err := kafka.Opts(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// compacted creates a compacted topic, writes to it and reads it back.
func compacted(ctx context.Context, t *testing.T, cfg kafka.Config, topic string) {
	t.Helper()
	cl := client(t, cfg)
	if err := kafka.EnsureCompacted(ctx, cl, cfg, topic, 1); err != nil {
		t.Fatalf("%s: %v", cfg.SASLUsername, err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("%s: produce to %s: %v", cfg.SASLUsername, topic, err)
	}
	n := 0
	if err := kafka.ReadCommitted(ctx, cfg, zap.NewNop(), topic, nil, func(*kgo.Record) { n++ }); err != nil || n != 1 {
		t.Fatalf("%s: read %s: %d records, %v", cfg.SASLUsername, topic, n, err)
	}
}

// consumeInGroup reads n records of topic in group and commits them.
func consumeInGroup(ctx context.Context, t *testing.T, cfg kafka.Config, group, topic string, n int) {
	t.Helper()
	cl := client(t, cfg, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < n; {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("%s: consume %s in %s: %v", cfg.SASLUsername, topic, group, err)
		}
		got += fetches.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("%s: commit in %s: %v", cfg.SASLUsername, group, err)
	}
}

// sample writes an eco sample as every service does, creating the topic.
func sample(ctx context.Context, t *testing.T, cfg kafka.Config) {
	t.Helper()
	cl := client(t, cfg)
	if err := kafka.EnsureTopics(ctx, cl, cfg, kafka.EcoSamples); err != nil {
		t.Fatalf("%s: %v", cfg.SASLUsername, err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.EcoSamples, Value: []byte(cfg.SASLUsername)}).FirstErr(); err != nil {
		t.Fatalf("%s: produce to %s: %v", cfg.SASLUsername, kafka.EcoSamples, err)
	}
}

// joinGroup tries to consume topic in group and returns the first error.
func joinGroup(ctx context.Context, t *testing.T, cfg kafka.Config, group, topic string) error {
	t.Helper()
	cl := client(t, cfg, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		fetches := cl.PollFetches(short)
		if err := fetches.Err(); err != nil {
			return err
		}
	}
}

// awaitLog waits for a line of the real broker's log file that has every
// one of want.
func awaitLog(t *testing.T, b *testkit.SecureRealBroker, log string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := b.Log(t, log)
		for line := range strings.Lines(text) {
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				t.Logf("%s: %s", log, strings.TrimSpace(line))
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no line with %q:\n%s", log, want, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
