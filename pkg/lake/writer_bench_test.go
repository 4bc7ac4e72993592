package lake

import (
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/datamill/datamill/schemas"
)

// usersRows are n users raw records as the extractor makes them: every
// field a short text.
func usersRows(n int) []sample {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	out := make([]sample, n)
	for i := range out {
		id := fmt.Sprintf("u%08d", i)
		rec := map[string]any{
			"id": id, "age": fmt.Sprint(18 + i%60), "gender": []string{"F", "male", "f", "M"}[i%4],
			"country": []string{"France", "DE", "Spain", "it"}[i%4], "city": fmt.Sprintf("City %d", i%500),
			"email": id + "@example.com", "signup_date": "2024-03-" + fmt.Sprint(10+i%18),
			"last_login": "2026/11/" + fmt.Sprint(10+i%18), "account_status": []string{"active", "closed"}[i%2],
			"monthly_spend": fmt.Sprintf("%d,%02d €", i%300, i%100), "event_id": fmt.Sprintf("%064x", i),
			"source": fmt.Sprintf("file:/data/users.csv#%d", i), "ingested_at": at.Add(time.Duration(i) * time.Millisecond),
		}
		out[i] = sample{rec: rec, env: Envelope{Topic: "raw.users", Partition: 0, Offset: int64(i), Timestamp: at, SchemaID: 1, Key: []byte(id)}}
	}
	return out
}

// BenchmarkWriterHeap writes an object of 100,000 users records and
// reports the most live heap the Writer held meanwhile (measured every
// 5,000 rows), the bytes it allocated per row and the object's bytes per
// row.
func BenchmarkWriterHeap(b *testing.B) {
	d, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		b.Fatal(err)
	}
	const n = 100000
	rows := usersRows(n)
	var most uint64
	var size int64
	b.ReportAllocs()
	for b.Loop() {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		out := &counter{w: io.Discard}
		w, err := NewWriter(out, d.Raw)
		if err != nil {
			b.Fatal(err)
		}
		for i, r := range rows {
			if err := w.Write(r.rec, r.env); err != nil {
				b.Fatal(err)
			}
			if i%5000 == 4999 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				most = max(most, ms.HeapAlloc-min(base, ms.HeapAlloc))
			}
		}
		if err := w.Close(Meta{Dataset: "users", Topic: "raw.users"}); err != nil {
			b.Fatal(err)
		}
		size = out.n
	}
	b.ReportMetric(float64(most)/(1<<20), "writer-heap-MiB")
	b.ReportMetric(float64(size)/n, "object-B/row")
}
