package main

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
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
