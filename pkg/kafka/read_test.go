package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

func TestReadCommittedStopsAtTheEndAndSkipsAborted(t *testing.T) {
	cfg := testkit.Kafka(t)
	cfg.Partitions = 2
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	topic := testkit.Name(t, "read")
	tx, err := kafka.NewClient(cfg, zap.NewNop(), kgo.TransactionalID(topic+".tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := kafka.EnsureTopics(ctx, tx, cfg, topic); err != nil {
		t.Fatal(err)
	}
	if err := kafka.ReadCommitted(ctx, cfg, zap.NewNop(), topic, nil, func(*kgo.Record) { t.Error("record in an empty topic") }); err != nil {
		t.Fatalf("empty topic: %v", err)
	}
	// Partition 0: a plain record, then a committed transaction, then an
	// aborted one last. Partition 1: one committed transaction.
	plain, err := kafka.NewClient(cfg, zap.NewNop(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("plain")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, end := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			v := fmt.Sprintf("commit-%d", i)
			if end == kgo.TryAbort {
				v = "aborted"
			}
			if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	got := map[int32][]string{}
	if err := kafka.ReadCommitted(ctx, cfg, zap.NewNop(), topic, nil, func(r *kgo.Record) {
		got[r.Partition] = append(got[r.Partition], string(r.Value))
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "map[0:[plain commit-0 commit-2] 1:[commit-1]]" {
		t.Errorf("read %v", got)
	}
	var one []string
	if err := kafka.ReadCommitted(ctx, cfg, zap.NewNop(), topic, []int32{1}, func(r *kgo.Record) { one = append(one, string(r.Value)) }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(one) != "[commit-1]" {
		t.Errorf("partition 1 alone: %v", one)
	}
}

// A transaction open when the read starts holds it back; once it is
// aborted (its marker lies past the end the read started with), the read
// ends with what was committed.
func TestReadCommittedWaitsOutAnOpenTransaction(t *testing.T) {
	cfg := testkit.Kafka(t)
	cfg.Partitions = 1
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	topic := testkit.Name(t, "open")
	tx, err := kafka.NewClient(cfg, zap.NewNop(), kgo.TransactionalID(topic+".tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := kafka.EnsureTopics(ctx, tx, cfg, topic); err != nil {
		t.Fatal(err)
	}
	for i, end := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if end == kgo.TryAbort {
			// Left open while the read starts, aborted a moment later.
			go func() {
				time.Sleep(300 * time.Millisecond)
				_ = tx.EndTransaction(context.Background(), kgo.TryAbort)
			}()
			break
		}
		if err := tx.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := kafka.ReadCommitted(ctx, cfg, zap.NewNop(), topic, nil, func(r *kgo.Record) { got = append(got, string(r.Value)) }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0]" {
		t.Errorf("read %v, want the committed record only", got)
	}
}
