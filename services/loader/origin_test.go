package main

import (
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
)

// TestTheSameOffsetOfAnotherKafkaIsNoReplay: a record read again at the
// origin of an applied one (its topic, partition and offset) is a replay
// only when it is that record. The same position in a Kafka that lost its
// topics and filled them again (`datamill dev` restarted, a topic
// recreated) holds another record: its event, already in the table, is
// unchanged, not applied again and published a second time.
func TestTheSameOffsetOfAnotherKafkaIsNoReplay(t *testing.T) {
	pool := migrated(t)
	d, err := newDataset(schemas.BuiltIn(), "users")
	if err != nil {
		t.Fatal(err)
	}
	rec := decoded(t, d, schemas.MustSchema("users/clean"), values(t, clean(1, 1, 30, "FR")))
	first := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	load := func(at time.Time) stage.Result[persisted] {
		t.Helper()
		res, err := d.handler(pool, "loader")(t.Context(), []stage.Message[record]{{
			Value: rec, Origin: stage.Origin{Topic: "clean.users", Partition: 2, Offset: 7, Timestamp: at},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	tests := []struct {
		name       string
		at         time.Time
		applied    bool
		duplicates int
	}{
		{"first", first, true, 0},
		{"replay of the same record", first, true, 0},
		{"same offset, another Kafka", first.Add(time.Hour), false, 1},
	}
	for _, tt := range tests {
		res := load(tt.at)
		if got := len(res.Outputs) == 1 && res.Outputs[0].Value.action.Applied(); got != tt.applied || res.Duplicates != tt.duplicates {
			t.Errorf("%s: applied %v with %d duplicates, want applied %v with %d", tt.name, got, res.Duplicates, tt.applied, tt.duplicates)
		}
	}
}
