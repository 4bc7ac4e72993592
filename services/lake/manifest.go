package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// object is one row of the manifest, lake_objects.
type object struct {
	Dataset, Topic string
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

// record inserts o into the manifest; a row already there for its topic,
// partition and start (written by the object's other owner) stays as it is.
func record(ctx context.Context, db *pgxpool.Pool, o object) error {
	_, err := db.Exec(ctx, `insert into lake_objects
		(dataset, topic, partition, start_offset, end_offset, key, records, bytes,
		 first_timestamp, last_timestamp, adopted, written_by)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		on conflict (topic, partition, start_offset) do nothing`,
		o.Dataset, o.Topic, o.Partition, o.Start, o.End, o.Key, o.Records, o.Bytes,
		nullTime(o.First), nullTime(o.Last), o.Adopted, o.WrittenBy)
	if err != nil {
		return fmt.Errorf("record %s in the manifest: %w", o.Key, err)
	}
	return nil
}

// resume returns where the next object of a partition starts by the
// manifest: the greatest End recorded, or false when none is.
func resume(ctx context.Context, db *pgxpool.Pool, topic string, partition int32) (int64, bool, error) {
	var end int64
	err := db.QueryRow(ctx, `select end_offset from lake_objects
		where topic = $1 and partition = $2 order by start_offset desc limit 1`, topic, partition).Scan(&end)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("manifest end of %s/%d: %w", topic, partition, err)
	}
	return end, true, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
