package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/retry"
)

// What a runner does when its dead-letter rate goes above the threshold
// (STAGE_DLQ_ON_FLOOD).
const (
	// FloodAlert commits the batch as usual and raises the flood metric,
	// readiness detail and log: the stage goes on.
	FloodAlert = "alert"
	// FloodStop stops consuming the dataset without committing the batch,
	// until Resume; the stop is kept in the control topic.
	FloodStop = "stop"
)

// ControlTopic names the compacted topic that keeps the stops and resumes
// of a stage's runners for a dataset, e.g. _control.cleaner.users.
func ControlTopic(stage, dataset string) string { return "_control." + stage + "." + dataset }

// Group is the default consumer group of a stage for a dataset.
func Group(stage, dataset string) string { return "datamill-" + stage + "-" + dataset }

// ErrNotStopped is returned by Resume for runners that are not stopped.
var ErrNotStopped = errors.New("not stopped")

// errStopped ends a session whose runners are stopped.
var errStopped = errors.New("stopped")

// Control is one record of a control topic, keyed by consumer group: the
// latest of a group says whether its runners are stopped.
type Control struct {
	// Stopped is true for a stop, false for a resume.
	Stopped bool `json:"stopped"`
	// Reason says why the runners stopped.
	Reason string `json:"reason,omitempty"`
	// Offsets are, per input partition, the offset after the last record
	// of the batch that stopped the runners. A resume carries those of
	// the stop it lifts: the records before them go on even if they
	// flood, so that a resumed stage never stops again on them.
	Offsets map[int32]int64 `json:"offsets,omitempty"`
	// At is when the record was written, By by whom (an instance, or
	// the resume command).
	At time.Time `json:"at"`
	By string    `json:"by,omitempty"`
}

// control follows the latest control record of one group.
type control struct {
	topic, group string
	cl           *kgo.Client
	log          *zap.Logger

	mu      sync.Mutex
	last    Control
	offset  int64         // offset of last; -1 before any
	changed chan struct{} // closed and replaced when last changes
}

// openControl creates the control topic when it does not exist, reads the
// group's latest record and follows the topic until ctx ends.
func openControl(ctx context.Context, kcfg kafka.Config, log *zap.Logger, topic, group string) (*control, error) {
	c := &control{topic: topic, group: group, log: log, offset: -1, changed: make(chan struct{})}
	admin, err := kafka.NewClient(kcfg, log)
	if err != nil {
		return nil, err
	}
	err = kafka.EnsureCompacted(ctx, admin, kcfg, topic, 1)
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("control topic: %w", err)
	}
	next := int64(0)
	err = kafka.ReadCommitted(ctx, kcfg, log, topic, nil, func(rec *kgo.Record) {
		c.apply(rec)
		next = rec.Offset + 1
	})
	if err != nil {
		return nil, fmt.Errorf("read control topic: %w", err)
	}
	c.cl, err = kafka.NewClient(kcfg, log,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(next)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(time.Second),
	)
	if err != nil {
		return nil, err
	}
	go c.follow(ctx)
	return c, nil
}

// follow applies the records written after the first read until ctx ends.
func (c *control) follow(ctx context.Context) {
	for {
		fetches := c.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		failed := false
		fetches.EachError(func(_ string, _ int32, err error) {
			c.log.Warn("read control topic", zap.String("topic", c.topic), zap.Error(err))
			failed = true
		})
		fetches.EachRecord(c.apply)
		if failed && !retry.Sleep(ctx, time.Second) {
			return
		}
	}
}

// close stops following the topic.
func (c *control) close() { c.cl.Close() }

// apply takes rec when it is the group's and newer than the last one.
func (c *control) apply(rec *kgo.Record) {
	if string(rec.Key) != c.group {
		return
	}
	var ctl Control
	if err := json.Unmarshal(rec.Value, &ctl); err != nil {
		c.log.Warn("unreadable control record; ignored", zap.String("topic", c.topic), zap.Int64("offset", rec.Offset), zap.Error(err))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rec.Offset <= c.offset {
		return
	}
	c.last, c.offset = ctl, rec.Offset
	close(c.changed)
	c.changed = make(chan struct{})
}

// state returns the latest record, and a channel closed when it changes.
func (c *control) state() (Control, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.changed
}

// stopped reports whether the group's runners are stopped.
func (c *control) stopped() bool {
	ctl, _ := c.state()
	return ctl.Stopped
}

// cancelOnStop calls cancel once the group's runners are stopped, or when
// ctx ends.
func (c *control) cancelOnStop(ctx context.Context, cancel context.CancelFunc) {
	for {
		ctl, changed := c.state()
		if ctl.Stopped {
			cancel()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// write produces ctl for the group and applies it at once.
func (c *control) write(ctx context.Context, ctl Control) error {
	rec, err := writeControl(ctx, c.cl, c.topic, c.group, ctl)
	if err != nil {
		return err
	}
	c.apply(rec)
	return nil
}

func writeControl(ctx context.Context, cl *kgo.Client, topic, group string, ctl Control) (*kgo.Record, error) {
	b, err := json.Marshal(ctl)
	if err != nil {
		return nil, fmt.Errorf("encode control record: %w", err)
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(group), Value: b}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fmt.Errorf("write control record to %s: %w", topic, err)
	}
	return rec, nil
}

// Resume lifts the stop of group's runners kept in topic (ControlTopic of
// their stage and dataset) and returns the stop it lifted; by names who
// resumed them. The running runners notice within about a second and go
// on, this time committing the batch they stopped on and the rest of the
// flood in progress. It returns an error wrapping ErrNotStopped when the
// runners are not stopped.
func Resume(ctx context.Context, kcfg kafka.Config, log *zap.Logger, topic, group, by string) (Control, error) {
	cl, err := kafka.NewClient(kcfg, log)
	if err != nil {
		return Control{}, err
	}
	defer cl.Close()
	if _, err := kafka.Partitions(ctx, cl, topic); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return Control{}, fmt.Errorf("%s: %w (no control topic %s: its runners never stopped)", group, ErrNotStopped, topic)
		}
		return Control{}, err
	}
	var last Control
	found := false
	err = kafka.ReadCommitted(ctx, kcfg, log, topic, nil, func(rec *kgo.Record) {
		if string(rec.Key) != group {
			return
		}
		var ctl Control
		if json.Unmarshal(rec.Value, &ctl) == nil {
			last, found = ctl, true
		}
	})
	if err != nil {
		return Control{}, fmt.Errorf("read control topic: %w", err)
	}
	if !found || !last.Stopped {
		return Control{}, fmt.Errorf("%s: %w", group, ErrNotStopped)
	}
	resume := Control{Offsets: last.Offsets, At: time.Now().UTC(), By: by}
	if _, err := writeControl(ctx, cl, topic, group, resume); err != nil {
		return Control{}, err
	}
	return last, nil
}
