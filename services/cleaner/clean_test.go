package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/rules"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

func ptr(s string) *string { return &s }

// TestCleansRawUsers runs the cleaner service on the embedded stack end to
// end: valid rows come out typed and keyed by id, bad optional values are
// nulled and flagged, rows without a usable id go to the dead letters with
// the reason, and a re-send of the same content in another form is dropped
// and counted.
func TestCleansRawUsers(t *testing.T) {
	if testkit.RealBroker() {
		t.Fatal("this test uses the fixed topic names of the users dataset: run it on the embedded broker")
	}
	env := testkit.Stack(t, false)
	m := config.ToMap(env)
	ctx := t.Context()
	kcfg := testkit.KafkaConfig(t, m, 3)
	// Every input on partition 0, so that the re-send of user 1 is
	// processed before user 6.
	cl, err := kafka.NewClient(kcfg, zap.NewNop(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
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
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	inputs := []users.Raw{
		{ID: ptr(" 1 "), Age: ptr("31"), Gender: ptr("F"), Country: ptr("France"), Email: ptr("Ada@Example.org"), SignupDate: ptr("02/01/2023"), MonthlySpend: ptr("€12,50")},
		{ID: ptr("2"), Age: ptr("230"), Country: ptr("Atlantis"), LastLogin: ptr("2023-02-30")},
		{ID: ptr("abc"), Age: ptr("40")},
		{Age: ptr("50")},
		// user 1 again, the same content written otherwise
		{ID: ptr("1"), Age: ptr(" 31"), Gender: ptr("female"), Country: ptr("FR"), Email: ptr("ada@example.org"), SignupDate: ptr("2023-01-02"), MonthlySpend: ptr("12.50")},
		{ID: ptr("6"), Age: ptr("60")},
	}
	for i := range inputs {
		inputs[i].EventID, inputs[i].Source, inputs[i].IngestedAt = fmt.Sprintf("ev-%d", i), "test", at
		b, err := raw.Encode(&inputs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "raw.users", Key: []byte("k"), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	addr := testkit.FreeAddr(t)
	go func() {
		done <- run(runCtx, nil, append(testkit.As(env, "cleaner"), "ADMIN_ADDR="+addr, "STAGE_INSTANCE_ID=t"), io.Discard)
	}()
	cleaned := testkit.Consume(t, kcfg, "clean.users", 3)
	dead := testkit.Consume(t, kcfg, "dlq.users", 2)
	testkit.WaitMetric(t, addr, `datamill_stage_records_duplicates_total{dataset="users",stage="cleaner"}`, "1")
	stop()
	if err := <-done; err != nil {
		t.Fatalf("cleaner: %v", err)
	}

	codec, err := serde.NewCodec[users.Clean](ctx, reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := serde.NewKeyCodec(ctx, reg, "clean.users")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]users.Clean{}
	var ids []int64
	for _, r := range cleaned {
		var c users.Clean
		if err := codec.Decode(r.Value, &c); err != nil {
			t.Fatal(err)
		}
		if k, err := keys.Decode(r.Key); err != nil || string(k) != fmt.Sprint(c.ID) {
			t.Errorf("clean record keyed %q (%v), want its id %d as an Avro string", r.Key, err, c.ID)
		}
		byID[c.ID] = c
		ids = append(ids, c.ID)
	}
	if slices.Sort(ids); fmt.Sprint(ids) != "[1 2 6]" {
		t.Errorf("clean ids = %v, want [1 2 6]: the re-send of user 1 is a duplicate", ids)
	}

	one := byID[1]
	if one.Gender == nil || *one.Gender != "female" || *one.Country != "FR" || *one.Email != "ada@example.org" ||
		one.SignupDate == nil || !one.SignupDate.Equal(time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC)) ||
		(*one.MonthlySpend).FloatString(2) != "12.50" || one.EventID != "ev-0" || !one.EventTime.Equal(at) || one.ContentHash == "" {
		t.Errorf("user 1 cleaned to %+v", one)
	}
	two := byID[2]
	if two.Age != nil || two.Country != nil || two.LastLogin != nil ||
		strings.Join(two.QualityFlags, ",") != "age:out_of_range,country:unknown_country,last_login:bad_date" {
		t.Errorf("user 2 cleaned to %+v, want its bad values nulled and flagged", two)
	}
	var reasons []string
	for _, d := range dead {
		if kafka.Header(d, stage.HeaderStage) != "cleaner" || kafka.Header(d, stage.HeaderSourceTopic) != "raw.users" {
			t.Errorf("dead letter headers %v", d.Headers)
		}
		reasons = append(reasons, kafka.Header(d, stage.HeaderReason))
	}
	if got := strings.Join(slices.Sorted(slices.Values(reasons)), " | "); got != `id: missing | id: not_a_number ("abc")` {
		t.Errorf("dead letter reasons = %s", got)
	}
}

// Text PostgreSQL cannot store is caught by the cleaner in every string
// field, the envelope's too, so that the loader never refuses a record for
// it: a ruled value is nulled and flagged, a source too, an event id
// rejects the record.
func TestTransformChecksEveryText(t *testing.T) {
	c, err := newCleaning(schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		id, source, city string
		flags            string // the clean record's, or
		reasons          string // the rejection's
	}{
		"good text":           {id: "e1", source: "http", city: "Lyon"},
		"nul in a value":      {id: "e1", source: "http", city: "Ly\x00on", flags: "city:nul_byte"},
		"invalid utf-8":       {id: "e1", source: "http", city: "Z\xffrich", flags: "city:invalid_utf8"},
		"nul in the source":   {id: "e1", source: "file:a\x00b", city: "Lyon", flags: "source:nul_byte"},
		"invalid source":      {id: "e1", source: "file:\xff", city: "Ly\x00on", flags: "city:nul_byte source:invalid_utf8"},
		"nul in the event id": {id: "e\x001", source: "http", city: "Lyon", reasons: "event_id: nul_byte"},
		"invalid event id":    {id: "e\xff", source: "http", city: "Lyon", reasons: "event_id: invalid_utf8"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := record{"id": "7", "city": tc.city, "event_id": tc.id, "source": tc.source, "ingested_at": at}
			if tc.city == "" {
				delete(in, "city")
			}
			out, err := c.transform(t.Context(), stage.Message[record]{Value: in})
			var rej *stage.RejectError
			if errors.As(err, &rej) {
				if got := strings.Join(rej.Reasons, " | "); got != tc.reasons {
					t.Errorf("transform(%q) rejected for %q, want %q", in, got, tc.reasons)
				}
				return
			}
			if err != nil || len(out) != 1 || tc.reasons != "" {
				t.Fatalf("transform(%q) = %v, %v; want a clean record, or rejected for %q", in, out, err, tc.reasons)
			}
			v := out[0].Value
			if got := strings.Join(v["quality_flags"].([]string), " "); got != tc.flags {
				t.Errorf("transform(%q) flags %q, want %q", in, got, tc.flags)
			}
			for _, f := range []string{"city", "source"} {
				if s, ok := v[f].(string); ok && rules.TextProblem(s) != "" {
					t.Errorf("transform(%q) keeps %s %q", in, f, s)
				}
			}
			if _, err := avro.Marshal(schemas.MustSchema("users/clean"), v); err != nil {
				t.Errorf("transform(%q) = %v, which does not encode: %v", in, v, err)
			}
		})
	}
}
