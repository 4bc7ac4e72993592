package report

import (
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// The dead letters of a dataset are counted by stage and reason, without
// the values reasons quote; a stage's lag is what its group has not
// committed of its input.
func TestStreamsCountsDeadLettersAndLag(t *testing.T) {
	kcfg, registry := testkit.Kafka(t), testkit.Registry(t)
	kcfg.Partitions = 1
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, kcfg, kafka.PipelineTopics("users")...); err != nil {
		t.Fatal(err)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[schemas.DeadLetter](t.Context(), reg, "dlq.users", schemas.MustSchema("deadletter"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i, dl := range []struct{ stage, reason string }{
		{"cleaner", `age: out_of_range ("230")`},
		{"cleaner", `age: out_of_range ("-1")`},
		{"cleaner", `id: missing`},
		{"loader", `users_age_check: 23514 ("1000")`},
	} {
		b, err := codec.Encode(&schemas.DeadLetter{Dataset: "users", Stage: dl.stage, Reasons: []string{dl.reason}, SourceTopic: "raw.users", SourceOffset: int64(i), FailedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "dlq.users", Value: b})
	}
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: "raw.users", Value: []byte{byte(i)}})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The cleaner's group has committed the first 2 of the 5 raw records.
	consumer, err := kafka.NewClient(kcfg, zap.NewNop(), kgo.ConsumerGroup(stage.Group("cleaner", "users")), kgo.ConsumeTopics("raw.users"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var commitErr error
	consumer.CommitOffsetsSync(t.Context(), map[string]map[int32]kgo.EpochOffset{"raw.users": {0: {Epoch: -1, Offset: 2}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
		})
	if commitErr != nil {
		t.Fatal(commitErr)
	}

	s, err := Streams(kcfg, registry, []string{"users"})(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	values := func(id string) map[string]float64 {
		for _, c := range s.Charts {
			if c.ID == id {
				out := map[string]float64{}
				for _, p := range c.Series[0].Points {
					out[p.Label] = p.Y
				}
				return out
			}
		}
		t.Fatalf("no chart %s in %+v", id, s)
		return nil
	}
	if got, want := values("streams-dead-letters-users"), map[string]float64{
		"cleaner: age: out_of_range": 2, "cleaner: id: missing": 1, "loader: users_age_check: 23514": 1,
	}; !maps.Equal(got, want) {
		t.Errorf("dead letters %v, want %v", got, want)
	}
	if got := values("streams-lag"); got["cleaner users"] != 3 {
		t.Errorf("lag %v, want the cleaner 3 records behind", got)
	}
}

// Without a broker, the section says so.
func TestStreamsWithoutKafka(t *testing.T) {
	s, err := Streams(kafka.Config{Brokers: []string{"127.0.0.1:1"}}, "http://127.0.0.1:1", []string{"users"})(t.Context(), nil)
	if err != nil || len(s.Notes) == 0 {
		t.Errorf("Streams without Kafka = %+v, %v; want a note", s, err)
	}
}
