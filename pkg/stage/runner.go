package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

// Config tunes the runners of a stage service: the STAGE_* variables.
type Config struct {
	// BatchMax is the most records polled into one batch (one transaction).
	BatchMax int `env:"STAGE_BATCH_MAX" envDefault:"2000"`
	// DLQMaxRate: a dead-letter flood is when more than this share of the
	// records over the last DLQWindow records were dead-lettered...
	DLQMaxRate float64 `env:"STAGE_DLQ_MAX_RATE" envDefault:"0.5"`
	DLQWindow  int     `env:"STAGE_DLQ_WINDOW" envDefault:"1000"`
	// ...once at least DLQMinRecords records were seen.
	DLQMinRecords int `env:"STAGE_DLQ_MIN_RECORDS" envDefault:"100"`
	// DLQOnFlood is what a flood does: FloodAlert (the stage goes on and
	// raises the flood metric, readiness detail and log) or FloodStop
	// (the stage stops consuming the dataset without committing the
	// batch, until Resume).
	DLQOnFlood string `env:"STAGE_DLQ_ON_FLOOD" envDefault:"alert"`
	// Retries bounds the attempts at a batch's transient failures before
	// its transaction is aborted and the stage pauses.
	Retries      int           `env:"STAGE_RETRIES" envDefault:"4"`
	RetryBackoff time.Duration `env:"STAGE_RETRY_BACKOFF" envDefault:"100ms"`
	// MaxPause caps the pause between replays while a dependency is down,
	// and the wait between retries.
	MaxPause time.Duration `env:"STAGE_MAX_PAUSE" envDefault:"10s"`
	// SessionTimeout is the consumer group session timeout.
	SessionTimeout time.Duration `env:"STAGE_SESSION_TIMEOUT" envDefault:"10s"`
	// TransactionTimeout is how long the broker waits before aborting the
	// open transaction of a producer that died, and how long the runner
	// waits for a batch's transaction to end (see errStuck).
	TransactionTimeout time.Duration `env:"STAGE_TRANSACTION_TIMEOUT" envDefault:"20s"`
	// InstanceID names this process among the group's members (static
	// membership) and makes its transactional id stable across restarts,
	// so that a restarted process takes its partitions back without a
	// rebalance and fences and aborts its predecessor's open transaction
	// at once. A process stopped for good keeps its partitions until its
	// session times out. It must differ between processes of the same
	// stage; default: the host name.
	InstanceID string `env:"STAGE_INSTANCE_ID" envDefault:""`
	// StateDir is where a stage with a dedupe state (Spec.Digest) keeps
	// it, in a directory of each runner's own: about 21 to 43 bytes of
	// disk a key. Default: the system's temporary directory.
	StateDir string `env:"STAGE_STATE_DIR" envDefault:""`
}

// Validate checks the ranges.
func (c *Config) Validate() error {
	var errs []error
	if c.BatchMax < 1 {
		errs = append(errs, fmt.Errorf("STAGE_BATCH_MAX %d: must be at least 1", c.BatchMax))
	}
	if c.DLQMaxRate <= 0 || c.DLQMaxRate > 1 {
		errs = append(errs, fmt.Errorf("STAGE_DLQ_MAX_RATE %g: must be in (0, 1]", c.DLQMaxRate))
	}
	if c.DLQWindow < 1 || c.DLQMinRecords < 1 {
		errs = append(errs, errors.New("STAGE_DLQ_WINDOW and STAGE_DLQ_MIN_RECORDS must be at least 1"))
	}
	if c.DLQOnFlood != FloodAlert && c.DLQOnFlood != FloodStop {
		errs = append(errs, fmt.Errorf("STAGE_DLQ_ON_FLOOD %q: must be %s or %s", c.DLQOnFlood, FloodAlert, FloodStop))
	}
	if c.Retries < 1 {
		errs = append(errs, fmt.Errorf("STAGE_RETRIES %d: must be at least 1", c.Retries))
	}
	return errors.Join(errs...)
}

// backoff paces the retries of a batch's transient failures and, once
// they ran out, the pauses before its replays: the first pause is longer
// than any retry's wait, and no wait is longer than MaxPause.
func (c *Config) backoff() retry.Backoff {
	return retry.Backoff{First: c.RetryBackoff, Max: c.MaxPause}
}

// Decoder decodes one record value; serde.Codec implements it.
type Decoder[T any] interface {
	Decode(b []byte, v *T) error
}

