package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/schemas"
)

// lakeReport is how a dataset's lake compares with its raw topic.
type lakeReport struct {
	// Prefix is the S3_PREFIX the lake's keys start with.
	Prefix  string `json:"prefix"`
	Objects int    `json:"objects"`
	Bytes   int64  `json:"bytes"`
	// EarlierObjects counts the objects (among Objects) of an earlier
	// topic of the same name: raw.<dataset> deleted and created again has
	// a new topic id and numbers its offsets from 0 again, so these are
	// history, not compared with the topic.
	EarlierObjects int `json:"earlier_objects"`
	// Rows counts the rows of the current topic's objects, ArchivedEvents
	// their distinct event ids.
	Rows           int `json:"rows"`
	ArchivedEvents int `json:"archived_events"`
	// Records counts the committed records of raw.<dataset>.
	Records int `json:"records"`
	// Missing and Doubled count the committed records archived in no
	// object and in more than one; Strays the rows at an offset that holds
	// no committed record.
	Missing int `json:"missing"`
	Doubled int `json:"doubled"`
	Strays  int `json:"strays"`
	// Problems lists every way the lake differs from the topic; empty when
	// it holds each committed record exactly once.
	Problems []string `json:"problems"`
}

func (r lakeReport) String() string {
	earlier := ""
	if r.EarlierObjects > 0 {
		earlier = fmt.Sprintf(", %d of an earlier topic of the same name", r.EarlierObjects)
	}
	return fmt.Sprintf("%d objects (%d bytes%s), %d rows of %d distinct events for %d records in the topic; missing %d, doubled %d, strays %d",
		r.Objects, r.Bytes, earlier, r.Rows, r.ArchivedEvents, r.Records, r.Missing, r.Doubled, r.Strays)
}

// lakeRange is the offset range of one object of one partition.
type lakeRange struct {
	key        string
	start, end int64
}

// partitionOffset names a record of the raw topic.
type partitionOffset struct {
	partition int32
	offset    int64
}

// checkLake reads every object of dataset ds under prefix in store and the
// committed records of raw.<ds>, and says how they differ. Only the objects
// of the topic's current topic id are compared with it (those of an
// earlier topic of the same name are counted in EarlierObjects): per partition
// the objects' [Start, End) ranges must tile it (no gap, no overlap), each
// object's rows lie in its range and number its Records, every committed
// record's offset be archived exactly once and no other offset at all, and
// the distinct event ids archived number the topic's records. An error is
// a failure to read; differences are the report's Problems.
func checkLake(ctx context.Context, store *lake.Store, prefix, ds string, kcfg kafka.Config) (lakeReport, error) {
	var r lakeReport
	add := func(format string, a ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, a...)) }
	topic := kafka.Topic(kafka.Raw, ds)
	archived := map[partitionOffset]int{}
	events := map[string]bool{}
	ranges := map[int32][]lakeRange{}
	topicID, err := currentTopicID(ctx, kcfg, topic)
	if err != nil {
		return r, err
	}
	for obj, err := range store.List(ctx, lake.DatasetPrefix(prefix, ds)) {
		if err != nil {
			return r, err
		}
		r.Objects++
		r.Bytes += obj.Size
		var rowEvents []string
		meta, rows, err := readLakeObject(ctx, store, obj.Key, func(row lake.Row) {
			if id, ok := row.Record[schemas.FieldEventID].(string); ok {
				rowEvents = append(rowEvents, id)
			}
		})
		if err != nil {
			return r, err
		}
		if meta.Topic == topic && meta.TopicID != topicID {
			r.EarlierObjects++
			continue
		}
		r.Rows += len(rows)
		for _, e := range rows {
			archived[partitionOffset{e.Partition, e.Offset}]++
		}
		for _, id := range rowEvents {
			events[id] = true
		}
		if meta.Topic != topic {
			add("%s holds records of %s, not %s", obj.Key, meta.Topic, topic)
			continue
		}
		ranges[meta.Partition] = append(ranges[meta.Partition], lakeRange{obj.Key, meta.Start, meta.End})
		if int64(len(rows)) != meta.Records {
			add("%s has %d rows, its metadata says %d", obj.Key, len(rows), meta.Records)
		}
		for _, e := range rows {
			if e.Topic != meta.Topic || e.Partition != meta.Partition || e.Offset < meta.Start || e.Offset >= meta.End {
				add("%s holds %s/%d offset %d, outside its %s/%d [%d, %d)",
					obj.Key, e.Topic, e.Partition, e.Offset, meta.Topic, meta.Partition, meta.Start, meta.End)
				break
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(ranges)) {
		rs := ranges[p]
		slices.SortFunc(rs, func(a, b lakeRange) int { return cmp.Compare(a.start, b.start) })
		for i := 1; i < len(rs); i++ {
			switch prev, cur := rs[i-1], rs[i]; {
			case prev.end < cur.start:
				add("partition %d: a gap [%d, %d) between %s and %s", p, prev.end, cur.start, prev.key, cur.key)
			case prev.end > cur.start:
				add("partition %d: %s [%d, %d) overlaps %s [%d, %d)", p, prev.key, prev.start, prev.end, cur.key, cur.start, cur.end)
			}
		}
	}

	committed := map[partitionOffset]bool{}
	err = kafka.ReadCommitted(ctx, kcfg, zap.NewNop(), topic, nil, func(rec *kgo.Record) {
		committed[partitionOffset{rec.Partition, rec.Offset}] = true
	})
	if err != nil {
		return r, fmt.Errorf("read %s: %w", topic, err)
	}
	r.Records = len(committed)
	r.ArchivedEvents = len(events)
	for po := range committed {
		switch n := archived[po]; {
		case n == 0:
			r.Missing++
		case n > 1:
			r.Doubled++
		}
	}
	for po := range archived {
		if !committed[po] {
			r.Strays++
		}
	}
	if r.Missing > 0 {
		add("%d records of %s are in no lake object", r.Missing, topic)
	}
	if r.Doubled > 0 {
		add("%d records of %s are in more than one row of the lake", r.Doubled, topic)
	}
	if r.Strays > 0 {
		add("%d lake rows are at offsets of %s that hold no committed record", r.Strays, topic)
	}
	if r.ArchivedEvents != r.Records {
		add("the lake holds %d distinct event ids for %d records of %s", r.ArchivedEvents, r.Records, topic)
	}
	return r, nil
}

// currentTopicID returns the topic id of topic, in hex as lake.Meta has it.
func currentTopicID(ctx context.Context, kcfg kafka.Config, topic string) (string, error) {
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		return "", err
	}
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		return "", fmt.Errorf("topic id of %s: %w", topic, err)
	}
	id := details[topic].ID
	return hex.EncodeToString(id[:]), nil
}

// readLakeObject opens the object at key, passes each row to fn and
// returns its metadata and where each row was.
func readLakeObject(ctx context.Context, store *lake.Store, key string, fn func(lake.Row)) (lake.Meta, []lake.Envelope, error) {
	ra, size, err := store.Get(ctx, key)
	if err != nil {
		return lake.Meta{}, nil, err
	}
	if c, ok := ra.(io.Closer); ok {
		defer c.Close()
	}
	f, err := lake.Open(ra, size)
	if err != nil {
		return lake.Meta{}, nil, fmt.Errorf("open %s: %w", key, err)
	}
	var rows []lake.Envelope
	for row, err := range f.Rows() {
		if err != nil {
			return f.Meta, rows, fmt.Errorf("read %s: %w", key, err)
		}
		rows = append(rows, row.Envelope)
		fn(row)
	}
	return f.Meta, rows, nil
}
