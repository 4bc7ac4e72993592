package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
)

// The users pipeline at scale, on the embedded stack with every service a
// process: 100k generated users, a tenth of them dirty, in a file the
// extractor reads from its directory. Run twice — once undisturbed, once
// with the loader killed with SIGKILL mid-stream and restarted — the table
// ends in the same state.
func TestPipelineOf100kDirtyUsers(t *testing.T) {
	// One directory for both runs: a record's event id names its file.
	inbox := t.TempDir()
	file := filepath.Join(inbox, "users.csv")
	f, err := os.Create(filepath.Join(inbox, ".users.csv"))
	if err != nil {
		t.Fatal(err)
	}
	g := gen.New(gen.Options{Users: 100_000, Seed: 11, Dirty: 0.1})
	if err := gen.Write(f, g, "csv", nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), file); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %+v", g.Stats())

	undisturbed := runPipeline(t, file, false)
	t.Logf("undisturbed: %+v", undisturbed)
	killed := runPipeline(t, file, true)
	if undisturbed != killed {
		t.Errorf("the loader's crash changed the outcome:\n undisturbed %+v\n killed      %+v", undisturbed, killed)
	}
}

// outcome is what a pipeline run ends with.
type outcome struct {
	Rows      int    // rows of the users table
	Table     string // digest of the table's content and lineage
	Persisted int    // records of persisted.users
}

// runPipeline runs a fresh stack whose extractor reads file, checks that
// every record is accounted for and that publishing the file again
// changes nothing, and returns the outcome. With kill, the loader is killed with SIGKILL while
// it is loading, then restarted.
func runPipeline(t *testing.T, file string, kill bool) outcome {
	t.Helper()
	var out outcome
	withStack(t, []string{"EXTRACTOR_FILES=users=" + filepath.Dir(file), "EXTRACTOR_SCAN_INTERVAL=100ms"}, func(ctx context.Context, p *pipeline, d *devStack) {
		if kill {
			p.killLoaderMidStream(ctx, d)
		}
		raw := p.drained(ctx)
		out = p.check(ctx, raw)

		// The same file again, published by `datamill produce`, which
		// refuses the records without an id: nothing new reaches the
		// table or persisted.users.
		published := p.produce(ctx, file, "--skip-refused")
		if published >= raw.records {
			t.Errorf("produce published %d of the file's %d records, want the records without an id refused", published, raw.records)
		}
		again := p.drained(ctx)
		if again.records != raw.records+published {
			t.Errorf("raw.users holds %d records after the second extraction, want %d + %d", again.records, raw.records, published)
		}
		if after := p.check(ctx, again); after != out {
			t.Errorf("extracting the same file again changed the outcome:\n before %+v\n after  %+v", out, after)
		}
	})
	return out
}

// withStack starts a fresh stack — the embedded infrastructure and every
// service as a process, with env added to theirs — calls fn once it is
// ready, and stops it.
func withStack(t *testing.T, env []string, fn func(ctx context.Context, p *pipeline, d *devStack)) {
	t.Helper()
	withStackOf(t, devFlags{partitions: 3}, env, fn)
}

// withPlaintextStack is withStack on a plaintext in-process broker, for
// librdkafka's clients, which cannot authenticate to the in-process broker
// (it answers SaslHandshake from version 1 only). On the real-broker tier
// the stack is that broker's, secure as for every test.
func withPlaintextStack(t *testing.T, fn func(ctx context.Context, p *pipeline, d *devStack)) {
	t.Helper()
	withStackKafka(t, devFlags{partitions: 3}, false, nil, fn)
}

// withStackOf is withStack with flags' partitions and scale, on a secure
// broker (TLS, SCRAM-SHA-512, each service as its own principal). On the
// real-broker tier (KAFKA_BROKERS set) the stack uses that broker, whose
// pipeline topics and groups are deleted first.
func withStackOf(t *testing.T, flags devFlags, env []string, fn func(ctx context.Context, p *pipeline, d *devStack)) {
	t.Helper()
	withStackKafka(t, flags, true, env, fn)
}

