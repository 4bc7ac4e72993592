package main

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
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/progress"
	"github.com/datamill/datamill/pkg/stage"
)

// checkpointTopic holds one checkpoint per file, the last one winning.
var checkpointTopic = kafka.StateTopic("extractor", "files")

// fileExtensions are the files a watched directory offers.
var fileExtensions = []string{".csv", ".json", ".ndjson", ".jsonl"}

// pattern is one entry of EXTRACTOR_FILES: a dataset and where its files
// are — a file, a glob, or a directory.
type pattern struct {
	dataset, path string
}

// parsePatterns reads EXTRACTOR_FILES entries, dataset=path.
func parsePatterns(entries, datasets []string) ([]pattern, error) {
	var out []pattern
	for _, e := range entries {
		ds, path, ok := strings.Cut(e, "=")
		ds, path = strings.TrimSpace(ds), strings.TrimSpace(path)
		if !ok || ds == "" || path == "" {
			return nil, fmt.Errorf("EXTRACTOR_FILES entry %q: want dataset=path, e.g. users=/data/users/*.csv", e)
		}
		if !slices.Contains(datasets, ds) {
			return nil, fmt.Errorf("EXTRACTOR_FILES entry %q: dataset %q is not in DATASETS %v", e, ds, datasets)
		}
		if _, err := filepath.Match(path, ""); err != nil {
			return nil, fmt.Errorf("EXTRACTOR_FILES entry %q: %w", e, err)
		}
		out = append(out, pattern{ds, path})
	}
	return out, nil
}

