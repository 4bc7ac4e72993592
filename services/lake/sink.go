package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/pkg/serde"
)

// sink archives one dataset's raw topic into the lake.
type sink struct {
	dataset   string
	group     string // the consumer group, stage.Group("lake", dataset)
	cfg       sinkConfig
	kafka     kafka.Config
	prefix    string
	store     *lake.Store
	db        *pgxpool.Pool
	codec     *serde.Codec[map[string]any]
	log       *zap.Logger
	metrics   *metrics
	maxBuffer int    // bytes buffered across partitions (records.held)
	writtenBy string // the manifest's written_by
	ready     func(ready bool, reason string)
	faults    faults

	// topicID is the Kafka topic id of the raw topic (hex), read when
	// the run starts: it goes into every key, object and manifest row.
	topicID string

	mu       sync.Mutex
	parts    map[int32]*partition // the partitions assigned
	buffered int                  // bytes held by the records of parts
	peak     int                  // the most buffered at any time
}

// faults are the test's hooks into a cut: an error returned by one stops
// the cut there, as a crash would.
type faults struct {
	afterUpload, afterManifest func(key string) error
}

// partition is the state of one assigned partition.
type partition struct {
	// start is where the partition's next object starts; -1 until known
	// (the first record read).
	start int64
	recs  records   // read since start, waiting for their cut
	grew  time.Time // when recs last grew, for LAKE_FLUSH_INTERVAL
}

// errFatal marks an error no retry can fix.
type errFatal struct{ err error }

func (e errFatal) Error() string { return e.err.Error() }
func (e errFatal) Unwrap() error { return e.err }

// fatal reports whether err stops the sink instead of being retried.
func fatal(err error) bool {
	var f errFatal
	return errors.As(err, &f) || errors.Is(err, lake.ErrNotEncrypted) || errors.Is(err, lake.ErrExists)
}

func (s *sink) topic() string { return kafka.Topic(kafka.Raw, s.dataset) }

// run consumes until ctx ends, then archives what it buffered, commits and
// leaves the group.
func (s *sink) run(ctx context.Context) error {
	s.parts = map[int32]*partition{}
	s.setReady(false, "s3: not checked yet")
	backoff := retry.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.store.Ping(pctx)
		cancel()
		if err == nil {
			break
		}
		s.setReady(false, "s3: "+err.Error())
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("s3 not reachable; retrying", zap.Int("attempt", attempt), zap.Error(err))
		}
		if !backoff.Wait(ctx, attempt) {
			return nil
		}
	}
	topic := s.topic()
	id, err := s.readTopicID(ctx)
	if err != nil {
		return err
	}
	s.topicID = id
	s.setReady(false, "joining the consumer group")
	cl, err := kafka.NewClient(s.kafka, s.log,
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(s.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(s.cfg.SessionTimeout/3, 3*time.Second)),
		kgo.BlockRebalanceOnPoll(),
		kgo.ClientID("datamill-"+stageName),
		// What is fetched waits in memory, decompressed, until it is
		// polled and copied into the buffers: a few hundred KiB a
		// partition keeps up with the cuts (pkg/stage's runners take
		// twice that).
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		kgo.AdjustFetchOffsetsFn(s.assigned),
		// Called after every join, even with nothing assigned: the sink
		// is in its group.
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { s.setReady(true, "") }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, rv map[string][]int32) {
			s.log.Info("partitions revoked", zap.Int32s("partitions", rv[topic]))
			s.forget(rv[topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			s.log.Warn("partitions lost", zap.Int32s("partitions", l[topic]))
			s.forget(l[topic])
		}),
	)
	if err != nil {
		return err
	}
	defer func() {
		cl.Close()
		s.log.Info("left the group")
	}()
	// Work on what was read outlives ctx by a grace period, so that a
	// cut in flight finishes and shutdown archives what is buffered;
	// ctx still ends polling.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancelWork) })
	defer stopGrace()
	tick := max(min(s.cfg.FlushInterval/2, time.Second), 10*time.Millisecond)
	for {
		pctx, cancel := context.WithTimeout(ctx, tick)
		fetches := cl.PollRecords(pctx, 10000)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("fetch", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
			}
		})
		err := s.add(work, cl, fetches)
		if err == nil {
			now := time.Now()
			shutdown := ctx.Err() != nil
			err = s.flush(work, cl, func(pt *partition) bool { return shutdown || now.Sub(pt.grew) >= s.cfg.FlushInterval })
		}
		cl.AllowRebalance()
		switch {
		case err != nil:
			s.setReady(false, err.Error())
			return err
		case ctx.Err() != nil:
			return nil
		}
	}
}

