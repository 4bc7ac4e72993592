package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/services/loader/internal/sink"
)

// dataset declares what the loader needs to know of one dataset: its
// table, how a clean record becomes a row, and the persisted record it
// publishes. Everything else is the same for every dataset.
type dataset[Clean, Persisted any] struct {
	table           *sink.Table
	cleanSchema     avro.Schema
	persistedSchema avro.Schema
	row             func(*Clean) sink.Row
	persisted       func(Clean, sink.Action, time.Time) Persisted
	key             func(*Clean) []byte
}

// handler upserts a batch in one database transaction and returns a
// persisted record for every record the table now holds because of it. A
// record the database refuses is rejected with the database's reason; a
// record that changed nothing (same content, or an older event) is counted
// as a duplicate.
func (d *dataset[C, P]) handler(pool *pgxpool.Pool) stage.Handler[C, P] {
	return func(ctx context.Context, batch []stage.Message[C]) (stage.Result[P], error) {
		rows := make([]sink.Row, len(batch))
		for i := range batch {
			rows[i] = d.row(&batch[i].Value)
			o := batch[i].Origin
			rows[i].Origin = fmt.Sprintf("%s/%d/%d", o.Topic, o.Partition, o.Offset)
		}
		var results []sink.Result
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			var err error
			results, err = d.table.Apply(ctx, tx, rows)
			return err
		})
		if err != nil {
			return stage.Result[P]{}, fmt.Errorf("upsert %d %s: %w", len(rows), d.table.Name, err)
		}
		now := time.Now()
		var res stage.Result[P]
		for i, r := range results {
			switch {
			case r.Err != nil:
				res.Rejected = append(res.Rejected, stage.Rejection{Index: i, Reasons: []string{"database: " + r.Err.Error()}})
			case r.Action.Applied():
				res.Outputs = append(res.Outputs, stage.Output[P]{Key: d.key(&batch[i].Value), Value: d.persisted(batch[i].Value, r.Action, now)})
			default:
				res.Duplicates++
			}
		}
		return res, nil
	}
}
