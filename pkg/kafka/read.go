package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// ReadCommitted calls fn, in offset order per partition, for every
// committed record of topic's partitions (all of them when partitions is
// empty) from their start to the end they had when it was called, as a
// read_committed consumer sees them.
//
// The end is the high watermark. Under it, the last entry of a partition
// written by transactions is a transaction marker, which a consumer
// normally never sees: ReadCommitted keeps the markers to know it reached
// the end, and does not pass them to fn. A transaction still open below
// the end holds the read back until it commits or is aborted; its marker
// then lies past the end.
func ReadCommitted(ctx context.Context, cfg Config, log *zap.Logger, topic string, partitions []int32, fn func(*kgo.Record)) error {
	admin, err := NewClient(cfg, log)
	if err != nil {
		return err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if len(partitions) == 0 {
		ends.Each(func(o kadm.ListedOffset) { partitions = append(partitions, o.Partition) })
	}
	next := map[int32]int64{} // partitions still to read → next offset
	end := map[int32]int64{}
	for _, p := range partitions {
		first, ok1 := starts.Lookup(topic, p)
		last, ok2 := ends.Lookup(topic, p)
		if !ok1 || !ok2 {
			return fmt.Errorf("%s has no partition %d", topic, p)
		}
		if err := errors.Join(first.Err, last.Err); err != nil {
			return fmt.Errorf("offsets of %s/%d: %w", topic, p, err)
		}
		if first.Offset < last.Offset {
			next[p], end[p] = first.Offset, last.Offset
		}
	}
	if len(next) == 0 {
		return nil
	}
	assign := map[int32]kgo.Offset{}
	for p, at := range next {
		assign[p] = kgo.NewOffset().At(at)
	}
	cl, err := NewClient(cfg, log, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(next) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		var errs []error
		fetches.EachError(func(_ string, p int32, err error) { errs = append(errs, fmt.Errorf("read %s/%d: %w", topic, p, err)) })
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			p := rec.Partition
			if _, reading := next[p]; !reading {
				return
			}
			if rec.Offset < end[p] && !rec.Attrs.IsControl() {
				fn(rec)
			}
			// Any entry at or past the end, a later write or the marker
			// of a transaction open at the start, proves that nothing
			// below the end is left to read.
			if next[p] = rec.Offset + 1; next[p] >= end[p] {
				delete(next, p)
			}
		})
	}
	return nil
}

// Header returns the value of r's header key, or "" without it.
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
