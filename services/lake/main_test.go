package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/testkit"
)

func TestDocumented(t *testing.T) { testkit.Documented(t, settings{}) }

func TestConfigErrors(t *testing.T) {
	base := []string{
		"KAFKA_BROKERS=127.0.0.1:1", "SCHEMA_REGISTRY_URL=http://127.0.0.1:1",
		"DATABASE_URL=postgres://127.0.0.1:1/x", "S3_ACCESS_KEY=a", "S3_SECRET_KEY=b",
	}
	tests := map[string]struct {
		env  []string
		want string
	}{
		"no S3 endpoint":    {env: nil, want: "S3_ENDPOINT is required"},
		"no record limit":   {env: []string{"S3_ENDPOINT=http://127.0.0.1:1", "LAKE_MAX_RECORDS=0"}, want: "LAKE_MAX_RECORDS 0"},
		"no buffer":         {env: []string{"S3_ENDPOINT=http://127.0.0.1:1", "LAKE_MAX_BUFFER=0"}, want: "LAKE_MAX_BUFFER 0"},
		"no flush interval": {env: []string{"S3_ENDPOINT=http://127.0.0.1:1", "LAKE_FLUSH_INTERVAL=0s"}, want: "LAKE_FLUSH_INTERVAL 0s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := run(t.Context(), nil, append(base, tc.env...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run with %v: %v, want an error saying %q", tc.env, err, tc.want)
			}
		})
	}
}

// env is the sink service's environment on h, with a quick idle cut.
func (h *harness) env() []string {
	return append(testkit.As(testkit.KafkaEnv(h.kafka), "lake"), "SCHEMA_REGISTRY_URL="+h.registryURL,
		"DATABASE_URL="+h.databaseURL, "DATASETS=users", "ECO_SAMPLE_INTERVAL=1h",
		"S3_ENDPOINT="+h.lake.Endpoint, "S3_BUCKET="+h.lake.Bucket,
		"S3_ACCESS_KEY="+h.lake.AccessKey, "S3_SECRET_KEY="+h.lake.SecretKey,
		"LAKE_FLUSH_INTERVAL=100ms", "LAKE_MAX_RECORDS=8",
	)
}

func TestServiceArchivesTheRawTopic(t *testing.T) {
	h := newHarness(t, 3, true)
	s := testkit.Serve(t, run, h.env())
	want := h.produceRecords(t, 3, 0, 20, across)
	h.awaitArchived(t, want)
	testkit.WaitMetric(t, s.Addr, `datamill_stage_records_in_total{dataset="users",stage="lake"}`, "60")
	if err := s.Stop(t); err != nil {
		t.Fatalf("run after shutdown: %v", err)
	}
	h.verify(t, want)
}

func TestNotReadyWhileS3IsUnreachable(t *testing.T) {
	h := newHarness(t, 1, true)
	env := append(h.env(), "S3_ENDPOINT=http://"+testkit.FreeAddr(t))
	s := testkit.Start(t, run, env)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, body := s.Ready(t)
		if ready {
			t.Fatalf("ready without S3: %s", body)
		}
		if strings.Contains(body, "lake_users") && strings.Contains(body, "s3:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz does not say S3 is unreachable within 30 s: %s", body)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, under a deadline
	}
	if err := s.Stop(t); err != nil {
		t.Errorf("run after shutdown: %v", err)
	}
}

func TestASoftMemoryLimitUnlessGOMEMLIMITSetsOne(t *testing.T) {
	if limit, ok := memoryLimit([]string{"PATH=/usr/bin", "LAKE_MAX_BUFFER=8388608"}); !ok || limit != defaultMemoryLimit {
		t.Errorf("without GOMEMLIMIT: limit %d, %t; want %d, true", limit, ok, defaultMemoryLimit)
	}
	if limit, ok := memoryLimit([]string{"GOMEMLIMIT=1GiB"}); ok {
		t.Errorf("with GOMEMLIMIT: the sink sets %d itself, want the runtime's own", limit)
	}
}