// readTopicID creates the raw topic if it is missing and returns its
// topic id in hex. It reads it before the sink joins its group, so that
// the partitions assigned are resumed from the manifest of this topic,
// not of an older one of the same name. A topic deleted and created again
// while the sink runs is not noticed until the sink restarts.
func (s *sink) readTopicID(ctx context.Context) (string, error) {
	cl, err := kafka.NewClient(s.kafka, s.log, kgo.ClientID("datamill-"+stageName))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	topic := s.topic()
	if err := kafka.EnsureTopics(ctx, cl, s.kafka, topic); err != nil {
		return "", fmt.Errorf("lake %s: %w", s.dataset, err)
	}
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		return "", fmt.Errorf("lake %s: topic id of %s: %w", s.dataset, topic, err)
	}
	id := details[topic].ID
	s.log.Info("topic id read", zap.String("topic", topic), zap.String("topic_id", hex.EncodeToString(id[:])))
	return hex.EncodeToString(id[:]), nil
}

// The fetch sizes of the sink's consumer. A record larger than these is
// still fetched, alone (KIP-74).
const (
	fetchMaxBytes          = 2 << 20
	fetchMaxPartitionBytes = 256 << 10
)

// shutdownGrace bounds the work of a sink after its context ended: the
// cut in flight and the last cut of every buffer.
const shutdownGrace = 30 * time.Second

func (s *sink) setReady(ready bool, reason string) {
	if s.ready != nil {
		s.ready(ready, reason)
	}
}

// assigned is where newly assigned partitions start: the manifest's end
// for the current topic id, else the committed offset, else the first
// record read. The committed offset is not trusted when the manifest holds
// objects of the partition under another topic id only: the group's
// offsets survive a topic's deletion on some brokers, and a commit of the
// current topic follows its manifest row. It is called once the group's
// committed offsets are fetched, before fetching starts.
func (s *sink) assigned(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	topic := s.topic()
	for p, committed := range offsets[topic] {
		end, ok, other, err := resume(ctx, s.db, topic, s.topicID, p)
		if err != nil {
			return nil, err
		}
		start := int64(-1)
		switch c := committed.EpochOffset().Offset; {
		case ok:
			start = end
		case other:
			// The first record read, from the start of the topic.
			offsets[topic][p] = kgo.NewOffset().AtStart()
		case c >= 0:
			start = c
		}
		if start >= 0 {
			offsets[topic][p] = kgo.NewOffset().At(start)
		}
		s.mu.Lock()
		s.drop(p)
		s.parts[p] = &partition{start: start, grew: time.Now()}
		s.mu.Unlock()
		s.log.Info("partition assigned", zap.Int32("partition", p), zap.Int64("offset", start))
	}
	return offsets, nil
}

// forget drops the state of revoked or lost partitions: what was committed
// for them is in the lake, what was not is read again by their next owner.
func (s *sink) forget(partitions []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range partitions {
		s.drop(p)
		s.metrics.stage.Lag(stageName, s.dataset, p, -1)
	}
}

// drop removes partition p's state; s.mu is held.
func (s *sink) drop(p int32) {
	if pt := s.parts[p]; pt != nil {
		s.buffered -= pt.recs.held
		s.metrics.buffered.WithLabelValues(s.dataset).Set(float64(s.buffered))
		delete(s.parts, p)
	}
}

func (s *sink) part(p int32) *partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[p]
}

// add buffers the records of fetches, cutting where they say.
func (s *sink) add(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) error {
	var err error
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if err != nil || fp.Topic != s.topic() || len(fp.Records) == 0 {
			return
		}
		last := fp.Records[len(fp.Records)-1].Offset
		s.metrics.stage.Lag(stageName, s.dataset, fp.Partition, max(fp.LastStableOffset-last-1, 0))
		for _, r := range fp.Records {
			if err = s.offer(ctx, cl, fp.Partition, r); err != nil {
				return
			}
		}
	})
	return err
}