func withStackKafka(t *testing.T, flags devFlags, secure bool, env []string, fn func(ctx context.Context, p *pipeline, d *devStack)) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(devBin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "services.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	flags.dir, flags.readyTimeout, flags.secureKafka = dir, 90*time.Second, secure
	d := &devStack{
		flags:   flags,
		env:     map[string]string{},
		environ: append(append(toolchainEnv(), "LOG_LEVEL=warn"), env...),
		out:     &lockedWriter{w: logs},
	}
	if testkit.RealBroker() {
		resetRealBroker(t)
		useRealKafka(t, d)
	}
	// The stack serves the datasets env names, users by default.
	for _, kv := range env {
		if ds, ok := strings.CutPrefix(kv, "DATASETS="); ok {
			d.env["DATASETS"] = ds
		}
	}
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		fn(ctx, &pipeline{t: t, eps: eps, svc: svc, ingest: d.ingest(), kcfg: stackKafka(t, eps)}, d)
		return nil
	}
	if err := d.run(t.Context()); err != nil {
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("stack: %v\nservices' log (end):\n%s", err, lastLines(string(b), 40))
	}
}

// pipeline is one run's view of the stack.
type pipeline struct {
	t   *testing.T
	eps map[string]string
	// svc are the processes' admin addresses (/metrics, /readyz), by name.
	svc map[string]string
	// ingest is the extractor's HTTP ingest address.
	ingest string
	kcfg   kafka.Config
}

// produce publishes the records of file to raw.users with `datamill
// produce` and flags, and returns how many it published.
func (p *pipeline) produce(ctx context.Context, file string, flags ...string) int {
	p.t.Helper()
	var out, errs strings.Builder
	env := stackEnv(p.t, p.eps)
	if err := run(ctx, append([]string{"produce", "users", file}, flags...), env, &out, &errs); err != nil {
		p.t.Fatalf("produce: %v: %s%s", err, out.String(), errs.String())
	}
	var n int
	if _, err := fmt.Sscanf(out.String(), "published %d ", &n); err != nil {
		p.t.Fatalf("produce said %q: %v", out.String(), err)
	}
	return n
}

