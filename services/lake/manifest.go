package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// object is one row of the manifest, lake_objects.
type object struct {
	Dataset, Topic string
	TopicID        string // lake.Meta.TopicID
	Partition      int32
	Start, End     int64
	Key            string
	Records, Bytes int64
	// First and Last are the Kafka timestamps of the object's first and
	// last records; Last is zero when unknown (an adopted object the
	// sink did not read to its end).
	First, Last time.Time
	Adopted     bool
	WrittenBy   string
}

// record inserts o into the manifest; a row already there for its topic
// (id and name), partition and start (written by the object's other owner)
// stays as it is.
func record(ctx context.Context, db *pgxpool.Pool, o object) error {
	_, err := db.Exec(ctx, `insert into lake_objects
		(dataset, topic, topic_id, partition, start_offset, end_offset, key, records, bytes,
		 first_timestamp, last_timestamp, adopted, written_by)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		on conflict (topic_id, topic, partition, start_offset) do nothing`,
		o.Dataset, o.Topic, o.TopicID, o.Partition, o.Start, o.End, o.Key, o.Records, o.Bytes,
		nullTime(o.First), nullTime(o.Last), o.Adopted, o.WrittenBy)
	if err != nil {
		return fmt.Errorf("record %s in the manifest: %w", o.Key, err)
	}
	return nil
}

// resume returns where the next object of a partition of the topic with
// id topicID starts by the manifest: the greatest End recorded for that
// id, or false when none is. other says whether the manifest holds objects
// of the partition under another id: a topic of the same name that was
// deleted since, whose offsets mean nothing to the current one.
func resume(ctx context.Context, db *pgxpool.Pool, topic, topicID string, partition int32) (end int64, ok, other bool, err error) {
	var last *int64
	err = db.QueryRow(ctx, `select
		(select max(end_offset) from lake_objects where topic = $1 and topic_id = $2 and partition = $3),
		exists (select 1 from lake_objects where topic = $1 and topic_id <> $2 and partition = $3)`,
		topic, topicID, partition).Scan(&last, &other)
	if err != nil {
		return 0, false, false, fmt.Errorf("manifest end of %s/%d: %w", topic, partition, err)
	}
	if last == nil {
		return 0, false, other, nil
	}
	return *last, true, other, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