// offer buffers one record of partition p: before it a record of another
// hour cuts the buffer, and so does the cap on what is buffered; after it,
// the count and size limits.
func (s *sink) offer(ctx context.Context, cl *kgo.Client, p int32, r *kgo.Record) error {
	pt := s.part(p)
	if pt == nil {
		return nil // revoked
	}
	if pt.start < 0 {
		pt.start = r.Offset
	}
	if r.Offset < pt.start || pt.recs.n > 0 && r.Offset <= pt.recs.last.offset {
		return nil // archived or buffered already
	}
	rec := buffered{offset: r.Offset, epoch: r.LeaderEpoch, ts: r.Timestamp.UTC(), key: r.Key, value: r.Value}
	if pt.recs.n > 0 && !rec.ts.Truncate(time.Hour).Equal(pt.recs.first.ts.Truncate(time.Hour)) {
		if err := s.cut(ctx, cl, p, pt); err != nil {
			return err
		}
	}
	// The cap counts what the buffers allocate: a record that does not
	// fit in its partition's last chunk needs a new one, allocated first
	// and counted whole, and the largest buffers are cut until it fits.
	// A chunk takes at most the room left and a sixteenth of the cap, so
	// that under a small cap one partition's chunk does not take it all.
	var chunk []byte
	for !pt.recs.fits(rec.size()) {
		s.mu.Lock()
		if chunk == nil {
			chunk = pt.recs.newChunk(rec.size(), min(s.maxBuffer-s.buffered, s.maxBuffer/16))
		}
		over := s.buffered > 0 && s.buffered+cap(chunk) > s.maxBuffer
		var largest int32
		if over {
			largest = s.largest()
		}
		s.mu.Unlock()
		if !over {
			break
		}
		if err := s.cut(ctx, cl, largest, s.part(largest)); err != nil {
			return err
		}
	}
	if r.Offset < pt.start {
		return nil // in an object adopted by a cut just now
	}
	if pt.recs.fits(rec.size()) {
		chunk = nil // a cut kept records of this partition, in a chunk with room
	}
	grew := pt.recs.add(rec, chunk)
	pt.grew = time.Now()
	if grew > 0 {
		s.mu.Lock()
		s.buffered += grew
		s.peak = max(s.peak, s.buffered)
		s.metrics.buffered.WithLabelValues(s.dataset).Set(float64(s.buffered))
		s.mu.Unlock()
	}
	if pt.recs.n >= s.cfg.MaxRecords || pt.recs.values >= s.cfg.MaxBytes {
		return s.cut(ctx, cl, p, pt)
	}
	return nil
}

// largest returns the partition whose records hold the most bytes; s.mu
// is held and something is buffered.
func (s *sink) largest() int32 {
	var best int32
	most := -1
	for p, pt := range s.parts {
		if pt.recs.held > most {
			best, most = p, pt.recs.held
		}
	}
	return best
}

// flush cuts the buffers of the partitions for which cut says so, in
// partition order.
func (s *sink) flush(ctx context.Context, cl *kgo.Client, cut func(*partition) bool) error {
	s.mu.Lock()
	var due []int32
	for p, pt := range s.parts {
		if pt.recs.n > 0 && cut(pt) {
			due = append(due, p)
		}
	}
	s.mu.Unlock()
	slices.Sort(due)
	for _, p := range due {
		if pt := s.part(p); pt != nil {
			if err := s.cut(ctx, cl, p, pt); err != nil {
				return err
			}
		}
	}
	return nil
}