// Encoder encodes one record value; serde.Codec implements it.
type Encoder[T any] interface {
	AppendEncode(dst []byte, v *T) ([]byte, error)
}

// Origin is where an input record was read.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Message is one decoded input record.
type Message[T any] struct {
	Key   []byte
	Value T
	// Raw is the value as it was read, in the wire format; it must not be
	// changed.
	Raw    []byte
	Origin Origin
}

// Output is one record for the output topic.
type Output[T any] struct {
	Key   []byte
	Value T

	from int // 1 + the index of the input it was made from, set by PerRecord
}

// Rejection dead-letters the input at Index in the batch for Reasons.
type Rejection struct {
	Index   int
	Reasons []string
}

// Result is what a handler made of a batch.
type Result[Out any] struct {
	Outputs    []Output[Out]
	Rejected   []Rejection
	Duplicates int
}

// Handler processes one batch of decoded messages. A returned error fails
// the whole batch and is treated as transient: the batch is retried and
// never committed until the handler succeeds. Records the handler rejects
// go in Result.Rejected. A handler with a database sink commits its
// database transaction before returning and must be idempotent: it may see
// a batch again after a crash.
type Handler[In, Out any] func(ctx context.Context, batch []Message[In]) (Result[Out], error)

// Transform processes one message into zero or more outputs. Zero outputs
// and no error means the record is filtered out. Errors are sorted by
// Classify: permanent ones dead-letter the record, ErrDuplicate counts it,
// any other fails the batch as transient.
type Transform[In, Out any] func(ctx context.Context, msg Message[In]) ([]Output[Out], error)

// PerRecord makes a Handler from a Transform.
func PerRecord[In, Out any](fn Transform[In, Out]) Handler[In, Out] {
	return func(ctx context.Context, batch []Message[In]) (Result[Out], error) {
		var res Result[Out]
		for i, msg := range batch {
			outs, err := fn(ctx, msg)
			switch {
			case err == nil:
				for _, out := range outs {
					out.from = i + 1
					res.Outputs = append(res.Outputs, out)
				}
			case Classify(err) == ClassPermanent:
				res.Rejected = append(res.Rejected, Rejection{Index: i, Reasons: reasons(err)})
			case Classify(err) == ClassDuplicate:
				res.Duplicates++
			default:
				return Result[Out]{}, fmt.Errorf("%s partition %d offset %d: %w", msg.Origin.Topic, msg.Origin.Partition, msg.Origin.Offset, err)
			}
		}
		return res, nil
	}
}

// Spec describes one stage for one dataset.
type Spec[In, Out any] struct {
	// Stage names the step ("cleaner"); Dataset the dataset ("users").
	Stage, Dataset string
	// Input is the consumed topic, Output the produced one, DeadLetters
	// the dead-letter topic.
	Input, Output, DeadLetters string
	// Group is the consumer group; default datamill-<stage>-<dataset>.
	Group string
	// Decoder reads inputs, Encoder writes outputs, DeadLetterEncoder
	// writes the dead-letter envelope. Keys, when set, writes output keys
	// (Output.Key, the entity's id) as Avro strings; without it they go
	// as they are.
	Decoder           Decoder[In]
	Encoder           Encoder[Out]
	Keys              *serde.KeyCodec
	DeadLetterEncoder Encoder[schemas.DeadLetter]
	// Handler is the step itself.
	Handler Handler[In, Out]
	// OnReady, when set, is told whether the runner is consuming (true) or
	// paused by a failing dependency (false, with the reason).
	OnReady func(ready bool, reason string)
	// Digest, when set, drops every output whose digest equals that of the
	// last output committed for its key, and counts its input as a
	// duplicate when all of the input's outputs were dropped. The digests
	// are kept per input partition in the compacted topic StateTopic,
	// written in each batch's transaction (see dedupe). The Handler must
	// be made by PerRecord.
	Digest func(Out) string
	// StateTopic is Digest's changelog; default
	// kafka.StateTopic(Stage, Dataset), created with the input's
	// partition count.
	StateTopic string
	// ControlTopic keeps the stops and resumes of the runners with
	// STAGE_DLQ_ON_FLOOD=stop; default ControlTopic(Stage, Dataset).
	ControlTopic string
}

