package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/ingest"
)

// ProducerMaxBytes is the largest record batch the producer builds
// (franz-go's default ProducerBatchMaxBytes): a record larger than that
// fails in the client whatever the broker takes.
const ProducerMaxBytes = 1_000_012

// recordOverhead bounds what Kafka counts for a record besides its key,
// value and headers: the header of the batch holding it alone (61 bytes)
// and the record's own lengths, timestamp and attributes.
const recordOverhead = 61 + 64

// MaxDeadBytes bounds the source bytes a dead letter keeps, so that the
// dead letter of a record too large is not too large itself.
const MaxDeadBytes = 64 << 10

// ErrTooLarge: a record is larger than the broker takes for its topic.
var ErrTooLarge = errors.New("record too large for the broker")

// TopicLimits reads max.message.bytes of topics through adm, once at start,
// and returns for each the largest record the extractor publishes to it: the
// smaller of the topic's limit and the producer's. A topic whose limit
// cannot be read gets the producer's, and the reason is logged.
func TopicLimits(ctx context.Context, adm *kadm.Client, log *zap.Logger, topics ...string) map[string]int {
	out := make(map[string]int, len(topics))
	for _, t := range topics {
		out[t] = ProducerMaxBytes
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		log.Warn("topic configurations unreadable; records are held to the producer's limit", zap.Int("limit", ProducerMaxBytes), zap.Error(err))
		return out
	}
	for _, rc := range configs {
		if rc.Err != nil {
			log.Warn("topic configuration unreadable; records are held to the producer's limit", zap.String("topic", rc.Name), zap.Int("limit", ProducerMaxBytes), zap.Error(rc.Err))
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" {
				continue
			}
			if n, err := strconv.Atoi(c.MaybeValue()); err == nil && n > 0 {
				out[rc.Name] = min(n, ProducerMaxBytes)
			}
		}
	}
	return out
}

// recordSize is what Kafka counts of rec against max.message.bytes, at most.
func recordSize(rec *kgo.Record) int {
	n := len(rec.Key) + len(rec.Value) + recordOverhead
	for _, h := range rec.Headers {
		n += len(h.Key) + len(h.Value) + 10 // and two lengths
	}
	return n
}

// fits returns an error wrapping ErrTooLarge, with the sizes, when rec is
// larger than limit.
func fits(rec *kgo.Record, limit int) error {
	if n := recordSize(rec); n > limit {
		return fmt.Errorf("%w: %d bytes, %s takes at most %d (max.message.bytes)", ErrTooLarge, n, rec.Topic, limit)
	}
	return nil
}

// clip keeps at most MaxDeadBytes of b, and at most half of limit, the
// largest dead letter the dead-letter topic takes.
func clip(b []byte, limit int) []byte { return b[:min(len(b), MaxDeadBytes, limit/2)] }

// ValuesOf renders a source record's values as JSON, for a dead letter of a
// record that was read but cannot be published: the source's bytes are
// gone, its values are what it held.
func ValuesOf(rec ingest.Record) []byte {
	b, _ := json.Marshal(rec.Values)
	return b
}
