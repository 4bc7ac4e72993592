// Package files is the extractor's file source: it publishes the files of
// its patterns (a file, a glob or a watched directory, each for one dataset)
// — CSV with a header row, JSON arrays, NDJSON — and scans them again every
// interval, so files dropped into a directory are picked up. A file is
// published in batches, each in one transaction with the file's checkpoint
// (how many records were published, and a digest of their event ids) on the
// compacted topic _state.extractor.files, so a restart goes on where the
// last committed batch ended, with nothing published twice. Record n of a
// file is timed from the file's base time plus n µs, and its event id
// hashes that time, so reading a file again reproduces its events exactly.
// A file that grows is read on from its checkpoint with the same base; one
// rewritten is read again from the start with a new base, later than every
// event of the previous version. Records that cannot be read, and records
// larger than the broker takes, go to dlq.<dataset> with their position and
// reason; the rest of the file goes on.
package files

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/progress"
	"github.com/datamill/datamill/services/extractor/internal/publish"
)

// CheckpointTopic holds one checkpoint per file, the last one winning.
var CheckpointTopic = kafka.StateTopic("extractor", "files")

// fileExtensions are the files a watched directory offers.
var fileExtensions = []string{".csv", ".json", ".ndjson", ".jsonl"}

// Pattern is where the files of a dataset are: a file, a glob, or a
// directory.
type Pattern struct {
	Dataset, Path string
}

// files lists the files of the pattern, sorted: every data file of a
// directory, or what a glob (or a plain path) matches. Names starting with
// a dot are left alone: they are files still being written.
func (p Pattern) files() ([]string, error) {
	glob := p.Path
	if st, err := os.Stat(p.Path); err == nil && st.IsDir() {
		glob = filepath.Join(p.Path, "*")
	}
	matches, err := filepath.Glob(glob)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		name := filepath.Base(m)
		if strings.HasPrefix(name, ".") || !slices.Contains(fileExtensions, strings.ToLower(filepath.Ext(name))) && glob != p.Path {
			continue
		}
		if st, err := os.Stat(m); err != nil || !st.Mode().IsRegular() {
			continue
		}
		abs, err := filepath.Abs(m)
		if err != nil {
			return nil, err
		}
		out = append(out, abs)
	}
	slices.Sort(out)
	return out, nil
}

// Checkpoint is how far a file was published, committed in the same
// transaction as the records it counts.
type Checkpoint struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	// Base is the ingestion time of the file's first record; record n is
	// timed Base + n µs, whenever and however often it is read, so that
	// re-reading the file reproduces the same events.
	Base time.Time `json:"base"`
	// Records counts the records published, readable or dead-lettered,
	// and Digest hashes their event ids (or positions), to tell a file
	// that grew from one that was rewritten.
	Records int64  `json:"records"`
	Digest  string `json:"digest"`
	Done    bool   `json:"done"`
}

// Config is what a file source needs.
type Config struct {
	Log   *zap.Logger
	Kafka kafka.Config
	// Out publishes the records with their files' checkpoints.
	Out *publish.Producer
	// Datasets are the datasets the patterns name, by name.
	Datasets map[string]*publish.Dataset
	Patterns []Pattern
	// Batch is the most records of a file published in one transaction.
	Batch int
	// Interval is how often the patterns are scanned again.
	Interval time.Duration
	// Terminal is where progress bars go, when it is a terminal.
	Terminal io.Writer
	// Records counts the records published, Dead the records
	// dead-lettered, Done the files read to their end, by dataset.
	Records, Dead, Done *prometheus.CounterVec
}

// Source publishes the files of its patterns, scanning them again every
// interval: new files, files that grew or changed, and the rest of files a
// previous run did not finish.
type Source struct {
	cfg   Config
	log   *zap.Logger
	marks map[string]Checkpoint // by checkpointKey
}

// New returns the file source of cfg, or an error naming a pattern that is
// no glob or whose dataset cfg lacks.
func New(cfg Config) (*Source, error) {
	for _, p := range cfg.Patterns {
		if cfg.Datasets[p.Dataset] == nil {
			return nil, fmt.Errorf("files %s: unknown dataset %q", p.Path, p.Dataset)
		}
		if _, err := filepath.Match(p.Path, ""); err != nil {
			return nil, fmt.Errorf("files %s of dataset %s: %w", p.Path, p.Dataset, err)
		}
	}
	return &Source{cfg: cfg, log: cfg.Log}, nil
}

func checkpointKey(dataset, path string) string { return dataset + "\x00" + path }