// Runner runs one Spec. Build it with NewRunner and call Run once.
type Runner[In, Out any] struct {
	spec    Spec[In, Out]
	cfg     Config
	kafka   kafka.Config
	log     *zap.Logger
	metrics *Metrics
	flood   floodWindow

	// The flood's state, owned by Run's goroutine: flooding while the
	// rate is above the threshold (or since the stop); acked once a
	// resume lifted the stop, until the flood ends; ackedUntil are the
	// offsets before which the last resume lets records through.
	control    *control // nil unless STAGE_DLQ_ON_FLOOD=stop
	flooding   bool
	acked      bool
	ackedUntil map[int32]int64

	mu     sync.Mutex
	counts Counts

	dedupe *dedupe // nil without Spec.Digest
	watch  *stopwatch

	// beforeCommit, when set by a test, runs after a batch's outputs are
	// produced and before its transaction commits.
	beforeCommit func()
}

// NewRunner checks spec and returns its runner.
func NewRunner[In, Out any](spec Spec[In, Out], cfg Config, kcfg kafka.Config, log *zap.Logger, m *Metrics) (*Runner[In, Out], error) {
	if err := lacks("stage spec", field{"Stage", spec.Stage != ""}, field{"Dataset", spec.Dataset != ""},
		field{"Input", spec.Input != ""}, field{"Output", spec.Output != ""}, field{"DeadLetters", spec.DeadLetters != ""},
		field{"Decoder", spec.Decoder != nil}, field{"Encoder", spec.Encoder != nil},
		field{"DeadLetterEncoder", spec.DeadLetterEncoder != nil}, field{"Handler", spec.Handler != nil}); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if spec.Group == "" {
		spec.Group = Group(spec.Stage, spec.Dataset)
	}
	if spec.ControlTopic == "" {
		spec.ControlTopic = ControlTopic(spec.Stage, spec.Dataset)
	}
	if cfg.InstanceID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("STAGE_INSTANCE_ID is unset and the host name is unknown: %w", err)
		}
		cfg.InstanceID = host
	}
	if spec.OnReady == nil {
		spec.OnReady = func(bool, string) {}
	}
	if spec.Digest != nil && spec.StateTopic == "" {
		spec.StateTopic = kafka.StateTopic(spec.Stage, spec.Dataset)
	}
	return &Runner[In, Out]{
		spec:    spec,
		cfg:     cfg,
		kafka:   kcfg,
		log:     log.Named(spec.Stage).With(zap.String("dataset", spec.Dataset), zap.String("topic", spec.Input)),
		metrics: m,
		flood:   floodWindow{size: cfg.DLQWindow, minRecords: cfg.DLQMinRecords, maxRate: cfg.DLQMaxRate},
	}, nil
}

// Counts returns the runner's committed totals.
func (r *Runner[In, Out]) Counts() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}

// TransactionalID is the producer's transactional id.
func (r *Runner[In, Out]) TransactionalID() string {
	return r.spec.Group + "-" + r.cfg.InstanceID
}

// Run creates the stage's topics that do not exist yet, then consumes
// until ctx ends, finishes and commits the batch in flight, leaves the
// group and returns nil. A dead-letter flood never ends it (see the
// package doc's Errors): with STAGE_DLQ_ON_FLOOD=stop it waits, stopped,
// for a resume. It returns an error when the stage must stop: a fenced or
// failed producer, or an output that cannot be encoded.
func (r *Runner[In, Out]) Run(ctx context.Context) error {
	// The alert gauges are exported from the start, at 0, so that an
	// alert or a panel over them sees a stage that is fine, not none.
	r.metrics.flood.WithLabelValues(r.spec.Stage, r.spec.Dataset).Set(0)
	r.metrics.stopped.WithLabelValues(r.spec.Stage, r.spec.Dataset).Set(0)
	if r.cfg.DLQOnFlood == FloodStop {
		follow, cancel := context.WithCancel(ctx)
		ctl, err := openControl(follow, r.kafka, r.log, r.spec.ControlTopic, r.spec.Group)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s %s: %w", r.spec.Stage, r.spec.Dataset, err)
		}
		defer func() {
			cancel()
			ctl.close()
		}()
		r.control = ctl
		if last, _ := ctl.state(); !last.Stopped {
			r.ackedUntil = last.Offsets
		}
	}
	for {
		if r.control != nil && !r.awaitResume(ctx) {
			return nil
		}
		err := r.session(ctx)
		switch {
		case errors.Is(err, errStopped):
			// awaitResume reports the stop and waits for the resume.
		case errors.Is(err, errStuck):
			// The old session's transaction is left open on the broker;
			// the new session's producer, with the same transactional
			// id, fences it and the broker aborts it. The batch is
			// replayed from the last commit.
			r.log.Warn("transaction did not end in time; consuming in a new session, which aborts it", zap.Error(err))
		default:
			return err
		}
	}
}

