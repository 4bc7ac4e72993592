package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

func TestRewrittenBaseIsLaterThanTheOldVersion(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := checkpoint{Base: base, Records: 1000}
	tests := map[string]struct {
		mtime, want time.Time
	}{
		"modified later":          {base.Add(time.Hour + 1500), base.Add(time.Hour + 1000)},
		"modified as the old one": {base, base.Add(1000 * time.Microsecond)},
		"clock set back":          {base.Add(-time.Hour), base.Add(1000 * time.Microsecond)},
		"modified within the old": {base.Add(10 * time.Microsecond), base.Add(1000 * time.Microsecond)},
	}
	for name, tc := range tests {
		if got := rewrittenBase(old, tc.mtime); !got.Equal(tc.want) {
			t.Errorf("%s: rewrittenBase(%+v, %v) = %v, want %v", name, old, tc.mtime, got, tc.want)
		}
	}
}

// A record larger than the broker takes, in the middle of a file of a
// watched directory, is one dead letter naming its file, line, size and
// the limit, keeping a bounded part of it; the file's other records and the
// file after it flow.
func TestAnOversizedRecordIsADeadLetterAndTheDirectoryGoesOn(t *testing.T) {
	dir := t.TempDir()
	big := fmt.Sprintf(`{"id":"2","city":"%s"}`, strings.Repeat("x", 2<<20))
	write(t, filepath.Join(dir, "a.ndjson"), "{\"id\":\"1\"}\n"+big+"\n{\"id\":\"3\"}\n")
	write(t, filepath.Join(dir, "b.csv"), "id,age\n4,40\n")
	_, k, registry := startExtractor(t, "EXTRACTOR_FILES=users="+dir, "EXTRACTOR_SCAN_INTERVAL=100ms")

	recs := testkit.Consume(t, k.Brokers(), "raw.users", 3)
	if ids := rawIDs(t, registry, recs); fmt.Sprint(slices.Sorted(slices.Values(ids))) != "[1 3 4]" {
		t.Errorf("raw ids %v, want [1 3 4]", ids)
	}
	dead := testkit.Consume(t, k.Brokers(), "dlq.users", 1)[0]
	a := filepath.Join(dir, "a.ndjson")
	reason := kafka.Header(dead, stage.HeaderReason)
	if src, line := kafka.Header(dead, stage.HeaderSourceTopic), kafka.Header(dead, stage.HeaderSourceOffset); src != "file:"+a || line != "2" ||
		!strings.HasPrefix(reason, "line 2: record too large") || !strings.Contains(reason, "takes at most 1000012") {
		t.Errorf("dead letter from %s line %s, reason %q; want line 2 of %s, too large, with the limit", src, line, reason, a)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[schemas.DeadLetter](t.Context(), reg, "dlq.users", schemas.MustSchema("deadletter"))
	if err != nil {
		t.Fatal(err)
	}
	var dl schemas.DeadLetter
	if err := codec.Decode(dead.Value, &dl); err != nil {
		t.Fatal(err)
	}
	if len(dl.Value) != maxDeadBytes || !bytes.HasPrefix(dl.Value, []byte(`{"city":"xxx`)) {
		t.Errorf("the dead letter keeps %d bytes starting %.20q, want the first %d of the record", len(dl.Value), dl.Value, maxDeadBytes)
	}
}

// The "done" line of a file counts every record of it, the readable ones
// and the dead-lettered ones.
func TestTheDoneLogCountsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.csv"), "id,age\n1,30\n2,\"4\"0\n3,50\n4,60\n")
	k := testkit.KafkaCluster(t)
	kcfg := kafka.Config{Brokers: k.Brokers(), Partitions: 3, ReplicationFactor: -1}
	admin, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(t.Context(), admin, kcfg, kafka.PipelineTopics("users")...); err != nil {
		t.Fatal(err)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	src, err := newSource(t.Context(), reg, schemas.BuiltIn(), "users")
	if err != nil {
		t.Fatal(err)
	}
	out := &publisher{
		connect: func() (*kgo.Client, error) {
			return kafka.NewClient(kcfg, zap.NewNop(), kgo.TransactionalID("done-log-test"))
		},
		timeout: 10 * time.Second, bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"}),
	}
	defer out.close()
	core, logs := observer.New(zap.InfoLevel)
	counter := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "n"}, []string{"dataset"})
	}
	files := &fileSource{
		log: zap.New(core), kafka: kcfg, out: out, sources: map[string]*source{"users": src},
		patterns: []pattern{{"users", dir}}, batch: 2, interval: 100 * time.Millisecond, terminal: io.Discard,
		ready: func(bool, string) {}, records: counter(), dead: counter(), done: counter(),
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- files.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("file source: %v", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lines := logs.FilterMessage("done").AllUntimed(); len(lines) > 0 {
			if f := lines[0].ContextMap(); f["what"] != "a.csv" || f["records"] != int64(4) {
				t.Errorf("logged done %v, want a.csv with 4 records", f)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no done line within 30 s; logged %d lines, the last %v", logs.Len(), logs.All()[logs.Len()-1].Message)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A body with records that lack the key is refused whole, naming them; a
// record larger than the broker takes is refused with 413, not 503: sending
// it again would not help.
func TestIngestRefusesKeylessAndOversizedRecords(t *testing.T) {
	base, k, _ := startExtractor(t)
	url := base + "/v1/datasets/users/events"
	var many strings.Builder
	for i := range 14 {
		if i%7 == 0 {
			fmt.Fprintf(&many, "{\"id\":\"%d\"}\n", i)
		} else {
			fmt.Fprintf(&many, "{\"age\":\"%d\"}\n", i)
		}
	}
	tests := map[string]struct {
		body    string
		status  int
		message []string
	}{
		"keyless records": {
			"{\"id\":\"1\"}\n{\"age\":\"31\"}\n{\"id\":\" \"}\n", 400,
			[]string{`2 of 3 records lack the key field "id": line 2, line 3`, "nothing was published"},
		},
		"many keyless records": {
			many.String(), 400,
			[]string{`12 of 14 records lack the key field "id": line 2, line 3, line 4, line 5, line 6, line 7, line 9, line 10, line 11, line 12 and 2 more`},
		},
		"a record too large": {
			`[{"id":"1"},{"id":"2","city":"` + strings.Repeat("x", 2<<20) + `"}]`, 413,
			[]string{"item 2: record too large for the broker", "raw.users takes at most 1000012", "nothing was published"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := post(t, url, "", tc.body)
			msg, _ := body["error"].(string)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, msg, tc.status)
			}
			for _, m := range tc.message {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q, want it to say %q", msg, m)
				}
			}
		})
	}
	// Nothing of the refused bodies was published: the next one is the
	// first record of raw.users.
	if status, body := post(t, url, "", `{"id":"9"}`); status != http.StatusAccepted {
		t.Fatalf("status %d (%v), want 202", status, body)
	}
	testkit.Consume(t, k.Brokers(), "raw.users", 1)
}

// The limit of a topic is its max.message.bytes, when lower than the
// producer's; a topic whose configuration cannot be read gets the
// producer's.
func TestTopicLimitsReadMaxMessageBytes(t *testing.T) {
	k := testkit.KafkaCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	small, large := "50000", "5000000"
	for topic, max := range map[string]*string{"small": &small, "large": &large, "default": nil} {
		var configs map[string]*string
		if max != nil {
			configs = map[string]*string{"max.message.bytes": max}
		}
		if _, err := adm.CreateTopic(t.Context(), 1, 1, configs, topic); err != nil {
			t.Fatal(err)
		}
	}
	got := topicLimits(t.Context(), adm, zap.NewNop(), "small", "large", "default", "missing")
	want := map[string]int{"small": 50000, "large": producerMaxBytes, "default": producerMaxBytes, "missing": producerMaxBytes}
	if !maps.Equal(got, want) {
		t.Errorf("topicLimits = %v, want %v", got, want)
	}
}
