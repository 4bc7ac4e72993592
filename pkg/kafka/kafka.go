// Package kafka builds franz-go clients from configuration and names the
// topics of the pipeline.
//
// Every datamill process connects through Opts, so TLS, SASL and logging are
// set up in one place. Topics are named <step>.<dataset>: raw.users,
// clean.users, persisted.users, scored.users, dlq.users, plus eco.samples;
// a stage that keeps state per partition writes its changelog to the
// compacted topic _state.<stage>.<dataset>.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/retry"
)

// Config is the Kafka block of every service's configuration.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string `env:"KAFKA_BROKERS" envSeparator:","`
	// TLS enables TLS; the CA, certificate and key files are optional.
	TLS         bool   `env:"KAFKA_TLS" envDefault:"false"`
	TLSCAFile   string `env:"KAFKA_TLS_CA_FILE" envDefault:""`
	TLSCertFile string `env:"KAFKA_TLS_CERT_FILE" envDefault:""`
	TLSKeyFile  string `env:"KAFKA_TLS_KEY_FILE" envDefault:""`
	// SASLMechanism is empty (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASLMechanism string `env:"KAFKA_SASL_MECHANISM" envDefault:""`
	SASLUsername  string `env:"KAFKA_SASL_USERNAME" envDefault:""`
	SASLPassword  string `env:"KAFKA_SASL_PASSWORD" envDefault:"" secret:"true"`
	// Partitions and ReplicationFactor apply to topics datamill creates.
	Partitions        int32 `env:"KAFKA_TOPIC_PARTITIONS" envDefault:"3"`
	ReplicationFactor int16 `env:"KAFKA_REPLICATION_FACTOR" envDefault:"-1"`
}

// Validate checks the fields that depend on each other.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS: at least one broker is needed"))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASLUsername == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_USERNAME is required with KAFKA_SASL_MECHANISM=%s", c.SASLMechanism))
		}
		if strings.EqualFold(c.SASLMechanism, "PLAIN") && !c.TLS {
			errs = append(errs, errors.New("KAFKA_SASL_MECHANISM=PLAIN sends the password in clear: it needs KAFKA_TLS=true"))
		}
	default:
		errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together"))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("KAFKA_TOPIC_PARTITIONS %d: must be at least 1", c.Partitions))
	}
	return errors.Join(errs...)
}

// Opts returns the client options for cfg: seed brokers, TLS, SASL and a zap
// logger. Callers append their own (group, transactional id, ...).
func Opts(cfg Config, log *zap.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.WithLogger(kzap.New(log.Named("kgo"), kzap.Level(kgo.LogLevelWarn))),
	}
	if cfg.TLS {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := mechanism(cfg); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// NewClient returns a client for cfg with extra options applied last.
func NewClient(cfg Config, log *zap.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := Opts(cfg, log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	return cl, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: no PEM certificate found", cfg.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func mechanism(cfg Config) sasl.Mechanism {
	user, pass := cfg.SASLUsername, cfg.SASLPassword
	switch strings.ToUpper(cfg.SASLMechanism) {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return nil
}

// The steps of the pipeline, each the prefix of a topic name.
const (
	Raw       = "raw"
	Clean     = "clean"
	Persisted = "persisted"
	Scored    = "scored"
	DLQ       = "dlq"
)

// EcoSamples is the topic every service publishes its eco samples to.
const EcoSamples = "eco.samples"

// Topic names the topic of a step for a dataset, e.g. Topic(Raw, "users").
func Topic(step, dataset string) string { return step + "." + dataset }

// StateTopic names the compacted changelog of a stage's state for a
// dataset, e.g. StateTopic("cleaner", "users") is _state.cleaner.users.
func StateTopic(stage, dataset string) string { return "_state." + stage + "." + dataset }

// PipelineTopics lists every topic the pipeline uses for the datasets.
func PipelineTopics(datasets ...string) []string {
	topics := []string{EcoSamples}
	for _, ds := range datasets {
		for _, step := range []string{Raw, Clean, Persisted, Scored, DLQ} {
			topics = append(topics, Topic(step, ds))
		}
	}
	return topics
}

// EnsureTopics creates the topics that do not exist yet with cfg's partition
// count and replication factor, and returns once every topic has a leader
// for each partition. Existing topics are left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, cfg Config, topics ...string) error {
	return ensure(ctx, kadm.NewClient(cl), cfg.Partitions, cfg.ReplicationFactor, nil, topics...)
}

// EnsureCompacted makes sure topic exists as a compacted topic with the
// given partition count, creating it if needed; it fails when the topic
// exists with another count, since the records of its keys would then be
// where nobody looks for them.
func EnsureCompacted(ctx context.Context, cl *kgo.Client, cfg Config, topic string, partitions int32) error {
	compact := "compact"
	if err := ensure(ctx, kadm.NewClient(cl), partitions, cfg.ReplicationFactor, map[string]*string{"cleanup.policy": &compact}, topic); err != nil {
		return err
	}
	got, err := Partitions(ctx, cl, topic)
	if err != nil {
		return err
	}
	if got != partitions {
		return fmt.Errorf("topic %s has %d partitions, want %d: delete it or give it %d", topic, got, partitions, partitions)
	}
	return nil
}

// Partitions returns the partition count of an existing topic.
func Partitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	// One topic at a time: asking for a missing topic among others stalls
	// on the client's metadata retries.
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = details[topic].Err
	}
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	return int32(len(details[topic].Partitions)), nil // #nosec G115 -- Kafka's partition count is an int32
}

// ensure creates the topics that do not exist yet and waits for their
// leaders.
func ensure(ctx context.Context, adm *kadm.Client, partitions int32, replication int16, configs map[string]*string, topics ...string) error {
	var resp kadm.CreateTopicResponses
	var err error
	backoff := retry.Backoff{First: 200 * time.Millisecond, Max: 2 * time.Second}
	for attempt := 1; ; attempt++ {
		resp, err = adm.CreateTopics(ctx, partitions, replication, configs, topics...)
		if err == nil || attempt == 10 || !backoff.Wait(ctx, attempt) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return awaitTopics(ctx, adm, topics)
}

// awaitTopics waits until the metadata shows every topic with a leader for
// each of its partitions: a real broker creates topics asynchronously.
func awaitTopics(ctx context.Context, adm *kadm.Client, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		details, err := adm.ListTopics(ctx, topics...)
		missing := ""
		if err == nil {
			for _, topic := range topics {
				d := details[topic]
				if d.Err != nil || len(d.Partitions) == 0 {
					missing = topic
					break
				}
				for _, p := range d.Partitions {
					if p.Leader < 0 {
						missing = topic
					}
				}
			}
			if missing == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %w", missing, errors.Join(ctx.Err(), err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