// awaitResume returns at once unless the group's runners are stopped;
// then it reports the stop (not ready, the metric, one log) and waits for
// a resume. It reports false when ctx ended first.
func (r *Runner[In, Out]) awaitResume(ctx context.Context) bool {
	last, changed := r.control.state()
	if !last.Stopped {
		return true
	}
	stage, ds := r.spec.Stage, r.spec.Dataset
	r.metrics.stopped.WithLabelValues(stage, ds).Set(1)
	r.setReady(false, fmt.Sprintf("stopped consuming since %s on a dead-letter flood (%s); after a look at the dead letters, resume with `datamill resume %s %s`",
		last.At.Format(time.RFC3339), last.Reason, stage, ds))
	r.log.Warn("stopped on a dead-letter flood; waiting for `datamill resume`", zap.String("reason", last.Reason), zap.String("by", last.By), zap.Time("at", last.At))
	for last.Stopped {
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
		last, changed = r.control.state()
	}
	r.metrics.stopped.WithLabelValues(stage, ds).Set(0)
	// The flood in progress goes on to the dead-letter topic, the
	// batch that stopped the stage first.
	r.acked, r.ackedUntil = true, last.Offsets
	r.log.Warn("resumed; the flood in progress goes to the dead-letter topic", zap.String("by", last.By))
	return true
}

// letThrough reports whether a flooding batch goes on in spite of
// STAGE_DLQ_ON_FLOOD=stop: a resume lifted the stop on this flood, or
// every dead letter of the batch lies before the offsets of the stop the
// last resume lifted (a process restarted after the resume).
func (r *Runner[In, Out]) letThrough(dead []deadLetter) bool {
	if r.acked {
		return true
	}
	if len(r.ackedUntil) == 0 {
		return false
	}
	for _, d := range dead {
		if end, ok := r.ackedUntil[d.rec.Partition]; !ok || d.rec.Offset >= end {
			return false
		}
	}
	return true
}

// stop records the stop of the group's runners on a flooding batch and
// returns the error that aborts the batch and ends the session.
func (r *Runner[In, Out]) stop(ctx context.Context, recs []*kgo.Record, dead int) error {
	reason := fmt.Sprintf("%d of a batch of %d records would be dead-lettered, more than STAGE_DLQ_MAX_RATE=%g of the last STAGE_DLQ_WINDOW=%d records",
		dead, len(recs), r.cfg.DLQMaxRate, r.cfg.DLQWindow)
	offsets := map[int32]int64{}
	for _, rec := range recs {
		offsets[rec.Partition] = max(offsets[rec.Partition], rec.Offset+1)
	}
	ctl := Control{Stopped: true, Reason: reason, Offsets: offsets, At: time.Now().UTC(), By: r.cfg.InstanceID}
	if err := r.control.write(ctx, ctl); err != nil {
		return &transientError{1, err}
	}
	r.floodStarted()
	return fmt.Errorf("%s %s: %w: %w: %s; the batch is not committed", r.spec.Stage, r.spec.Dataset, errStopped, ErrDeadLetterFlood, reason)
}

// floodStarted marks the onset of a flood.
func (r *Runner[In, Out]) floodStarted() {
	r.flooding = true
	r.metrics.flood.WithLabelValues(r.spec.Stage, r.spec.Dataset).Set(1)
	r.metrics.floods.WithLabelValues(r.spec.Stage, r.spec.Dataset).Inc()
}

// updateFlood follows the rate after a committed batch: one warning when a
// flood starts and one when it ends, the metric, and the readiness detail.
func (r *Runner[In, Out]) updateFlood() {
	above := r.flood.above()
	rate, n := r.flood.rate()
	fields := []zap.Field{zap.Float64("rate", rate), zap.Int("records", n), zap.Float64("max_rate", r.cfg.DLQMaxRate)}
	switch {
	case above && !r.flooding:
		r.floodStarted()
		r.log.Warn("dead-letter flood; the stage goes on and commits its dead letters", fields...)
	case !above && r.flooding:
		r.flooding, r.acked = false, false
		r.metrics.flood.WithLabelValues(r.spec.Stage, r.spec.Dataset).Set(0)
		r.log.Warn("dead-letter flood ended", fields...)
	case !above:
		return
	}
	r.setReady(true, "")
}