// Run loads the checkpoints, then scans until ctx ends, when it returns
// nil; it returns an error when the checkpoints cannot be loaded. A scan
// that fails (Kafka unreachable) reports the source not ready until one
// succeeds; each goes on from the last checkpoints.
func (f *Source) Run(ctx context.Context, ready func(ready bool, reason string)) error {
	ready(false, "loading checkpoints")
	if err := f.load(ctx); err != nil {
		return err
	}
	ready(true, "")
	for {
		if err := f.scan(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			f.log.Warn("file scan failed; it will be retried from the last checkpoint", zap.Error(err), zap.Duration("in", f.cfg.Interval))
			ready(false, err.Error())
		} else {
			ready(true, "")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.cfg.Interval):
		}
	}
}

// load reads every committed checkpoint, once a predecessor's open
// transaction, which would hold the read up, is aborted.
func (f *Source) load(ctx context.Context) error {
	f.marks = map[string]Checkpoint{}
	var bad error
	err := f.cfg.Out.ReadState(ctx, f.cfg.Kafka, f.log, CheckpointTopic, func(r *kgo.Record) {
		var cp Checkpoint
		if err := json.Unmarshal(r.Value, &cp); err != nil {
			bad = fmt.Errorf("checkpoint %q at offset %d: %w", r.Key, r.Offset, err)
			return
		}
		f.marks[string(r.Key)] = cp
	})
	if err := errors.Join(err, bad); err != nil {
		return fmt.Errorf("read checkpoints from %s: %w", CheckpointTopic, err)
	}
	f.log.Info("file checkpoints loaded", zap.Int("files", len(f.marks)))
	return nil
}

