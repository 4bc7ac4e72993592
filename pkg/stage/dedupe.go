package stage

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/hashfile"
	"github.com/datamill/datamill/pkg/kafka"
)

// dedupe is the state behind Spec.Digest: for each input partition the
// runner owns, the digest of the last output it committed for every key.
//
// The state of input partition p lives in partition p of a compacted
// changelog topic, one record per key whose value is the digest. A batch
// writes its changes to the changelog in its own transaction, so the
// changelog moves exactly with the committed offsets; a partition's state
// is read back from it (read_committed) the first time a batch holds the
// partition after an assignment, and forgotten when the partition is
// revoked or lost.
//
// Records of one key share an input partition (the contract), so the
// partition that sees a key is the one that knows its last digest.
//
// The state is kept on local disk, not in memory, so that a stage's memory
// does not grow with its keys: one hashfile.Table per partition, in a
// directory of the runner's own under Config.StateDir (see stateDir). Keys
// and digests are kept as 64-bit hashes, 16 bytes a key whatever their
// length. Two keys whose hashes collide (about one chance in 2^64 for a
// pair) share an entry; that can only make a record look new when it is
// not, never drop a new one, unless its digest's hash collides too.
type dedupe struct {
	topic string
	kafka kafka.Config
	log   *zap.Logger
	seed  maphash.Seed
	dir   *stateDir

	mu    sync.Mutex
	parts map[int32]*hashfile.Table // partition → its keys' last digests
}

// changes are a batch's state changes: partition → key hash → digest hash.
type changes map[int32]map[uint64]uint64

func newDedupe(topic string, kcfg kafka.Config, log *zap.Logger, base string) (*dedupe, error) {
	dir, err := openStateDir(base, log)
	if err != nil {
		return nil, err
	}
	return &dedupe{topic: topic, kafka: kcfg, log: log, seed: maphash.MakeSeed(), dir: dir, parts: map[int32]*hashfile.Table{}}, nil
}

func (d *dedupe) hash(b []byte) uint64 { return maphash.Bytes(d.seed, b) }

// close drops every partition's state and the runner's directory.
func (d *dedupe) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, t := range d.parts {
		_ = t.Close() // its directory goes next
		delete(d.parts, p)
	}
	return d.dir.remove()
}

// forget drops the state of partitions no longer owned.
func (d *dedupe) forget(partitions []int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range partitions {
		d.drop(p)
	}
}

// drop closes and removes partition p's table; d.mu is held.
func (d *dedupe) drop(p int32) {
	if t, ok := d.parts[p]; ok {
		if err := t.Close(); err != nil {
			d.log.Warn("could not remove a partition's state file", zap.Int32("partition", p), zap.Error(err))
		}
		delete(d.parts, p)
	}
}

// load reads the state of every partition in recs that is not loaded yet.
func (d *dedupe) load(ctx context.Context, recs []*kgo.Record) error {
	var missing []int32
	d.mu.Lock()
	for _, rec := range recs {
		if _, ok := d.parts[rec.Partition]; !ok && !slices.Contains(missing, rec.Partition) {
			missing = append(missing, rec.Partition)
		}
	}
	d.mu.Unlock()
	for _, p := range missing {
		start := time.Now()
		state, err := d.restore(ctx, p)
		if err != nil {
			return fmt.Errorf("restore partition %d of %s: %w", p, d.topic, err)
		}
		d.log.Info("state restored", zap.String("changelog", d.topic), zap.Int32("partition", p),
			zap.Int("keys", state.Len()), zap.Duration("took", time.Since(start)))
		d.mu.Lock()
		d.parts[p] = state
		d.mu.Unlock()
	}
	return nil
}

// restore reads partition p of the changelog into a new table.
func (d *dedupe) restore(ctx context.Context, p int32) (*hashfile.Table, error) {
	state, err := hashfile.Create(d.dir.file(p))
	if err != nil {
		return nil, err
	}
	var werr error
	err = kafka.ReadCommitted(ctx, d.kafka, d.log, d.topic, []int32{p}, func(rec *kgo.Record) {
		if werr != nil {
			return
		}
		if rec.Value == nil {
			werr = state.Delete(d.hash(rec.Key))
		} else {
			werr = state.Put(d.hash(rec.Key), d.hash(rec.Value))
		}
	})
	if err = errors.Join(err, werr); err != nil {
		return nil, errors.Join(err, state.Close())
	}
	return state, nil
}

// keepNew drops the outputs whose digest equals the last one committed or
// pending for their key on their input's partition. from[i] is the record
// of input i. It returns the outputs kept, how many inputs had all their
// outputs dropped, and the changelog records and state changes of the kept
// ones.
func keepNew[Out any](d *dedupe, outs []Output[Out], from []*kgo.Record, digest func(Out) string) ([]Output[Out], int, []*kgo.Record, changes, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pending := changes{}
	var (
		kept     []Output[Out]
		records  []*kgo.Record
		produced = map[int]int{} // input index → outputs kept
		dropped  = map[int]int{} // input index → outputs dropped
	)
	for _, out := range outs {
		if out.from < 1 || out.from > len(from) {
			return nil, 0, nil, nil, errors.New("Spec.Digest needs a Handler made by PerRecord")
		}
		i := out.from - 1
		p, value := from[i].Partition, digest(out.Value)
		key, sum := d.hash(out.Key), maphash.String(d.seed, value)
		last, ok := pending[p][key]
		if state := d.parts[p]; !ok && state != nil { // nil: lost since load, the batch cannot commit
			var err error
			if last, ok, err = state.Get(key); err != nil {
				// Read again from the changelog when the batch is replayed.
				d.drop(p)
				return nil, 0, nil, nil, &transientError{1, fmt.Errorf("state of partition %d: %w", p, err)}
			}
		}
		if ok && last == sum {
			dropped[i]++
			continue
		}
		if pending[p] == nil {
			pending[p] = map[uint64]uint64{}
		}
		pending[p][key] = sum
		kept = append(kept, out)
		produced[i]++
		records = append(records, &kgo.Record{Topic: d.topic, Partition: p, Key: out.Key, Value: []byte(value)})
	}
	duplicates := 0
	for i := range dropped {
		if produced[i] == 0 {
			duplicates++
		}
	}
	return kept, duplicates, records, pending, nil
}

// commit applies a committed batch's changes to the partitions still
// owned. A partition whose table fails to take them is dropped, to be
// restored from the changelog (which has the batch) by its next batch.
func (d *dedupe) commit(c changes) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, keys := range c {
		state, ok := d.parts[p]
		if !ok {
			continue
		}
		for k, v := range keys {
			if err := state.Put(k, v); err != nil {
				d.log.Warn("could not keep a partition's state; it is read again from the changelog",
					zap.String("changelog", d.topic), zap.Int32("partition", p), zap.Error(err))
				d.drop(p)
				break
			}
		}
	}
}

// statePartitioner sends changelog records to the partition they name and
// every other record where the default partitioner would.
type statePartitioner struct {
	topic string
	def   kgo.Partitioner
}

func (s statePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == s.topic {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return s.def.ForTopic(topic)
}