// setReady tells Spec.OnReady whether the runner is consuming; while it
// is, through a flood, the reason is the flood's detail.
func (r *Runner[In, Out]) setReady(ready bool, reason string) {
	if ready && r.flooding {
		rate, n := r.flood.rate()
		reason = fmt.Sprintf("dead-letter flood: %.0f%% of the last %d records dead-lettered, above STAGE_DLQ_MAX_RATE=%g; the stage goes on",
			100*rate, n, r.cfg.DLQMaxRate)
	}
	r.spec.OnReady(ready, reason)
}

// errStuck marks a transaction that did not end within the transaction
// timeout. franz-go's GroupTransactSession.End waits for a heartbeat
// before it commits; when the group's session failed mid-batch (a broker
// restart), the group waits for the batch to allow a rebalance, which
// comes only after End: neither moves. After the transaction timeout the
// broker has aborted the transaction anyway.
var errStuck = errors.New("transaction stuck")

// session consumes in one group transact session until ctx ends, the stage
// must stop, or a transaction is stuck (errStuck).
func (r *Runner[In, Out]) session(ctx context.Context) error {
	opts, err := kafka.Opts(r.kafka, r.log)
	if err != nil {
		return err
	}
	stage, ds := r.spec.Stage, r.spec.Dataset
	if r.spec.Digest != nil {
		d, err := newDedupe(r.spec.StateTopic, r.kafka, r.log, r.cfg.StateDir)
		if err != nil {
			return fmt.Errorf("%s %s: %w", stage, ds, err)
		}
		defer func() {
			if err := d.close(); err != nil {
				r.log.Warn("could not remove the state directory", zap.Error(err))
			}
		}()
		r.dedupe = d
		opts = append(opts, kgo.RecordPartitioner(statePartitioner{
			topic: r.spec.StateTopic,
			def:   kgo.UniformBytesPartitioner(64<<10, true, true, nil), // franz-go's default
		}))
	}
	opts = append(opts,
		kgo.ConsumerGroup(r.spec.Group),
		kgo.ConsumeTopics(r.spec.Input),
		kgo.TransactionalID(r.TransactionalID()),
		// Static membership: a restarted process takes its partitions
		// back at once, without a rebalance and without waiting for its
		// predecessor's session to time out.
		kgo.InstanceID(r.cfg.InstanceID),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		// read_committed; franz-go always requires stable offsets (KIP-447).
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A fetch holds about a few batches' worth of records, not
		// franz-go's default of up to 50 MiB: what is fetched waits,
		// decompressed, in memory until it is polled.
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		kgo.BlockRebalanceOnPoll(),
		kgo.ClientID("datamill-"+stage),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			r.log.Info("partitions assigned", zap.Int32s("partitions", a[r.spec.Input]))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, rv map[string][]int32) {
			r.log.Info("partitions revoked", zap.Int32s("partitions", rv[r.spec.Input]))
			for _, p := range rv[r.spec.Input] {
				r.metrics.dropLag(stage, ds, p)
			}
			r.forget(rv[r.spec.Input])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			r.log.Warn("partitions lost", zap.Int32s("partitions", l[r.spec.Input]))
			for _, p := range l[r.spec.Input] {
				r.metrics.dropLag(stage, ds, p)
			}
			r.forget(l[r.spec.Input])
		}),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("%s %s: consumer group session: %w", stage, ds, err)
	}
	defer func() {
		sess.CloseAllowingRebalance()
		r.log.Info("left the group", zap.String("group", r.spec.Group))
	}()
	if err := kafka.EnsureTopics(ctx, sess.Client(), r.kafka, r.spec.Input, r.spec.Output, r.spec.DeadLetters); err != nil {
		return fmt.Errorf("%s %s: %w", stage, ds, err)
	}
	if r.dedupe != nil {
		// The state of input partition p lives in partition p.
		partitions, err := kafka.Partitions(ctx, sess.Client(), r.spec.Input)
		if err == nil {
			err = kafka.EnsureCompacted(ctx, sess.Client(), r.kafka, r.spec.StateTopic, partitions)
		}
		if err != nil {
			return fmt.Errorf("%s %s: state topic: %w", stage, ds, err)
		}
	}
	r.log.Info("consuming", zap.String("group", r.spec.Group), zap.String("transactional_id", r.TransactionalID()))
	r.setReady(true, "")

	// Work on a batch outlives ctx so that shutdown finishes the batch in
	// flight; ctx still ends polling, retries and pauses.
	work := context.WithoutCancel(ctx)
	pauses := 0
	r.watch = &stopwatch{m: r.metrics, stage: stage, dataset: ds, last: time.Now()}
	// A poll ends when the group's runners are stopped, so that an idle
	// runner stops too.
	poll := ctx
	if r.control != nil {
		var cancel context.CancelFunc
		poll, cancel = context.WithCancel(ctx)
		defer cancel()
		go r.control.cancelOnStop(poll, cancel)
	}
	for {
		fetches := sess.PollRecords(poll, r.cfg.BatchMax)
		r.watch.lap(PhasePoll)
		if fetches.IsClientClosed() || ctx.Err() != nil && fetches.NumRecords() == 0 {
			return nil
		}
		if r.control != nil && r.control.stopped() {
			// A runner of the group stopped on a flood: leave the
			// batch uncommitted and wait for the resume.
			return errStopped
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("fetch", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
			}
		})
		if fetches.NumRecords() == 0 {
			sess.AllowRebalance()
			continue
		}
		err := r.batch(ctx, work, sess, fetches)
		sess.AllowRebalance()
		var te *transientError
		switch {
		case err == nil:
			if pauses > 0 {
				r.log.Info("resumed")
				r.setReady(true, "")
			}
			pauses = 0
		case errors.As(err, &te):
			// Nothing was committed and the consumer was rewound to the
			// last commit: pause, then replay the batch.
			pauses++
			pause := r.cfg.backoff().Delay(r.cfg.Retries + 1 + pauses)
			r.log.Warn("batch failed; paused, it will be replayed", zap.Error(err), zap.Duration("pause", pause))
			r.setReady(false, err.Error())
			if !retry.Sleep(ctx, pause) {
				return nil
			}
		case errors.Is(err, errStopped):
			return err
		default:
			r.setReady(false, err.Error())
			return err
		}
	}
}

