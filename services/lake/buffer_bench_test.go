package main

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// bufferSink is a sink that only buffers: its limits are never reached,
// so that offer never cuts and needs neither a broker nor a store.
func bufferSink(partitions int32) *sink {
	s := &sink{
		dataset: "users", log: zap.NewNop(), metrics: newMetrics(prometheus.NewRegistry()),
		cfg:       sinkConfig{MaxRecords: 1 << 30, MaxBytes: 1 << 40, FlushInterval: time.Hour},
		maxBuffer: 1 << 40,
		parts:     map[int32]*partition{},
	}
	for p := range partitions {
		s.parts[p] = &partition{start: -1, grew: time.Now()}
	}
	return s
}

// rawRecords are n records of partitions round robin, all in one hour,
// with keys and values of the sizes of a users raw record.
func rawRecords(n int, partitions int32) []*kgo.Record {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		key, value := make([]byte, 16), make([]byte, 240)
		key[0], value[0] = byte(i), byte(i)
		p := int32(i) % partitions
		recs[i] = &kgo.Record{Partition: p, Offset: int64(i) / int64(partitions), Timestamp: at.Add(time.Duration(i) * time.Millisecond), Key: key, Value: value}
	}
	return recs
}

// buffer offers recs to s and returns the growth of the live heap and the
// allocations it took.
func buffer(tb testing.TB, s *sink, recs []*kgo.Record) (heap, mallocs uint64) {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, r := range recs {
		if err := s.offer(tb.Context(), nil, r.Partition, r); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc), after.Mallocs - before.Mallocs
}

// BenchmarkBufferRecords buffers 20,000 records of about 256 bytes in six
// partitions and reports the live heap they take per byte of keys and
// values and per byte counted against LAKE_MAX_BUFFER, and the
// allocations per record.
func BenchmarkBufferRecords(b *testing.B) {
	const n = 20000
	recs := rawRecords(n, 6)
	var payload int
	for _, r := range recs {
		payload += len(r.Key) + len(r.Value)
	}
	var heap, mallocs uint64
	var counted int
	b.ReportAllocs()
	for b.Loop() {
		s := bufferSink(6)
		h, m := buffer(b, s, recs)
		heap += h
		mallocs += m
		counted += s.buffered
	}
	runs := float64(b.N)
	b.ReportMetric(float64(heap)/runs/float64(payload), "heap-B/payload-B")
	b.ReportMetric(float64(heap)/float64(counted), "heap-B/counted-B")
	b.ReportMetric(float64(mallocs)/runs/n, "mallocs/record")
}

// BenchmarkSpool writes the object of 20,000 buffered users records to a
// spool file and reports the bytes and allocations per record: the
// garbage of a cut, which sets how often the collector runs and how far
// the heap grows meanwhile.
func BenchmarkSpool(b *testing.B) {
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(b)})
	if err != nil {
		b.Fatal(err)
	}
	d, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		b.Fatal(err)
	}
	topic := kafka.Topic(kafka.Raw, "users")
	codec, err := serde.NewCodec[map[string]any](b.Context(), reg, topic, d.Raw)
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	var recs records
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("u%08d", i)
		v, err := codec.Encode(&map[string]any{
			"id": id, "age": "42", "gender": "F", "country": "France", "city": fmt.Sprintf("City %d", i%500),
			"email": id + "@example.com", "signup_date": "2024-03-10", "last_login": "2026/11/12",
			"account_status": "active", "monthly_spend": "12,50 €", "event_id": fmt.Sprintf("%064x", i),
			"source": fmt.Sprintf("file:/data/users.csv#%d", i), "ingested_at": at,
		})
		if err != nil {
			b.Fatal(err)
		}
		r := buffered{offset: int64(i), ts: at, key: []byte(id), value: v}
		var c []byte
		if !recs.fits(r.size()) {
			c = recs.newChunk(r.size(), maxChunk)
		}
		recs.add(r, c)
	}
	s := bufferSink(1)
	s.codec, s.cfg.SpoolDir = codec, b.TempDir()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		meta := lake.Meta{Dataset: "users", Topic: topic, Partition: 0, Start: 0, End: n, Schema: codec.Schema()}
		f, _, err := s.spool(&recs, &meta)
		if err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	runtime.ReadMemStats(&after)
	records := float64(b.N) * n
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/records, "B/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/records, "allocs/record")
}