// killLoaderMidStream waits until the loader has committed part of the
// stream, then kills it and starts it again.
func (p *pipeline) killLoaderMidStream(ctx context.Context, d *devStack) {
	p.t.Helper()
	for {
		c, err := scrape(ctx, p.svc["loader"], "loader")
		if err != nil {
			p.t.Fatal(err)
		}
		if c.in >= 10_000 {
			cleaner, err := scrape(ctx, p.svc["cleaner"], "cleaner")
			if err != nil {
				p.t.Fatal(err)
			}
			if c.in >= cleaner.out && cleaner.in >= 100_000 {
				p.t.Fatalf("the loader had loaded everything (%d) before it could be killed", c.in)
			}
			p.t.Logf("killing the loader after %d records", c.in)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.restart(ctx, "loader"); err != nil {
		p.t.Fatal(err)
	}
}

// topicRead is what a read of a whole topic found.
type topicRead struct {
	records int
	keys    map[string]bool
	next    map[int32]int64 // partition → offset after its last record
}

func (p *pipeline) read(ctx context.Context, topic string, fn func(*kgo.Record)) topicRead {
	p.t.Helper()
	r := topicRead{keys: map[string]bool{}, next: map[int32]int64{}}
	err := kafka.ReadCommitted(ctx, p.kcfg, zap.NewNop(), topic, nil, func(rec *kgo.Record) {
		r.records++
		r.keys[string(rec.Key)] = true
		r.next[rec.Partition] = rec.Offset + 1
		if fn != nil {
			fn(rec)
		}
	})
	if err != nil {
		p.t.Fatalf("read %s: %v", topic, err)
	}
	return r
}

// drained waits until the extractor has read every file, the cleaner has
// committed every record of raw.users and the loader every record of
// clean.users; it returns what raw.users holds.
func (p *pipeline) drained(ctx context.Context) topicRead {
	p.t.Helper()
	for {
		m, err := fetchMetrics(ctx, p.svc["extractor"])
		if err != nil {
			p.t.Fatal(err)
		}
		if sumOf(m, "datamill_extractor_files_total") > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	raw := p.read(ctx, "raw.users", nil)
	p.waitCommitted(ctx, "datamill-cleaner-users", "raw.users", raw.next)
	clean := p.read(ctx, "clean.users", nil)
	p.waitCommitted(ctx, "datamill-loader-users", "clean.users", clean.next)
	return raw
}

// waitCommitted waits until group has committed at least next on every
// partition of topic.
func (p *pipeline) waitCommitted(ctx context.Context, group, topic string, next map[int32]int64) {
	p.t.Helper()
	cl, err := kafka.NewClient(p.kcfg, zap.NewNop())
	if err != nil {
		p.t.Fatal(err)
	}
	defer cl.Close()
	progress := func(format string, a ...any) { p.t.Logf(format, a...) }
	if err := awaitCommitted(ctx, kadm.NewClient(cl), group, topic, next, time.Now().Add(5*time.Minute), progress); err != nil {
		p.t.Fatal(err)
	}
}

// check asserts that every raw record is accounted for and that the table
// holds one row per distinct valid id, and returns the outcome.
func (p *pipeline) check(ctx context.Context, raw topicRead) outcome {
	t := p.t
	t.Helper()
	var deadByCleaner int
	badHeaders := 0
	dlq := p.read(ctx, "dlq.users", func(r *kgo.Record) {
		if kafka.Header(r, stage.HeaderReason) == "" {
			badHeaders++
		}
		if kafka.Header(r, stage.HeaderStage) == "cleaner" {
			deadByCleaner++
		}
	})
	if badHeaders > 0 {
		t.Errorf("%d of %d dead letters have no reason", badHeaders, dlq.records)
	}
	clean := p.read(ctx, "clean.users", nil)
	persisted := p.read(ctx, "persisted.users", nil)
	cleaner := p.scrapeAll(ctx, "cleaner")
	if raw.records != clean.records+deadByCleaner+cleaner.duplicates {
		t.Errorf("raw %d != clean %d + dead letters %d + duplicates %d", raw.records, clean.records, deadByCleaner, cleaner.duplicates)
	}
	if deadByCleaner == 0 || cleaner.duplicates == 0 {
		t.Errorf("the dirty data made %d dead letters and %d duplicates: the generator's dirt did not reach the cleaner", deadByCleaner, cleaner.duplicates)
	}

	conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var o outcome
	o.Persisted = persisted.records
	err = conn.QueryRow(ctx, `select count(*), md5(coalesce(string_agg(row(id, age, gender, country, city, email,
		signup_date, last_login, account_status, monthly_spend, quality_flags, event_id, source, content_hash,
		created_event_id)::text, E'\n' order by id), '')) from users`).Scan(&o.Rows, &o.Table)
	if err != nil {
		t.Fatal(err)
	}
	if o.Rows != len(clean.keys) {
		t.Errorf("users table has %d rows for %d distinct valid ids", o.Rows, len(clean.keys))
	}
	return o
}

// scrapeAll adds up the record counters of every process of service.
func (p *pipeline) scrapeAll(ctx context.Context, service string) stageCounts {
	p.t.Helper()
	sum := stageCounts{deadBy: map[string]int{}}
	for name, addr := range p.svc {
		if base, _, _ := strings.Cut(name, "-"); base != service {
			continue
		}
		c, err := scrape(ctx, addr, service)
		if err != nil {
			p.t.Fatal(err)
		}
		sum.in += c.in
		sum.out += c.out
		sum.dead += c.dead
		sum.duplicates += c.duplicates
		for r, n := range c.deadBy {
			sum.deadBy[r] += n
		}
	}
	return sum
}

// stackKafka returns the admin's Kafka settings on a stack that printed
// eps: those of dev's own secure broker, or on the real-broker tier the
// environment's (testkit.Kafka).
func stackKafka(t testing.TB, eps map[string]string) kafka.Config {
	t.Helper()
	if testkit.RealBroker() {
		return testkit.Kafka(t)
	}
	cfg, err := cliKafka(eps)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// stackEnv is the environment of a CLI command run as the admin on a stack
// that printed eps: its Kafka variables and SCHEMA_REGISTRY_URL.
func stackEnv(t testing.TB, eps map[string]string) []string {
	t.Helper()
	return append(testkit.KafkaEnv(stackKafka(t, eps)), "SCHEMA_REGISTRY_URL="+eps["SCHEMA_REGISTRY_URL"])
}

// useRealKafka gives d the admin's Kafka variables of the real-broker
// tier, in the variables dev reads and in its processes' environment, so
// that the stack and its services reach that broker as the admin.
func useRealKafka(t testing.TB, d *devStack) {
	t.Helper()
	vars := testkit.KafkaEnv(testkit.Kafka(t))
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		d.env[k] = v
	}
	d.environ = append(d.environ, vars...)
}
