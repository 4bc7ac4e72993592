package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
)

// item is the record of the test stages.
type item struct {
	ID      int64  `avro:"id"`
	Payload string `avro:"payload"`
}

var itemSchema = avro.MustParse(`{"type":"record","name":"Item","namespace":"datamill.test","fields":[
	{"name":"id","type":"long"},{"name":"payload","type":"string"}]}`)

func stageConfig() stage.Config {
	return stage.Config{
		BatchMax: 50, DLQMaxRate: 0.5, DLQWindow: 1000, DLQMinRecords: 100, DLQOnFlood: stage.FloodAlert,
		Retries: 3, RetryBackoff: 10 * time.Millisecond, MaxPause: 200 * time.Millisecond,
		SessionTimeout: 6 * time.Second, TransactionTimeout: 10 * time.Second, InstanceID: "i1",
	}
}

// tagging is the spec of a step from raw.<ds> to clean.<ds> that prefixes
// each payload with its dataset.
func tagging(reg *serde.Registry) func(ctx context.Context, ds string) (*stage.Spec[item, item], error) {
	return func(ctx context.Context, ds string) (*stage.Spec[item, item], error) {
		return stage.NewSpec(ctx, reg, stage.Step{
			Stage: "tester", Dataset: ds,
			From: kafka.Raw, In: itemSchema,
			To: kafka.Clean, Out: itemSchema,
		}, stage.PerRecord(func(_ context.Context, m stage.Message[item]) ([]stage.Output[item], error) {
			return []stage.Output[item]{{Key: m.Key, Value: item{ID: m.Value.ID, Payload: ds + ":" + m.Value.Payload}}}, nil
		}))
	}
}

func startTester(t *testing.T) *Process {
	t.Helper()
	p, err := Start("tester", config.Service{LogLevel: "error", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestRunStagesRunsOneReadyRunnerPerDataset(t *testing.T) {
	kcfg := testkit.Kafka(t)
	kcfg.Partitions = 1
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	datasets := []string{testkit.Name(t, "a"), testkit.Name(t, "b")}
	for i, ds := range datasets {
		in := kafka.Topic(kafka.Raw, ds)
		if err := kafka.EnsureTopics(t.Context(), cl, kcfg, in); err != nil {
			t.Fatal(err)
		}
		codec, err := serde.NewCodec[item](t.Context(), reg, in, itemSchema)
		if err != nil {
			t.Fatal(err)
		}
		b, err := codec.Encode(&item{ID: int64(i), Payload: "p"})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: in, Key: []byte("k"), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	p := startTester(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- RunStages(ctx, p, datasets, stageConfig(), kcfg, tagging(reg)) }()

	for i, ds := range datasets {
		out := kafka.Topic(kafka.Clean, ds)
		codec, err := serde.NewCodec[item](t.Context(), reg, out, itemSchema)
		if err != nil {
			t.Fatal(err)
		}
		recs := testkit.Consume(t, kcfg, out, 1)
		var got item
		if err := codec.Decode(recs[0].Value, &got); err != nil {
			t.Fatal(err)
		}
		if want := (item{ID: int64(i), Payload: ds + ":p"}); got != want {
			t.Errorf("%s holds %+v, want %+v: the runner of %s made it", out, got, want, ds)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := readyz(t, p.Telemetry.Addr())
		ready := code == http.StatusOK
		for _, ds := range datasets {
			ready = ready && strings.Contains(body, `"name":"stage_`+ds+`","ready":true`)
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s, want a ready stage_<dataset> component for each of %v", code, body, datasets)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunStages after its context ended = %v, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("RunStages did not return within 60 s of its context ending")
	}
}

func TestRunStagesStartsNoRunnerWhenADatasetHasNoSpec(t *testing.T) {
	boom := errors.New("dataset b has no clean schema")
	for name, tc := range map[string]struct {
		spec    func(*stage.Spec[item, item], error) (*stage.Spec[item, item], error)
		wantErr string
	}{
		"the spec fails": {
			spec:    func(*stage.Spec[item, item], error) (*stage.Spec[item, item], error) { return nil, boom },
			wantErr: boom.Error(),
		},
		"no spec": {
			spec:    func(*stage.Spec[item, item], error) (*stage.Spec[item, item], error) { return nil, nil },
			wantErr: `dataset "b": no stage spec`,
		},
		"the spec lacks a handler": {
			spec: func(s *stage.Spec[item, item], err error) (*stage.Spec[item, item], error) {
				if s != nil {
					s.Handler = nil
				}
				return s, err
			},
			wantErr: "stage spec lacks Handler",
		},
	} {
		t.Run(name, func(t *testing.T) {
			kcfg := testkit.Kafka(t)
			kcfg.Partitions = 1
			reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
			if err != nil {
				t.Fatal(err)
			}
			good := tagging(reg)
			p := startTester(t)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			err = RunStages(ctx, p, []string{"a", "b"}, stageConfig(), kcfg, func(ctx context.Context, ds string) (*stage.Spec[item, item], error) {
				if ds == "b" {
					return tc.spec(good(ctx, ds))
				}
				return good(ctx, ds)
			})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || ctx.Err() != nil {
				t.Fatalf("RunStages = %v (context: %v), want at once an error saying %q", err, ctx.Err(), tc.wantErr)
			}
			if _, body := readyz(t, p.Telemetry.Addr()); strings.Contains(body, "stage_") {
				t.Errorf("/readyz = %s, want no stage component: no runner may start", body)
			}
		})
	}
}

// A dataset whose spec waits does not hold up the runner of another: with
// RunStagesIndependently, b's records flow while a's spec still waits, and
// the wait ends with the context, without an error.
func TestRunStagesIndependentlyStartsEachRunnerWhenItsSpecIsBuilt(t *testing.T) {
	kcfg := testkit.Kafka(t)
	kcfg.Partitions = 1
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waiting, flowing := testkit.Name(t, "a"), testkit.Name(t, "b")
	in := kafka.Topic(kafka.Raw, flowing)
	if err := kafka.EnsureTopics(t.Context(), cl, kcfg, in); err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[item](t.Context(), reg, in, itemSchema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := codec.Encode(&item{ID: 1, Payload: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: in, Key: []byte("k"), Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	p := startTester(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	build := tagging(reg)
	go func() {
		done <- RunStagesIndependently(ctx, p, []string{waiting, flowing}, stageConfig(), kcfg, func(ctx context.Context, ds string) (*stage.Spec[item, item], error) {
			if ds == waiting {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return build(ctx, ds)
		})
	}()
	out := kafka.Topic(kafka.Clean, flowing)
	outCodec, err := serde.NewCodec[item](t.Context(), reg, out, itemSchema)
	if err != nil {
		t.Fatal(err)
	}
	recs := testkit.Consume(t, kcfg, out, 1)
	var got item
	if err := outCodec.Decode(recs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if want := (item{ID: 1, Payload: flowing + ":p"}); got != want {
		t.Errorf("%s holds %+v, want %+v while %s waits", out, got, want, waiting)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunStagesIndependently after its context ended = %v, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("RunStagesIndependently did not return within 60 s of its context ending")
	}
}