// cut archives partition p's buffer as one object: written to a spool
// file, uploaded if its key is free (else the object there adopted),
// recorded in the manifest, and its End committed. The buffer keeps only
// the records at or above End, where the next object starts.
func (s *sink) cut(ctx context.Context, cl *kgo.Client, p int32, pt *partition) error {
	if pt == nil || pt.recs.n == 0 {
		return nil
	}
	topic := s.topic()
	first, last := pt.recs.first, pt.recs.last
	meta := lake.Meta{
		Dataset: s.dataset, Topic: topic, TopicID: s.topicID, Partition: p,
		Start: pt.start, End: last.offset + 1, Schema: s.codec.Schema(),
	}
	key := lake.Key(s.prefix, s.dataset, topic, s.topicID, p, pt.start, first.ts)
	f, size, err := s.spool(&pt.recs, &meta)
	if err != nil {
		return err
	}
	defer func() {
		_ = f.Close() // a spool file, removed next
		_ = os.Remove(f.Name())
	}()
	began := time.Now()
	err = s.retrying(ctx, "upload "+key, func(ctx context.Context) error {
		return s.store.PutNew(ctx, key, io.NewSectionReader(f, 0, size), size, meta.UserMetadata())
	})
	s.metrics.upload.Observe(time.Since(began).Seconds())
	adopted := errors.Is(err, lake.ErrExists)
	switch {
	case adopted:
		if meta, size, err = s.adopt(ctx, key, meta); err != nil {
			return err
		}
	case errors.Is(err, lake.ErrNotEncrypted):
		return fmt.Errorf("upload %s: %w; the sink stops rather than keep raw events unencrypted", key, err)
	case err != nil:
		return err
	}
	if s.faults.afterUpload != nil {
		if err := s.faults.afterUpload(key); err != nil {
			return err
		}
	}
	o := object{
		Dataset: s.dataset, Topic: topic, TopicID: s.topicID, Partition: p, Start: meta.Start, End: meta.End, Key: key,
		Records: meta.Records, Bytes: size, First: first.ts, Adopted: adopted, WrittenBy: s.writtenBy,
	}
	covered, valueBytes, epoch := 0, 0, int32(-1)
	for r := range pt.recs.all() {
		if r.offset >= meta.End {
			break
		}
		covered++
		valueBytes += len(r.value) + len(r.key)
		epoch = r.epoch
		if r.offset == meta.End-1 {
			o.Last = r.ts // the object's last record
		}
	}
	if err := s.retrying(ctx, "manifest "+key, func(ctx context.Context) error { return record(ctx, s.db, o) }); err != nil {
		return err
	}
	if s.faults.afterManifest != nil {
		if err := s.faults.afterManifest(key); err != nil {
			return err
		}
	}
	s.commit(ctx, cl, p, meta.End, epoch)

	s.mu.Lock()
	if s.parts[p] == pt {
		// The chunks are dropped, not kept for the next records: a
		// partition idle after its cut then holds nothing.
		var keep records
		if covered < pt.recs.n {
			keep = pt.recs.from(meta.End) // an adopted object ended before the buffer
		}
		s.buffered -= pt.recs.held - keep.held
		pt.recs = keep
		pt.start = meta.End
		s.metrics.buffered.WithLabelValues(s.dataset).Set(float64(s.buffered))
	}
	s.mu.Unlock()
	outcome := "written"
	if adopted {
		outcome = "adopted"
	} else {
		s.metrics.bytes.WithLabelValues(s.dataset).Add(float64(size))
	}
	s.metrics.objects.WithLabelValues(s.dataset, outcome).Inc()
	s.metrics.stage.Committed(stageName, s.dataset, covered, valueBytes)
	s.log.Debug("object "+outcome, zap.String("key", key), zap.Int32("partition", p),
		zap.Int64("offset", meta.Start), zap.Int64("end", meta.End), zap.Int64("records", meta.Records))
	return nil
}