// The fetch sizes of a runner's consumer. A record larger than these is
// still fetched, alone (KIP-74). What is fetched waits in memory until it
// is polled, and costs far more there than its bytes on the wire: a
// compressed users record of about 70 bytes becomes a kgo.Record of about
// 160 bytes plus its decompressed value. At 4 MiB a fetch, a cleaner held
// about 60,000 such records, 20 MiB of its heap; 1 MiB still holds a few
// batches of STAGE_BATCH_MAX.
const (
	fetchMaxBytes          = 1 << 20
	fetchMaxPartitionBytes = 256 << 10
)

// deadLetter is one input bound for the dead-letter topic.
type deadLetter struct {
	rec     *kgo.Record
	reasons []string
}

// batch processes one polled batch in one transaction. It returns nil when
// the batch committed or was aborted by a rebalance (its records are then
// replayed by the partition's owner), a *transientError when it was aborted
// because a dependency failed, and any other error when the stage must stop.
func (r *Runner[In, Out]) batch(ctx, work context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) error {
	start := time.Now()
	stage, ds := r.spec.Stage, r.spec.Dataset
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			r.metrics.setLag(stage, ds, p.Partition, max(p.LastStableOffset-p.Records[n-1].Offset-1, 0))
		}
	})
	recs := fetches.Records()

	if err := sess.Begin(); err != nil {
		return fmt.Errorf("%s %s: begin transaction: %w", stage, ds, err)
	}
	c, err := r.process(ctx, work, sess, recs)
	if err != nil {
		if _, abortErr := r.end(work, sess, kgo.TryAbort); abortErr != nil {
			return fmt.Errorf("%s %s: abort transaction after %w: %w", stage, ds, err, abortErr)
		}
		r.metrics.txns.WithLabelValues(stage, ds, "aborted").Inc()
		return err
	}
	if r.beforeCommit != nil {
		r.beforeCommit()
	}
	committed, err := r.end(work, sess, kgo.TryCommit)
	r.watch.lap(PhaseCommit)
	if err != nil {
		return fmt.Errorf("%s %s: commit transaction: %w", stage, ds, err)
	}
	if !committed {
		r.metrics.txns.WithLabelValues(stage, ds, "aborted").Inc()
		r.log.Info("batch aborted by a rebalance; the partition's owner replays it", zap.Int("batch_size", len(recs)))
		return nil
	}
	if r.dedupe != nil {
		r.dedupe.commit(c.state)
	}
	r.flood.add(c.in, len(c.deadReasons))
	r.updateFlood()
	r.metrics.committed(stage, ds, c)
	r.metrics.batchSize.WithLabelValues(stage, ds).Observe(float64(len(recs)))
	r.metrics.batchSeconds.WithLabelValues(stage, ds).Observe(time.Since(start).Seconds())
	r.mu.Lock()
	r.counts.In += int64(c.in)
	r.counts.Out += int64(c.out)
	r.counts.DeadLettered += int64(len(c.deadReasons))
	r.counts.Duplicates += int64(c.duplicates)
	r.mu.Unlock()
	r.log.Debug("batch committed", zap.Int("batch_size", len(recs)), zap.Int("out", c.out), zap.Int("dead_lettered", len(c.deadReasons)))
	return nil
}

