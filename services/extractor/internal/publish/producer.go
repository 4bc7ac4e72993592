package publish

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
)

// Producer publishes batches of records, each whole or not at all, in
// one Kafka transaction at a time. The sources of a process share one.
//
// A transaction that fails (Kafka unreachable, too slow) may leave its
// client stuck: records in flight to a broker that went away cannot be
// failed safely by an idempotent producer. So the client of a failed
// transaction is dropped and closed in the background, and the next
// publish starts a new one; its transactional id, the same, fences
// whatever the old one left open.
type Producer struct {
	connect func() (*kgo.Client, error)
	timeout time.Duration
	bytes   prometheus.Counter // of the records committed, keys and values

	mu       sync.Mutex
	producer *kgo.Client // nil after a failure, until the next publish
}

// NewProducer returns a producer whose transactional clients connect
// builds, each publish waiting at most timeout, that counts the bytes of
// the records it commits in bytes. It connects on its first use.
func NewProducer(connect func() (*kgo.Client, error), timeout time.Duration, bytes prometheus.Counter) *Producer {
	return &Producer{connect: connect, timeout: timeout, bytes: bytes}
}

// Publish produces recs in one transaction and waits for its commit, at
// most the producer's timeout.
func (p *Producer) Publish(ctx context.Context, recs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ensureProducer(); err != nil {
		return err
	}
	// The transaction runs on its own, so that a stuck client cannot hold
	// the caller past the timeout.
	done := make(chan error, 1)
	cl := p.producer
	go func() { done <- transact(ctx, cl, recs) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("publish %d records: %w", len(recs), ctx.Err())
	}
	if err != nil {
		p.producer = nil
		go func() {
			<-done
			cl.Close()
		}()
		return err
	}
	n := 0
	for _, r := range recs {
		n += len(r.Key) + len(r.Value)
	}
	p.bytes.Add(float64(n))
	return nil
}

// Fence initialises the producer's id, for which the broker aborts at once
// whatever transaction a predecessor with the same transactional id left
// open (a process killed mid-publish). Until then read_committed readers,
// the file checkpoints' among them, wait for that transaction to time out.
func (p *Producer) Fence(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ensureProducer(); err != nil {
		return err
	}
	if _, _, err := p.producer.ProducerID(ctx); err != nil {
		return fmt.Errorf("initialise the transactional producer: %w", err)
	}
	return nil
}

// ensureProducer connects when there is no client; p.mu is held.
func (p *Producer) ensureProducer() error {
	if p.producer != nil {
		return nil
	}
	cl, err := p.connect()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	p.producer = cl
	return nil
}

// Close closes the current client.
func (p *Producer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer != nil {
		p.producer.Close()
		p.producer = nil
	}
}

// transact produces recs in one transaction of cl and commits it.
func transact(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("produce %d records: %w", len(recs), err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit %d records: %w", len(recs), err)
	}
	return nil
}

// ReadState reads the committed records of a source's compacted state
// topic (checkpoints, what was published), creating the topic if need be,
// once the producer has fenced its predecessor: a transaction a killed
// process left open would hold the read up until it timed out.
func (p *Producer) ReadState(ctx context.Context, cfg kafka.Config, log *zap.Logger, topic string, fn func(*kgo.Record)) error {
	if err := p.Fence(ctx); err != nil {
		return err
	}
	cl, err := kafka.NewClient(cfg, log)
	if err != nil {
		return err
	}
	err = kafka.EnsureCompacted(ctx, cl, cfg, topic, 1)
	cl.Close()
	if err != nil {
		return fmt.Errorf("state topic %s: %w", topic, err)
	}
	return kafka.ReadCommitted(ctx, cfg, log, topic, nil, fn)
}
