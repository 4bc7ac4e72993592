package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
)

// KafkaOptions configures StartKafka.
type KafkaOptions struct {
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int
	// Partitions is the partition count of topics created without one.
	Partitions int32
	// DataDir, when set, persists the broker's log there so a restart
	// keeps the data; empty keeps everything in memory.
	DataDir string
	// Security, when set, makes the broker secure; nil keeps it
	// plaintext, open to anyone.
	Security *KafkaSecurity
}

// KafkaSecurity makes the in-process broker speak TLS only, with a
// certificate from CA, and authenticate every client with SASL
// SCRAM-SHA-512: the admin (kafka.Admin) as a super user, each service of
// kafka.Services as itself, allowed only its kafka.ACLs.
type KafkaSecurity struct {
	CA            *CA
	AdminPassword string
	// Passwords holds the password of each service.
	Passwords map[string]string
}

// Kafka is an in-process Kafka broker speaking the real protocol,
// including transactions and consumer groups.
type Kafka struct {
	cluster  *kfake.Cluster
	security *KafkaSecurity
}

// StartKafka starts a one-broker in-process Kafka cluster.
//
// A secure broker with a DataDir keeps its users and ACLs there; at a
// restart the admin must have the password it had when the directory was
// made, and each service's password and ACLs are set again, so changed
// ones take effect.
func StartKafka(opts KafkaOptions) (*Kafka, error) {
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(opts.Port),
		// Tests use short sessions so that a killed member is noticed fast.
		kfake.GroupMinSessionTimeout(500 * time.Millisecond),
	}
	if opts.Partitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(int(opts.Partitions)))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	if opts.Security != nil {
		sec, err := opts.Security.options()
		if err != nil {
			return nil, err
		}
		kopts = append(kopts, sec...)
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start in-process kafka on port %d: %w", opts.Port, err)
	}
	k := &Kafka{cluster: c, security: opts.Security}
	if opts.Security != nil && opts.DataDir != "" {
		if err := k.reseed(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return k, nil
}

// scram is the one SASL mechanism of a secure broker.
const scram = "SCRAM-SHA-512"

// options are the kfake options of s: TLS, SCRAM users, ACLs.
func (s *KafkaSecurity) options() ([]kfake.Opt, error) {
	if s.CA == nil || s.AdminPassword == "" {
		return nil, errors.New("secure kafka: a CA and the admin's password are needed")
	}
	tc, err := s.CA.ServerTLS("kafka")
	if err != nil {
		return nil, fmt.Errorf("secure kafka: %w", err)
	}
	opts := []kfake.Opt{
		kfake.TLS(tc),
		kfake.EnableSASL(),
		kfake.EnableACLs(),
		kfake.Superuser(scram, kafka.Admin, s.AdminPassword),
	}
	for _, svc := range kafka.Services() {
		pass := s.Passwords[svc]
		if pass == "" {
			return nil, fmt.Errorf("secure kafka: no password for %s", svc)
		}
		acls, err := fakeACLs(kafka.ACLs(svc))
		if err != nil {
			return nil, fmt.Errorf("secure kafka: %w", err)
		}
		opts = append(opts, kfake.User(scram, svc, pass, acls...))
	}
	return opts, nil
}

// fakeACLs converts ACLs for kfake.
func fakeACLs(acls []kafka.ACL) ([]kfake.ACL, error) {
	out := make([]kfake.ACL, 0, len(acls))
	for _, a := range acls {
		rt, pattern, op, err := a.Kmsg()
		if err != nil {
			return nil, err
		}
		out = append(out, kfake.ACL{Resource: rt, Name: a.Name, Pattern: pattern, Operation: op, Allow: true})
	}
	return out, nil
}

// reseed sets, as the admin, each service's password and ACLs: a broker
// restarted from its DataDir keeps the users and ACLs it was made with.
func (k *Kafka) reseed() error {
	cfg := k.ClientConfig(kafka.Admin)
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("secure kafka: connect as %s (is it the admin password the data directory was made with?): %w", kafka.Admin, err)
	}
	for _, svc := range kafka.Services() {
		if err := kafka.SetSCRAMPassword(ctx, cl, svc, k.security.Passwords[svc]); err != nil {
			return fmt.Errorf("secure kafka: %w", err)
		}
		if err := kafka.GrantACLs(ctx, cl, svc); err != nil {
			return fmt.Errorf("secure kafka: %w", err)
		}
	}
	return nil
}

// Secure reports whether the broker is TLS and SASL only.
func (k *Kafka) Secure() bool { return k.security != nil }

// ClientConfig returns the Kafka configuration of principal (kafka.Admin
// or one of kafka.Services): on a secure broker TLS with the CA and SCRAM
// with principal's password, on a plaintext one the brokers alone. The
// partition count is left to the caller.
func (k *Kafka) ClientConfig(principal string) kafka.Config {
	cfg := kafka.Config{Brokers: k.Brokers(), ReplicationFactor: -1}
	if k.security == nil {
		return cfg
	}
	cfg.TLS, cfg.TLSCAFile = true, k.security.CA.CertFile()
	cfg.SASLMechanism, cfg.SASLUsername = scram, principal
	cfg.SASLPassword = k.security.Passwords[principal]
	if principal == kafka.Admin {
		cfg.SASLPassword = k.security.AdminPassword
	}
	return cfg
}

// Env returns the client variables of principal (see ClientConfig), as
// KEY=value for a process's environment.
func (k *Kafka) Env(principal string) []string {
	cfg := k.ClientConfig(principal)
	env := []string{"KAFKA_BROKERS=" + strings.Join(cfg.Brokers, ",")}
	if !cfg.TLS {
		return env
	}
	return append(env,
		"KAFKA_TLS=true",
		"KAFKA_TLS_CA_FILE="+cfg.TLSCAFile,
		"KAFKA_SASL_MECHANISM="+cfg.SASLMechanism,
		"KAFKA_SASL_USERNAME="+cfg.SASLUsername,
		"KAFKA_SASL_PASSWORD="+cfg.SASLPassword,
	)
}

// Brokers returns the broker addresses, host:port.
func (k *Kafka) Brokers() []string { return k.cluster.ListenAddrs() }

// Cluster exposes the fake cluster for tests that inject faults.
func (k *Kafka) Cluster() *kfake.Cluster { return k.cluster }

// Close stops the broker.
func (k *Kafka) Close() { k.cluster.Close() }

// Registry is an in-process Confluent-API schema registry.
type Registry struct {
	reg *srfake.Registry
	srv *http.Server
	url string
}

// StartRegistry serves a schema registry on 127.0.0.1:port (0 picks a free
// port).
func StartRegistry(port int) (*Registry, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("start schema registry on port %d: %w", port, err)
	}
	reg := srfake.NewRegistry()
	srv := &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &Registry{reg: reg, srv: srv, url: "http://" + ln.Addr().String()}, nil
}

// URL is the registry's base URL.
func (r *Registry) URL() string { return r.url }

// Close stops serving.
func (r *Registry) Close() {
	_ = r.srv.Close()
	r.reg.Close()
}