// end ends the open transaction, or gives up after the transaction
// timeout with an error wrapping errStuck: the session must then be
// replaced, as its producer would add the next batch to the transaction
// still open on the broker.
func (r *Runner[In, Out]) end(work context.Context, sess *kgo.GroupTransactSession, try kgo.TransactionEndTry) (bool, error) {
	ctx, cancel := context.WithTimeout(work, r.cfg.TransactionTimeout)
	defer cancel()
	committed, err := sess.End(ctx, try)
	if err != nil && ctx.Err() != nil {
		return false, fmt.Errorf("%w after %v: %w", errStuck, r.cfg.TransactionTimeout, err)
	}
	return committed, err
}

// process decodes, handles and produces one batch inside the open
// transaction.
func (r *Runner[In, Out]) process(ctx, work context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) (count, error) {
	if r.dedupe != nil {
		if err := r.dedupe.load(ctx, recs); err != nil {
			return count{}, &transientError{1, err}
		}
	}
	msgs := make([]Message[In], 0, len(recs))
	from := make([]*kgo.Record, 0, len(recs)) // from[i] is msgs[i]'s record
	var dead []deadLetter
	for _, rec := range recs {
		var v In
		err := r.retry(ctx, func() error { return r.spec.Decoder.Decode(rec.Value, &v) })
		switch {
		case err == nil:
			msgs = append(msgs, Message[In]{Key: rec.Key, Value: v, Raw: rec.Value, Origin: Origin{
				Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp,
			}})
			from = append(from, rec)
		case Classify(err) == ClassPermanent:
			dead = append(dead, deadLetter{rec, []string{"decode: " + err.Error()}})
		default:
			return count{}, err
		}
	}

	r.watch.lap(PhaseDecode)

	var res Result[Out]
	if len(msgs) > 0 {
		err := r.retry(ctx, func() error {
			var err error
			res, err = r.spec.Handler(work, msgs)
			return err
		})
		if err != nil {
			return count{}, err
		}
	}
	r.watch.lap(PhaseHandle)
	for _, rj := range res.Rejected {
		if rj.Index < 0 || rj.Index >= len(from) {
			return count{}, fmt.Errorf("%s %s: handler rejected index %d of a %d-message batch", r.spec.Stage, r.spec.Dataset, rj.Index, len(from))
		}
		dead = append(dead, deadLetter{from[rj.Index], rj.Reasons})
	}
	if r.control != nil && len(dead) > 0 && r.flood.exceeds(len(recs), len(dead)) && !r.letThrough(dead) {
		return count{}, r.stop(ctx, recs, len(dead))
	}

	c := count{in: len(recs)}
	for _, rec := range recs {
		c.bytesIn += len(rec.Key) + len(rec.Value)
	}
	var state []*kgo.Record // the changelog records of Spec.Digest
	if r.dedupe != nil {
		var dups int
		var err error
		if res.Outputs, dups, state, c.state, err = keepNew(r.dedupe, res.Outputs, from, r.spec.Digest); err != nil {
			return count{}, fmt.Errorf("%s %s: %w", r.spec.Stage, r.spec.Dataset, err) // transient when reading the state failed
		}
		res.Duplicates += dups
	}
	c.out, c.duplicates = len(res.Outputs), res.Duplicates
	var (
		produceMu  sync.Mutex
		produceErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			produceMu.Lock()
			produceErr = errors.Join(produceErr, err)
			produceMu.Unlock()
		}
	}
	for i := range res.Outputs {
		out := &res.Outputs[i]
		b, err := r.spec.Encoder.AppendEncode(nil, &out.Value)
		if err != nil {
			return count{}, fmt.Errorf("%s %s: encode output for %s: %w", r.spec.Stage, r.spec.Dataset, r.spec.Output, err)
		}
		key := out.Key
		if r.spec.Keys != nil && key != nil {
			key = r.spec.Keys.Append(nil, key)
		}
		sess.Produce(work, &kgo.Record{Topic: r.spec.Output, Key: key, Value: b}, promise)
		c.bytesOut += len(key) + len(b)
	}
	for _, rec := range state {
		sess.Produce(work, rec, promise)
		c.bytesOut += len(rec.Key) + len(rec.Value)
	}
	now := time.Now()
	for _, d := range dead {
		rec, err := r.deadLetterRecord(d, now)
		if err != nil {
			return count{}, err
		}
		sess.Produce(work, rec, promise)
		c.bytesOut += len(rec.Key) + len(rec.Value)
		c.deadReasons = append(c.deadReasons, d.reasons[0])
		r.log.Info("dead-lettered", zap.Int32("partition", d.rec.Partition), zap.Int64("offset", d.rec.Offset), zap.Strings("reasons", d.reasons))
	}
	if err := sess.Client().Flush(work); err != nil {
		return count{}, &transientError{1, fmt.Errorf("flush outputs: %w", err)}
	}
	if produceErr != nil {
		return count{}, &transientError{1, fmt.Errorf("produce outputs: %w", produceErr)}
	}
	r.watch.lap(PhaseProduce)
	return c, nil
}