// spool writes the object of recs to a new file of the spool directory and
// returns it with its size; it sets meta.Records. A value that does not
// decode with the raw schema is left out.
func (s *sink) spool(recs *records, meta *lake.Meta) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.cfg.SpoolDir, "lake-*.parquet")
	if err != nil {
		return nil, 0, errFatal{fmt.Errorf("spool file: %w", err)}
	}
	fail := func(err error) (*os.File, int64, error) {
		_ = f.Close() // removed next; err is the one returned
		_ = os.Remove(f.Name())
		return nil, 0, err
	}
	w, err := lake.NewWriter(f, meta.Schema)
	if err != nil {
		return fail(errFatal{fmt.Errorf("lake writer: %w", err)})
	}
	meta.Records = 0
	// One map for every record: the Writer copies what it keeps, and a
	// new map a record was most of a cut's garbage.
	v := map[string]any{}
	for r := range recs.all() {
		clear(v)
		if err := s.codec.Decode(r.value, &v); err != nil {
			if !errors.Is(err, serde.ErrMalformed) {
				return fail(fmt.Errorf("decode %s/%d@%d: %w", meta.Topic, meta.Partition, r.offset, err))
			}
			s.log.Warn("record left out of the lake: its value does not decode", zap.Int32("partition", meta.Partition),
				zap.Int64("offset", r.offset), zap.Error(err))
			s.metrics.skipped.WithLabelValues(s.dataset, "undecodable").Inc()
			continue
		}
		env := lake.Envelope{
			Topic: meta.Topic, Partition: meta.Partition, Offset: r.offset, Timestamp: r.ts,
			SchemaID: int(binary.BigEndian.Uint32(r.value[1:5])), Key: r.key,
		}
		if err := w.Write(v, env); err != nil {
			return fail(errFatal{fmt.Errorf("write %s/%d@%d: %w", meta.Topic, meta.Partition, r.offset, err)})
		}
		meta.Records++
	}
	if err := w.Close(*meta); err != nil {
		return fail(errFatal{fmt.Errorf("close the object of %s/%d@%d: %w", meta.Topic, meta.Partition, meta.Start, err)})
	}
	info, err := f.Stat()
	if err != nil {
		return fail(errFatal{fmt.Errorf("spool file: %w", err)})
	}
	return f, info.Size(), nil
}

// adopt reads the metadata of the object already at key, which the sink's
// own object of meta would have been: its End is authoritative.
func (s *sink) adopt(ctx context.Context, key string, meta lake.Meta) (lake.Meta, int64, error) {
	var head lake.Object
	if err := s.retrying(ctx, "head "+key, func(ctx context.Context) (err error) {
		head, err = s.store.Head(ctx, key)
		return err
	}); err != nil {
		return meta, 0, err
	}
	there, err := lake.ParseUserMetadata(head.Meta)
	if err != nil {
		return meta, 0, errFatal{fmt.Errorf("adopt %s: %w", key, err)}
	}
	if there.Topic != meta.Topic || there.TopicID != meta.TopicID || there.Partition != meta.Partition ||
		there.Start != meta.Start || there.End <= there.Start {
		return meta, 0, errFatal{fmt.Errorf("adopt %s: it holds %s (topic id %s)/%d [%d, %d), not an object of topic id %s starting at %d",
			key, there.Topic, there.TopicID, there.Partition, there.Start, there.End, meta.TopicID, meta.Start)}
	}
	s.log.Info("object adopted: already stored under its key", zap.String("key", key),
		zap.Int64("offset", there.Start), zap.Int64("end", there.End), zap.Int64("buffered_end", meta.End))
	there.Dataset, there.Schema = meta.Dataset, meta.Schema
	return there, head.Size, nil
}

// commit commits end for partition p. A failure is only logged: the
// manifest, written before, is where the partition's next owner starts.
func (s *sink) commit(ctx context.Context, cl *kgo.Client, p int32, end int64, epoch int32) {
	offsets := map[string]map[int32]kgo.EpochOffset{s.topic(): {p: {Epoch: epoch, Offset: end}}}
	var failed error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failed = err
			return
		}
		for _, t := range resp.Topics {
			for _, part := range t.Partitions {
				if part.ErrorCode != 0 {
					failed = fmt.Errorf("error code %d", part.ErrorCode)
				}
			}
		}
	})
	if failed != nil {
		s.log.Warn("offset not committed; the manifest has it", zap.Int32("partition", p), zap.Int64("offset", end), zap.Error(failed))
	}
}

// retrying runs op until it succeeds, fails for good (fatal) or ctx ends,
// the sink not ready meanwhile.
func (s *sink) retrying(ctx context.Context, what string, op func(context.Context) error) error {
	backoff := retry.Backoff{First: 200 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if attempt > 1 {
				s.setReady(true, "")
			}
			return nil
		}
		if fatal(err) {
			return err
		}
		s.setReady(false, what+": "+err.Error())
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("retrying", zap.String("operation", what), zap.Int("attempt", attempt), zap.Error(err))
		}
		if !backoff.Wait(ctx, attempt) {
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		}
	}
}
