package pg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
)

// own holds pkg/pg's own migrations: the tables every service shares.
//
//go:embed migrations/*.sql
var own embed.FS

// ownComponent is the component pkg/pg's own migrations are recorded as.
const ownComponent = "datamill"

func ownMigrations() (fs.FS, error) { return fs.Sub(own, "migrations") }

// Batch is the part of a batch read from one partition: its row of
// datamill_batches.
type Batch struct {
	// Stage names the service that wrote the batch (loader, scorer, ecometer).
	Stage string
	// Topic and Partition the records were read from, FirstOffset and
	// LastOffset the first and last of their offsets.
	Topic                   string
	Partition               int32
	FirstOffset, LastOffset int64
	// Rows is how many records of the batch came from the partition.
	Rows int
}

// Batches groups the offsets of a batch's records by topic and partition
// into Batch rows, in the order each partition first appears. origin(i)
// is where the i-th of n records was read.
func Batches(stage string, n int, origin func(i int) (topic string, partition int32, offset int64)) []Batch {
	type tp struct {
		topic     string
		partition int32
	}
	index := map[tp]int{}
	var out []Batch
	for i := range n {
		topic, partition, offset := origin(i)
		k := tp{topic, partition}
		j, ok := index[k]
		if !ok {
			index[k] = len(out)
			out = append(out, Batch{Stage: stage, Topic: topic, Partition: partition, FirstOffset: offset, LastOffset: offset})
			j = len(out) - 1
		}
		b := &out[j]
		b.FirstOffset, b.LastOffset = min(b.FirstOffset, offset), max(b.LastOffset, offset)
		b.Rows++
	}
	return out
}

// AuditBatch inserts the rows of batches into datamill_batches in tx, the
// transaction that writes the batch, so that the audit holds a batch
// exactly when the database holds its writes. The role and the time are
// the database's (current_user, now()), not the caller's to say.
func AuditBatch(ctx context.Context, tx pgx.Tx, batches ...Batch) error {
	if len(batches) == 0 {
		return nil
	}
	var (
		stages, topics []string
		partitions     []int32
		firsts, lasts  []int64
		rows           []int32
	)
	for _, b := range batches {
		stages, topics, partitions = append(stages, b.Stage), append(topics, b.Topic), append(partitions, b.Partition)
		firsts, lasts, rows = append(firsts, b.FirstOffset), append(lasts, b.LastOffset), append(rows, int32(b.Rows)) // #nosec G115 -- a batch holds far fewer than 2^31 records
	}
	_, err := tx.Exec(ctx, `insert into datamill_batches (stage, topic, partition, first_offset, last_offset, rows)
		select * from unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::int[])`,
		stages, topics, partitions, firsts, lasts, rows)
	if err != nil {
		return fmt.Errorf("audit %d batch rows of %s: %w", len(batches), batches[0].Stage, err)
	}
	return nil
}
