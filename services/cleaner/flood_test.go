package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// TestOneRequestOfRecordsWithoutIDsNeverStopsTheCleaner is issue 16's
// reproduction: good users, then one request's 2,000 users without an id.
// The cleaner stays up and ready, cleans the good ones, dead-letters every
// bad one, and shows the flood in its metrics and /readyz. With
// STAGE_DLQ_ON_FLOOD=stop it stops consuming instead, stays up, not ready,
// saying how to resume, and `datamill resume`'s Resume lets it go on.
func TestOneRequestOfRecordsWithoutIDsNeverStopsTheCleaner(t *testing.T) {
	if testkit.RealBroker() {
		t.Fatal("this test uses the fixed topic names of the users dataset: run it on the embedded broker")
	}
	for _, onFlood := range []string{stage.FloodAlert, stage.FloodStop} {
		t.Run(onFlood, func(t *testing.T) {
			env := testkit.Stack(t, false)
			m := config.ToMap(env)
			ctx := t.Context()
			kcfg := testkit.KafkaConfig(t, m, 3)
			cl, err := kafka.NewClient(kcfg, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := kafka.EnsureTopics(ctx, cl, kcfg, kafka.PipelineTopics("users")...); err != nil {
				t.Fatal(err)
			}
			reg, err := serde.NewRegistry(serde.Config{RegistryURL: m["SCHEMA_REGISTRY_URL"]})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := serde.NewCodec[users.Raw](ctx, reg, "raw.users", schemas.MustSchema("users/raw"))
			if err != nil {
				t.Fatal(err)
			}
			var recs []*kgo.Record
			for i := range 2100 {
				u := users.Raw{Age: ptr("40"), EventID: fmt.Sprintf("ev-%d", i), Source: "http", IngestedAt: time.Now()}
				if i < 100 {
					u.ID = ptr(fmt.Sprint(i + 1))
				}
				b, err := raw.Encode(&u)
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, &kgo.Record{Topic: "raw.users", Key: []byte(u.EventID), Value: b})
			}
			if err := cl.ProduceSync(ctx, recs[:100]...).FirstErr(); err != nil {
				t.Fatal(err)
			}

			svc := testkit.Serve(t, run, append(testkit.As(env, "cleaner"), "STAGE_INSTANCE_ID=t", "STAGE_DLQ_ON_FLOOD="+onFlood))
			testkit.Consume(t, kcfg, "clean.users", 100)
			if err := cl.ProduceSync(ctx, recs[100:]...).FirstErr(); err != nil {
				t.Fatal(err)
			}

			series := func(name string) string { return name + `{dataset="users",stage="cleaner"}` }
			testkit.WaitMetric(t, svc.Addr, series("datamill_stage_dlq_floods_total"), "1")
			if onFlood == stage.FloodStop {
				testkit.WaitMetric(t, svc.Addr, series("datamill_stage_stopped"), "1")
				if ready, body := svc.Ready(t); ready || !strings.Contains(body, "datamill resume cleaner users") {
					t.Errorf("/readyz while stopped = %v %s, want not ready, saying how to resume", ready, body)
				}
				if _, err := stage.Resume(ctx, kcfg, zap.NewNop(), stage.ControlTopic("cleaner", "users"), stage.Group("cleaner", "users"), "test"); err != nil {
					t.Fatalf("Resume: %v", err)
				}
				testkit.WaitMetric(t, svc.Addr, series("datamill_stage_stopped"), "0")
			}
			testkit.WaitMetric(t, svc.Addr, series("datamill_stage_records_in_total"), "2100")
			testkit.WaitMetric(t, svc.Addr, series("datamill_stage_dlq_flood"), "1")
			if ready, body := svc.Ready(t); !ready || !strings.Contains(body, "dead-letter flood") {
				t.Errorf("/readyz during the flood = %v %s, want ready, with the flood as a detail", ready, body)
			}
			if dead := testkit.Consume(t, kcfg, "dlq.users", 2000); kafka.Header(dead[0], stage.HeaderReason) != "id: missing" {
				t.Errorf("dead letter reason %q, want id: missing", kafka.Header(dead[0], stage.HeaderReason))
			}
			if err := svc.Stop(t); err != nil {
				t.Fatalf("cleaner: %v", err)
			}
		})
	}
}
