package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/testkit"
)

// lakeObject is an object to write: the offsets of one partition it holds
// and the range its metadata gives.
type lakeObject struct {
	partition  int32
	start, end int64
	offsets    []int64
}

func testEventID(p int32, o int64) string { return fmt.Sprintf("e-%d-%d", p, o) }

// lakeStore is a lake.Store on an in-process S3 closed with the test.
func lakeStore(t testing.TB) *lake.Store {
	t.Helper()
	s3, err := embedded.StartS3(embedded.S3Options{})
	if err != nil {
		t.Fatalf("start s3: %v", err)
	}
	t.Cleanup(func() { s3.Close() })
	store, err := lake.OpenStore(t.Context(), lake.Config{
		Endpoint: s3.Endpoint(), Bucket: s3.Bucket(), Prefix: "raw", Region: "us-east-1",
		AccessKey: s3.AccessKey(), SecretKey: s3.SecretKey(), SSE: "s3",
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return store
}

// putLakeObject writes o as pkg/lake writes a cut of topic, whose topic id
// is topicID.
func putLakeObject(t testing.TB, store *lake.Store, schema avro.Schema, ds, topic, topicID string, o lakeObject) {
	t.Helper()
	var buf bytes.Buffer
	w, err := lake.NewWriter(&buf, schema)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, off := range o.offsets {
		rec := map[string]any{"event_id": testEventID(o.partition, off), "name": "n"}
		env := lake.Envelope{Topic: topic, Partition: o.partition, Offset: off, Timestamp: at, SchemaID: 1}
		if err := w.Write(rec, env); err != nil {
			t.Fatal(err)
		}
	}
	meta := lake.Meta{Dataset: ds, Topic: topic, TopicID: topicID, Partition: o.partition, Start: o.start, End: o.end, Records: int64(len(o.offsets))}
	if err := w.Close(meta); err != nil {
		t.Fatal(err)
	}
	key := lake.Key("raw", ds, topic, topicID, o.partition, o.start, at)
	if err := store.PutNew(t.Context(), key, &buf, int64(buf.Len()), meta.UserMetadata()); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func TestCheckLakeFindsGapsOverlapsAndStrays(t *testing.T) {
	schema := avro.MustParse(`{"type":"record","name":"raw_test","fields":[
		{"name":"event_id","type":"string"},{"name":"name","type":["null","string"]}]}`)
	kcfg := testkit.Kafka(t)
	cl, err := kafka.NewClient(kcfg, zap.NewNop(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	// The topic of every case: five records in partition 0, three in 1.
	records := map[int32]int64{0: 5, 1: 3}
	whole := func(p int32) lakeObject {
		var offs []int64
		for o := range records[p] {
			offs = append(offs, o)
		}
		return lakeObject{p, 0, records[p], offs}
	}
	tests := map[string]struct {
		objects []lakeObject
		// earlier are objects of an earlier topic of the same name
		// (another topic id): history, not compared with the topic.
		earlier                  []lakeObject
		missing, doubled, strays int
		events                   int
		problems                 []string // a substring of each problem, in order
	}{
		"each record once": {
			objects: []lakeObject{{0, 0, 3, []int64{0, 1, 2}}, {0, 3, 5, []int64{3, 4}}, whole(1)},
			events:  8,
		},
		"a gap": {
			objects:  []lakeObject{{0, 0, 2, []int64{0, 1}}, {0, 3, 5, []int64{3, 4}}, whole(1)},
			missing:  1,
			events:   7,
			problems: []string{"partition 0: a gap [2, 3)", "1 records of", "7 distinct event ids for 8 records"},
		},
		"an overlap": {
			objects:  []lakeObject{{0, 0, 3, []int64{0, 1, 2}}, {0, 2, 5, []int64{2, 3, 4}}, whole(1)},
			doubled:  1,
			events:   8,
			problems: []string{"overlaps", "more than one row"},
		},
		"a row past the topic's end": {
			objects:  []lakeObject{whole(0), {1, 0, 4, []int64{0, 1, 2, 3}}},
			strays:   1,
			events:   9,
			problems: []string{"1 lake rows", "9 distinct event ids for 8 records"},
		},
		"a row outside its object's range": {
			objects:  []lakeObject{{0, 0, 2, []int64{0, 1, 2}}, {0, 2, 5, []int64{3, 4}}, whole(1)},
			events:   8,
			problems: []string{"/0 offset 2, outside its"},
		},
		"objects of an earlier topic of the same name": {
			objects: []lakeObject{whole(0), whole(1)},
			earlier: []lakeObject{{0, 0, 3, []int64{0, 1, 2}}, {0, 3, 9, []int64{3, 4, 5, 6, 7, 8}}, {1, 0, 1, []int64{0}}},
			events:  8,
		},
		"only an earlier topic's objects": {
			earlier:  []lakeObject{whole(0), whole(1)},
			missing:  8,
			problems: []string{"8 records of", "0 distinct event ids for 8 records"},
		},
		"a partition not archived": {
			objects:  []lakeObject{whole(0)},
			missing:  3,
			events:   5,
			problems: []string{"3 records of", "5 distinct event ids for 8 records"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ds := strings.ReplaceAll(testkit.Name(t, "lakecheck"), ".", "_")
			topic := kafka.Topic(kafka.Raw, ds)
			if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 2, -1, nil, topic); err != nil {
				t.Fatalf("create %s: %v", topic, err)
			}
			for p, n := range records {
				for o := range n {
					rec := &kgo.Record{Topic: topic, Partition: p, Value: []byte(testEventID(p, o))}
					if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
						t.Fatalf("produce: %v", err)
					}
				}
			}
			details, err := kadm.NewClient(cl).ListTopics(t.Context(), topic)
			if err != nil {
				t.Fatal(err)
			}
			id := details[topic].ID
			current := hex.EncodeToString(id[:])
			earlier := "0b5e7d2a" + current[8:]
			store := lakeStore(t)
			for _, o := range tc.objects {
				putLakeObject(t, store, schema, ds, topic, current, o)
			}
			for _, o := range tc.earlier {
				putLakeObject(t, store, schema, ds, topic, earlier, o)
			}
			r, err := checkLake(t.Context(), store, "raw", ds, kcfg)
			if err != nil {
				t.Fatalf("checkLake: %v", err)
			}
			if r.EarlierObjects != len(tc.earlier) {
				t.Errorf("checkLake = %s; want %d objects of an earlier topic", r, len(tc.earlier))
			}
			if r.Objects != len(tc.objects)+len(tc.earlier) || r.Records != 8 || r.Missing != tc.missing || r.Doubled != tc.doubled ||
				r.Strays != tc.strays || r.ArchivedEvents != tc.events {
				t.Errorf("checkLake = %s; want %d objects, 8 records, %d distinct events, missing %d, doubled %d, strays %d",
					r, len(tc.objects)+len(tc.earlier), tc.events, tc.missing, tc.doubled, tc.strays)
			}
			if len(r.Problems) != len(tc.problems) {
				t.Fatalf("problems %q, want %d like %q", r.Problems, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.Contains(r.Problems[i], want) {
					t.Errorf("problem %d = %q, want it to say %q", i, r.Problems[i], want)
				}
			}
		})
	}
}