// files lists the files of the pattern, sorted: every data file of a
// directory, or what a glob (or a plain path) matches. Names starting with
// a dot are left alone: they are files still being written.
func (p pattern) files() ([]string, error) {
	glob := p.path
	if st, err := os.Stat(p.path); err == nil && st.IsDir() {
		glob = filepath.Join(p.path, "*")
	}
	matches, err := filepath.Glob(glob)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		name := filepath.Base(m)
		if strings.HasPrefix(name, ".") || !slices.Contains(fileExtensions, strings.ToLower(filepath.Ext(name))) && glob != p.path {
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

// checkpoint is how far a file was published, committed in the same
// transaction as the records it counts.
type checkpoint struct {
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

// fileSource publishes the files of EXTRACTOR_FILES, scanning them again
// every interval: new files, files that grew or changed, and the rest of
// files a previous run did not finish.
type fileSource struct {
	log      *zap.Logger
	kafka    kafka.Config
	out      *publisher
	sources  map[string]*source
	patterns []pattern
	batch    int
	interval time.Duration
	terminal io.Writer // where progress bars go, when it is a terminal
	ready    func(ready bool, reason string)

	marks map[string]checkpoint // by checkpointKey

	records, dead, done *prometheus.CounterVec // by dataset
}

func checkpointKey(dataset, path string) string { return dataset + "\x00" + path }

// run loads the checkpoints, then scans until ctx ends. A scan that fails
// (Kafka unreachable) marks the source not ready until one succeeds; each
// goes on from the last checkpoints.
func (f *fileSource) run(ctx context.Context) error {
	if err := f.load(ctx); err != nil {
		return err
	}
	f.ready(true, "")
	for {
		if err := f.scan(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			f.log.Warn("file scan failed; it will be retried from the last checkpoint", zap.Error(err), zap.Duration("in", f.interval))
			f.ready(false, err.Error())
		} else {
			f.ready(true, "")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
		}
	}
}

// load reads every committed checkpoint, once a predecessor's open
// transaction, which would hold the read up, is aborted.
func (f *fileSource) load(ctx context.Context) error {
	if err := f.out.fence(ctx); err != nil {
		return err
	}
	cl, err := kafka.NewClient(f.kafka, f.log)
	if err != nil {
		return err
	}
	err = kafka.EnsureCompacted(ctx, cl, f.kafka, checkpointTopic, 1)
	cl.Close()
	if err != nil {
		return fmt.Errorf("checkpoint topic: %w", err)
	}
	f.marks = map[string]checkpoint{}
	var bad error
	err = kafka.ReadCommitted(ctx, f.kafka, f.log, checkpointTopic, nil, func(r *kgo.Record) {
		var cp checkpoint
		if err := json.Unmarshal(r.Value, &cp); err != nil {
			bad = fmt.Errorf("checkpoint %q at offset %d: %w", r.Key, r.Offset, err)
			return
		}
		f.marks[string(r.Key)] = cp
	})
	if err := errors.Join(err, bad); err != nil {
		return fmt.Errorf("read checkpoints from %s: %w", checkpointTopic, err)
	}
	f.log.Info("file checkpoints loaded", zap.Int("files", len(f.marks)))
	return nil
}

// scan publishes what is new in every pattern's files.
func (f *fileSource) scan(ctx context.Context) error {
	for _, p := range f.patterns {
		paths, err := p.files()
		if err != nil {
			return fmt.Errorf("EXTRACTOR_FILES %s: %w", p.path, err)
		}
		for _, path := range paths {
			if err := f.extract(ctx, p.dataset, path); err != nil {
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
func (f *fileSource) extract(ctx context.Context, dataset, path string) error {
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
		cp = checkpoint{Base: st.ModTime().Truncate(time.Microsecond)}
	}
	err = f.read(ctx, dataset, path, st, cp)
	if errors.Is(err, errRewritten) {
		f.log.Info("file rewritten; reading it again from the start", zap.String("file", path))
		err = f.read(ctx, dataset, path, st, checkpoint{Base: rewrittenBase(cp, st.ModTime())})
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
func rewrittenBase(cp checkpoint, mtime time.Time) time.Time {
	after := cp.Base.Add(time.Duration(cp.Records) * time.Microsecond)
	if m := mtime.Truncate(time.Microsecond); m.After(after) {
		return m
	}
	return after
}

// read publishes the records of path after the first from.Records ones,
// checking that those are the ones from counts.
func (f *fileSource) read(ctx context.Context, dataset, path string, st os.FileInfo, from checkpoint) error {
	src := f.sources[dataset]
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	counted := &countingReader{r: file}
	br := bufio.NewReaderSize(counted, 1<<16)
	head, _ := br.Peek(512)
	format := ingest.FormatOf(path, head)
	source := "file:" + path

	r := &fileRead{
		f: f, src: src, key: checkpointKey(dataset, path), digest: sha256.New(),
		mark: checkpoint{Size: st.Size(), ModTime: st.ModTime(), Base: from.Base},
		skip: from.Records, skipDigest: from.Digest,
		bar: progress.New(f.terminal, f.log, filepath.Base(path), st.Size(), 5*time.Second),
	}
	unknown := map[string]bool{}
	err = ingest.Scan(br, format, func(rec ingest.Record) error {
		r.bar.Set(counted.n, r.mark.Records)
		for _, u := range src.dataset.Unknown(rec) {
			unknown[u] = true
		}
		v := src.dataset.Raw(source, rec, r.mark.Base.Add(time.Duration(r.mark.Records)*time.Microsecond))
		id := v[ingest.FieldEventID].(string)
		b, err := src.codec.Encode(&v)
		if err != nil {
			return r.addDead(ctx, source, rec.Position, nil, "encode: "+err.Error())
		}
		out := &kgo.Record{Topic: src.topic, Key: src.key(rec), Value: b}
		if err := fits(out, src.limit); err != nil {
			// The broker would refuse it for ever: a dead letter with
			// what it held, clipped, and the file goes on.
			return r.addDead(ctx, source, rec.Position, valuesOf(rec), err.Error())
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
	r.bar.Set(counted.n, r.mark.Records)
	r.bar.Finish()
	f.done.WithLabelValues(dataset).Inc()
	return nil
}

// fileRead is one read of one file.
type fileRead struct {
	f      *fileSource
	src    *source
	key    string
	mark   checkpoint // what is published once pending is
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
	if rec.Topic == r.src.dlq {
		r.dead++
	}
	if len(r.pending) >= r.f.batch {
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
	recs := append(r.pending, &kgo.Record{Topic: checkpointTopic, Key: []byte(r.key), Value: value})
	if err := r.f.out.publish(ctx, recs); err != nil {
		return err
	}
	ds := r.src.dataset.Name
	r.f.records.WithLabelValues(ds).Add(float64(len(r.pending) - r.dead))
	r.f.dead.WithLabelValues(ds).Add(float64(r.dead))
	r.f.marks[r.key] = r.mark
	r.pending, r.dead = r.pending[:0], 0
	return nil
}

// addDead counts the next record of the file, at position, as one the
// extractor cannot publish, and queues its dead letter, which keeps at most
// maxDeadBytes of raw.
func (r *fileRead) addDead(ctx context.Context, source, position string, raw []byte, reason string) error {
	at, _ := strconv.ParseInt(position[strings.LastIndexByte(position, ' ')+1:], 10, 64)
	rec, err := stage.DeadLetterRecord(r.src.dead, r.src.dlq, r.src.dataset.Name, "extractor",
		&kgo.Record{Topic: source, Partition: -1, Offset: at, Value: clip(raw, r.src.deadLimit)}, []string{position + ": " + reason}, time.Now())
	if err != nil {
		return err
	}
	return r.add(ctx, rec, position)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