// scan publishes what is new in every pattern's files.
func (f *Source) scan(ctx context.Context) error {
	for _, p := range f.cfg.Patterns {
		paths, err := p.files()
		if err != nil {
			return fmt.Errorf("EXTRACTOR_FILES %s: %w", p.Path, err)
		}
		for _, path := range paths {
			if err := f.extract(ctx, p.Dataset, path); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	return nil
}

// errRewritten: the records a checkpoint counts are not the file's first
// ones any more.
var errRewritten = errors.New("file rewritten")

// extract publishes what is new in one file: all of it the first time, the
// rest of it after an interrupted read or when it grew (the records read
// before keep their event ids and times), all of it again when it was
// rewritten, as new events timed after the old version's (records that did
// not change are duplicates the cleaner drops).
func (f *Source) extract(ctx context.Context, dataset, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	key := checkpointKey(dataset, path)
	cp, seen := f.marks[key]
	if seen && cp.Done && cp.Size == st.Size() && cp.ModTime.Equal(st.ModTime()) {
		return nil
	}
	if !seen {
		cp = Checkpoint{Base: st.ModTime().Truncate(time.Microsecond)}
	}
	err = f.read(ctx, dataset, path, st, cp)
	if errors.Is(err, errRewritten) {
		f.log.Info("file rewritten; reading it again from the start", zap.String("file", path))
		err = f.read(ctx, dataset, path, st, Checkpoint{Base: rewrittenBase(cp, st.ModTime())})
	}
	return err
}

// rewrittenBase is the base time of a file rewritten since cp: its
// modification time, or, when that is not later than every event the
// previous version published (a clock set back, a coarse file system),
// the microsecond after the last of them. Every record of the new version
// is then a new event, newer than the old version's, so that its content
// wins downstream, and its unchanged records are content the cleaner
// drops as duplicates.
func rewrittenBase(cp Checkpoint, mtime time.Time) time.Time {
	after := cp.Base.Add(time.Duration(cp.Records) * time.Microsecond)
	if m := mtime.Truncate(time.Microsecond); m.After(after) {
		return m
	}
	return after
}

// read publishes the records of path after the first from.Records ones,
// checking that those are the ones from counts.
func (f *Source) read(ctx context.Context, dataset, path string, st os.FileInfo, from Checkpoint) error {
	src := f.cfg.Datasets[dataset]
	file, err := os.Open(path) // #nosec G304 -- a file in the inbox the operator configures
	if err != nil {
		return err
	}
	defer file.Close()
	counted := progress.NewReader(file)
	br := bufio.NewReaderSize(counted, 1<<16)
	head, _ := br.Peek(512)
	format := ingest.FormatOf(path, head)
	source := "file:" + path

	r := &fileRead{
		f: f, src: src, key: checkpointKey(dataset, path), digest: sha256.New(),
		mark: Checkpoint{Size: st.Size(), ModTime: st.ModTime(), Base: from.Base},
		skip: from.Records, skipDigest: from.Digest,
		bar: progress.New(f.cfg.Terminal, f.log, filepath.Base(path), st.Size(), 5*time.Second),
	}
	unknown := map[string]bool{}
	err = ingest.Scan(br, format, func(rec ingest.Record) error {
		r.bar.Set(counted.N(), r.mark.Records)
		for _, u := range src.Unknown(rec) {
			unknown[u] = true
		}
		b, id, err := src.Value(source, rec, r.mark.Base.Add(time.Duration(r.mark.Records)*time.Microsecond))
		if err != nil {
			return r.addDead(ctx, source, rec.Position, nil, "encode: "+err.Error())
		}
		out, err := src.Record(src.Key(rec), b)
		if err != nil {
			// The broker would refuse it for ever: a dead letter with
			// what it held, clipped, and the file goes on.
			return r.addDead(ctx, source, rec.Position, publish.ValuesOf(rec), err.Error())
		}
		return r.add(ctx, out, id)
	}, func(e *ingest.Error) error {
		return r.addDead(ctx, source, e.Position, e.Raw, "unreadable: "+e.Err.Error())
	})
	var broken *ingest.Error
	switch {
	case errors.As(err, &broken):
		// The rest of the file cannot be read: say so in the dead
		// letters, and take the file again when it changes.
		f.log.Warn("file unreadable past a point; the rest of it is dead-lettered as one record", zap.String("file", path), zap.Error(err))
		if err := r.addDead(ctx, source, broken.Position, broken.Raw, "unreadable, the rest of the file is lost: "+broken.Err.Error()); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if r.mark.Records < r.skip {
		return errRewritten // shorter than what was published
	}
	if len(unknown) > 0 {
		f.log.Warn("ignoring fields the dataset has no place for", zap.String("file", path), zap.Strings("fields", slices.Sorted(maps.Keys(unknown))))
	}
	r.mark.Done = true
	if err := r.flush(ctx); err != nil {
		return err
	}
	r.bar.Set(counted.N(), r.mark.Records)
	r.bar.Finish()
	f.cfg.Done.WithLabelValues(dataset).Inc()
	return nil
}

// fileRead is one read of one file.
type fileRead struct {
	f      *Source
	src    *publish.Dataset
	key    string
	mark   Checkpoint // what is published once pending is
	digest hash.Hash
	// skip is how many first records were published before, with digest
	// skipDigest.
	skip       int64
	skipDigest string
	pending    []*kgo.Record
	dead       int
	bar        *progress.Bar
}

// add counts the next record of the file, identified by id, and queues
// rec unless it was published before.
func (r *fileRead) add(ctx context.Context, rec *kgo.Record, id string) error {
	r.digest.Write([]byte(id))
	r.digest.Write([]byte{0})
	r.mark.Records++
	if r.mark.Records <= r.skip {
		if r.mark.Records == r.skip && hex.EncodeToString(r.digest.Sum(nil)) != r.skipDigest {
			return errRewritten
		}
		return nil
	}
	r.pending = append(r.pending, rec)
	if r.src.IsDeadLetter(rec) {
		r.dead++
	}
	if len(r.pending) >= r.f.cfg.Batch {
		return r.flush(ctx)
	}
	return nil
}

// flush publishes the pending records with the checkpoint that counts
// them, in one transaction.
func (r *fileRead) flush(ctx context.Context) error {
	r.mark.Digest = hex.EncodeToString(r.digest.Sum(nil))
	value, err := json.Marshal(r.mark)
	if err != nil {
		return err
	}
	recs := append(r.pending, &kgo.Record{Topic: CheckpointTopic, Key: []byte(r.key), Value: value})
	if err := r.f.cfg.Out.Publish(ctx, recs); err != nil {
		return err
	}
	ds := r.src.Name
	r.f.cfg.Records.WithLabelValues(ds).Add(float64(len(r.pending) - r.dead))
	r.f.cfg.Dead.WithLabelValues(ds).Add(float64(r.dead))
	r.f.marks[r.key] = r.mark
	r.pending, r.dead = r.pending[:0], 0
	return nil
}

// addDead counts the next record of the file, at position, as one the
// extractor cannot publish, and queues its dead letter, which keeps at most
// publish.MaxDeadBytes of b.
func (r *fileRead) addDead(ctx context.Context, source, position string, b []byte, reason string) error {
	rec, err := r.src.DeadLetter(source, position, b, reason)
	if err != nil {
		return err
	}
	return r.add(ctx, rec, position)
}