// deadLetterRecord wraps an input in the dead-letter envelope.
func (r *Runner[In, Out]) deadLetterRecord(d deadLetter, now time.Time) (*kgo.Record, error) {
	rec, err := DeadLetterRecord(r.spec.DeadLetterEncoder, r.spec.DeadLetters, r.spec.Dataset, r.spec.Stage, d.rec, d.reasons, now)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.spec.Stage, r.spec.Dataset, err)
	}
	return rec, nil
}

// DeadLetterRecord builds the record for topic (dlq.<dataset>) of an input
// that step stage refused for reasons: the input's key and bytes in the
// dead-letter envelope, with the stage, the reasons and the input's origin
// (topic, partition, offset) also as headers. An input that did not come
// from Kafka names its source in Topic, with Partition -1 and its place in
// the source in Offset (a line or item number).
func DeadLetterRecord(enc Encoder[schemas.DeadLetter], topic, dataset, stage string, in *kgo.Record, reasons []string, at time.Time) (*kgo.Record, error) {
	env := schemas.DeadLetter{
		Dataset:         dataset,
		Stage:           stage,
		Reasons:         reasons,
		SourceTopic:     in.Topic,
		SourcePartition: in.Partition,
		SourceOffset:    in.Offset,
		Value:           in.Value,
		FailedAt:        at,
	}
	if in.Key != nil {
		env.Key = &in.Key
	}
	b, err := enc.AppendEncode(nil, &env)
	if err != nil {
		return nil, fmt.Errorf("encode dead letter: %w", err)
	}
	return &kgo.Record{
		Topic: topic,
		Key:   in.Key,
		Value: b,
		Headers: []kgo.RecordHeader{
			{Key: HeaderStage, Value: []byte(stage)},
			{Key: HeaderReason, Value: []byte(strings.Join(reasons, "; "))},
			{Key: HeaderSourceTopic, Value: []byte(in.Topic)},
			{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(in.Partition)))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(in.Offset, 10))},
		},
	}, nil
}

// Dead-letter record headers.
const (
	HeaderStage           = "datamill.stage"
	HeaderReason          = "datamill.reason"
	HeaderSourceTopic     = "datamill.source.topic"
	HeaderSourcePartition = "datamill.source.partition"
	HeaderSourceOffset    = "datamill.source.offset"
)

// retry calls fn until it succeeds, fails permanently, or has failed
// transiently Retries times, backing off between attempts.
func (r *Runner[In, Out]) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || Classify(err) != ClassTransient {
			return err
		}
		if attempt >= r.cfg.Retries {
			return &transientError{attempts: attempt, err: err}
		}
		r.log.Debug("transient failure; retrying", zap.Int("attempt", attempt), zap.Error(err))
		if !r.cfg.backoff().Wait(ctx, attempt) {
			return &transientError{attempts: attempt, err: err}
		}
	}
}

// forget drops the state of partitions no longer owned.
func (r *Runner[In, Out]) forget(partitions []int32) {
	if r.dedupe != nil {
		r.dedupe.forget(partitions)
	}
}
