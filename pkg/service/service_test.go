package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

func TestAwaitHoldsReadinessUntilEveryProbePasses(t *testing.T) {
	var out bytes.Buffer
	p, err := Start("tester", config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var calls atomic.Int32
	flaky := Probe{Component: "db", Check: func(context.Context) error {
		if calls.Add(1) < 3 {
			if p.Telemetry.Ready() {
				t.Error("ready while a probe fails")
			}
			return errors.New("connection refused")
		}
		return nil
	}}
	ok := Probe{Component: "kafka", Check: func(context.Context) error { return nil }}
	if err := p.Await(t.Context(), ok, flaky); err != nil {
		t.Fatal(err)
	}
	if !p.Telemetry.Ready() || calls.Load() != 3 {
		t.Errorf("ready = %v after %d calls, want ready after 3", p.Telemetry.Ready(), calls.Load())
	}
	if !strings.Contains(out.String(), "connection refused") {
		t.Errorf("the failing probe was not logged: %s", out.String())
	}
}

func TestAwaitGivesUpWithContext(t *testing.T) {
	p, err := Start("tester", config.Service{LogLevel: "error", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = p.Await(ctx, Probe{Component: "db", Check: func(context.Context) error { return errors.New("down") }})
	if err == nil || !strings.Contains(err.Error(), "db") {
		t.Fatalf("Await = %v, want an error naming the component", err)
	}
}

type settings struct {
	config.Service
	Needed string `env:"NEEDED"`
}

func TestRunReportsConfigurationErrors(t *testing.T) {
	err := Run(t.Context(), "tester", nil, nil, io.Discard, func(context.Context, *Process, settings) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "NEEDED") {
		t.Fatalf("Run = %v, want an error naming NEEDED", err)
	}
}

func TestRunAllStopsTheOthersOnAFailure(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Bool
	err := RunAll(t.Context(),
		func(context.Context) error { return boom },
		func(ctx context.Context) error { <-ctx.Done(); stopped.Store(true); return nil },
	)
	if !errors.Is(err, boom) || !stopped.Load() {
		t.Errorf("RunAll = %v (other stopped: %v), want boom and the other stopped", err, stopped.Load())
	}
}

func TestConnectWaitsForTheEmbeddedStack(t *testing.T) {
	p, err := Start("tester", config.Service{LogLevel: "error", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := pg.Config{URL: testkit.Postgres(t)}
	reg, err := p.Connect(t.Context(), testkit.Kafka(t), serde.Config{RegistryURL: testkit.Registry(t)}, &db)
	if err != nil {
		t.Fatal(err)
	}
	if reg == nil {
		t.Fatal("Connect returned no registry client")
	}
	code, body := readyz(t, p.Telemetry.Addr())
	if code != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200", code, body)
	}
	for _, c := range []string{"kafka", "schema_registry", "postgres"} {
		if !strings.Contains(body, `"name":"`+c+`"`) {
			t.Errorf("/readyz does not name %s: %s", c, body)
		}
	}
}

func TestProbesKeepAnUnreachableDependencyNotReady(t *testing.T) {
	p, err := Start("tester", config.Service{LogLevel: "error", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	kcfg := testkit.Kafka(t)
	closed := testkit.FreeAddr(t) // nothing listens there any more
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := p.Connect(ctx, kcfg, serde.Config{RegistryURL: "http://" + closed}, nil)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := readyz(t, p.Telemetry.Addr())
		if code == http.StatusServiceUnavailable && strings.Contains(body, `"name":"schema_registry","ready":false,"reason":"`) &&
			strings.Contains(body, `"name":"kafka","ready":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s, want 503 with kafka ready and the registry not, with a reason", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "schema_registry") {
		t.Errorf("Connect after cancel = %v, want an error naming schema_registry", err)
	}
}

func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// The process publishes what it used to eco.samples while it runs and once
// more when it closes: the samples' windows tile its life and their
// record counts add up to its counters.
func TestEcoSamplesCoverTheProcess(t *testing.T) {
	k := testkit.KafkaCluster(t)
	kcfg := k.ClientConfig("cleaner") // the process connects as the service it is
	kcfg.Partitions = 1
	p, err := Start("cleaner", config.Service{LogLevel: "error", LogFormat: "json", AdminAddr: "127.0.0.1:0", RunID: "r1", Datasets: []string{"users"}, EcoInterval: 50 * time.Millisecond}, struct{}{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	registry := testkit.Registry(t)
	if _, err := p.Connect(t.Context(), kcfg, serde.Config{RegistryURL: registry}, nil); err != nil {
		t.Fatal(err)
	}
	in := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "datamill_stage_records_in_total"}, []string{"stage", "dataset"})
	p.Telemetry.Registry().MustRegister(in)
	for range 5 {
		in.WithLabelValues("cleaner", "users").Add(7)
		time.Sleep(40 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	samples := ecoSamples(t, k.ClientConfig(kafka.Admin), registry)
	if len(samples) < 2 {
		t.Fatalf("%d samples, want several", len(samples))
	}
	var records int64
	for i, s := range samples {
		records += s.RecordsIn
		if s.RunID != "r1" || s.Service != "cleaner" || s.Dataset == nil || *s.Dataset != "users" || s.CPUS < 0 || s.MemReservedBytes <= 0 {
			t.Errorf("sample %d: %+v", i, s)
		}
		if i > 0 && !s.WindowStart.Equal(samples[i-1].WindowEnd) {
			t.Errorf("sample %d starts at %v, the previous ended at %v: the windows do not tile", i, s.WindowStart, samples[i-1].WindowEnd)
		}
	}
	if records != 35 {
		t.Errorf("the samples count %d records in, the counter 35", records)
	}
}

// ecoSamples reads back every committed eco sample of eco.samples.
func ecoSamples(t *testing.T, kcfg kafka.Config, registry string) []schemas.EcoSample {
	t.Helper()
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[schemas.EcoSample](t.Context(), reg, kafka.EcoSamples, schemas.MustSchema("ecosample"))
	if err != nil {
		t.Fatal(err)
	}
	var samples []schemas.EcoSample
	err = kafka.ReadCommitted(t.Context(), kcfg, zap.NewNop(), kafka.EcoSamples, nil, func(r *kgo.Record) {
		var s schemas.EcoSample
		if err := codec.Decode(r.Value, &s); err != nil {
			t.Fatalf("eco sample at offset %d: %v", r.Offset, err)
		}
		samples = append(samples, s)
	})
	if err != nil {
		t.Fatal(err)
	}
	return samples
}
