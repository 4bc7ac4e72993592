package embedded

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
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
}

// Kafka is an in-process Kafka broker speaking the real protocol,
// including transactions and consumer groups.
type Kafka struct {
	cluster *kfake.Cluster
}

// StartKafka starts a one-broker in-process Kafka cluster.
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
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start in-process kafka on port %d: %w", opts.Port, err)
	}
	return &Kafka{cluster: c}, nil
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
