package files

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/extractor/internal/publish"
)

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRewrittenBaseIsLaterThanTheOldVersion(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := Checkpoint{Base: base, Records: 1000}
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

// The "done" line of a file counts every record of it, the readable ones
// and the dead-lettered ones.
func TestTheDoneLogCountsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.csv"), "id,age\n1,30\n2,\"4\"0\n3,50\n4,60\n")
	k := testkit.KafkaCluster(t)
	kcfg := k.ClientConfig(kafka.Admin)
	kcfg.Partitions = 3
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
	src, err := publish.NewDataset(t.Context(), reg, "users", schemas.MustSchema("users/raw"), "id")
	if err != nil {
		t.Fatal(err)
	}
	out := publish.NewProducer(func() (*kgo.Client, error) {
		return kafka.NewClient(kcfg, zap.NewNop(), kgo.TransactionalID("done-log-test"))
	}, 10*time.Second, prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"}))
	defer out.Close()
	core, logs := observer.New(zap.InfoLevel)
	counter := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "n"}, []string{"dataset"})
	}
	files, err := New(Config{
		Log: zap.New(core), Kafka: kcfg, Out: out, Datasets: map[string]*publish.Dataset{"users": src},
		Patterns: []Pattern{{"users", dir}}, Batch: 2, Interval: 100 * time.Millisecond, Terminal: io.Discard,
		Records: counter(), Dead: counter(), Done: counter(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- files.Run(ctx, func(bool, string) {}) }()
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
