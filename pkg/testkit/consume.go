package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
)

// Consume reads exactly n committed records of topic from its start, as a
// read_committed consumer connecting with cfg (the admin's, from Kafka),
// waiting up to 60 s for them; a record beyond the n within a further
// second fails the test.
func Consume(t *testing.T, cfg kafka.Config, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kafka.NewClient(cfg, zap.NewNop(), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: got %d records within 60 s, want %d", topic, len(out), n)
		}
		out = append(out, f.Records()...)
	}
	short, cancelShort := context.WithTimeout(t.Context(), time.Second)
	defer cancelShort()
	if extra := cl.PollFetches(short).Records(); len(extra) > 0 || len(out) > n {
		t.Errorf("%s: %d records beyond the %d expected", topic, len(extra)+len(out)-n, n)
	}
	return out
}
