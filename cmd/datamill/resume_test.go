package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
)

func TestResumeLiftsAStop(t *testing.T) {
	kcfg := testkit.Kafka(t)
	kcfg.Partitions = 1
	ds := testkit.Name(t, "ds")
	environ := testkit.KafkaEnv(kcfg)
	resumeCmd := func() (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), []string{"resume", "cleaner", ds}, environ, &out, &errOut)
		return out.String(), err
	}

	if _, err := resumeCmd(); !errors.Is(err, stage.ErrNotStopped) {
		t.Fatalf("resume of a stage that never stopped = %v, want ErrNotStopped", err)
	}

	// What a runner writes when it stops on a flood.
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := stage.ControlTopic("cleaner", ds)
	if err := kafka.EnsureCompacted(t.Context(), cl, kcfg, topic, 1); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(stage.Control{Stopped: true, Reason: "2000 of a batch of 2000 records would be dead-lettered", Offsets: map[int32]int64{0: 2000}, At: time.Now(), By: "cleaner-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Key: []byte(stage.Group("cleaner", ds)), Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	out, err := resumeCmd()
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if !strings.Contains(out, "resumed cleaner "+ds) || !strings.Contains(out, "would be dead-lettered") {
		t.Errorf("resume printed %q, want the stage and the stop's reason", out)
	}
	if _, err := resumeCmd(); !errors.Is(err, stage.ErrNotStopped) {
		t.Errorf("a second resume = %v, want ErrNotStopped", err)
	}
}
