package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
)

type chaosFlags struct {
	dataset                          string
	events, kills, files, partitions int
	every                            time.Duration
	seed                             uint64
	asJSON, reset                    bool
	// restartBroker is a shell command that restarts the broker of
	// KAFKA_BROKERS and returns once it is ready; run once when set.
	restartBroker string
}

// chaosFault is one fault injected.
type chaosFault struct {
	AtSeconds float64 `json:"at_seconds"`
	What      string  `json:"what"`
	// DownSeconds runs from the kill until the new process (or the
	// database) was ready again.
	DownSeconds float64 `json:"down_seconds"`
}

// chaosOutcome is what a run of the pipeline ended with.
type chaosOutcome struct {
	Raw, Clean, DLQ, Persisted, Scored int
	// DeadLetters counts the dead letters by "stage: reason".
	DeadLetters map[string]int `json:"dead_letters"`
	// Distinct event ids in persisted.<dataset> and scored.<dataset>.
	PersistedEvents, ScoredEvents int
	// TableRows counts the rows of the dataset's table, DistinctValidIDs
	// the distinct keys of clean.<dataset>.
	TableRows        int `json:"table_rows"`
	DistinctValidIDs int
	// TableDigest digests the dataset's table, every column but the
	// clocks.
	TableDigest string `json:"table_digest"`
	Predictions int
	// MisKeyed counts scored records whose key is not their persisted
	// event's.
	MisKeyed int `json:"mis_keyed"`
	// Lake is how the lake of the dataset compares with raw.<dataset>.
	Lake        lakeReport        `json:"lake"`
	predictions map[string]string // event id → the prediction's columns
	persisted   map[string]string // event id → key, of persisted.<dataset>
}

// chaosReport is what `datamill chaos` found.
type chaosReport struct {
	Dataset    string       `json:"dataset"`
	Events     int          `json:"events"`
	Partitions int          `json:"partitions"`
	Faults     []chaosFault `json:"faults"`
	Reference  chaosOutcome `json:"reference"`
	Chaos      chaosOutcome `json:"chaos"`
	// Problems lists every way the run under faults lost, doubled or
	// changed something; empty when it did not.
	Problems       []string `json:"problems"`
	ElapsedSeconds float64  `json:"elapsed_seconds"`
}

func chaos(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var f chaosFlags
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	datasetFlag(fs, &f.dataset, "the dataset to generate and run")
	fs.IntVar(&f.events, "events", 20000, "records to generate (with --seed, a tenth of them dirty, some sent twice)")
	fs.IntVar(&f.kills, "kills", 10, "services to kill with SIGKILL, one at a time, each restarted")
	fs.DurationVar(&f.every, "every", time.Second, "time between two faults, and between two of the input's files")
	fs.IntVar(&f.files, "files", 10, "files the records are split into, dropped into the extractor's directory one by one, so that records flow while faults come")
	fs.IntVar(&f.partitions, "partitions", 6, "partitions of the pipeline topics")
	fs.Uint64Var(&f.seed, "seed", 1, "generator and fault seed")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as one JSON object")
	fs.BoolVar(&f.reset, "reset", false, "with KAFKA_BROKERS: delete the dataset's pipeline topics and datamill's groups on that broker before each run")
	fs.StringVar(&f.restartBroker, "restart-broker", "", "with KAFKA_BROKERS: a shell command that restarts that broker and returns once it is ready (e.g. 'scripts/kafka/broker.sh restart'), run once, three quarters through the faults")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: datamill chaos [flags]\n\nRuns N generated records of --dataset, split into --files files that the\nextractor reads one after the other, through the whole pipeline twice, each time on a fresh\nstack of `datamill dev`: once undisturbed, then while killing a service (each in turn, in a random\norder) with SIGKILL every --every and restarting it, --kills times, restarting\nPostgreSQL once midway and, with --restart-broker, the broker of\nKAFKA_BROKERS once. Then checks that the faults lost,\ndoubled and changed nothing: the same records at every stage, dead letters by\nreason, the dataset's table and predictions as the undisturbed run, one persisted\nevent per applied event, one prediction and one scored record per persisted\nevent. Prints the faults and the reconciliation; fails when anything differs.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if f.events < 1 || f.kills < 0 || f.every <= 0 || f.partitions < 1 || f.files < 1 {
		return errors.New("chaos: want --events ≥ 1, --kills ≥ 0, --every > 0, --files ≥ 1 and --partitions ≥ 1")
	}
	env := config.ToMap(environ)
	if env["DATABASE_URL"] != "" {
		return errors.New("chaos: it restarts its own PostgreSQL, with a fresh database for each run; unset DATABASE_URL")
	}
	if env["KAFKA_BROKERS"] != "" && !f.reset {
		return errors.New("chaos: each run must start from empty topics: on the broker of KAFKA_BROKERS, --reset deletes the dataset's pipeline topics and datamill's groups first (never on a broker with data to keep)")
	}
	if f.restartBroker != "" && env["KAFKA_BROKERS"] == "" {
		return errors.New("chaos: --restart-broker restarts the broker of KAFKA_BROKERS, which is not set (the embedded broker is not restarted)")
	}
	ds, err := generatedDataset(environ, stderr, f.dataset)
	if err != nil {
		return fmt.Errorf("chaos: --dataset: %w", err)
	}
	dir, logs, err := commandDir("chaos")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer logs.Close()
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "chaos: "+format+"\n", a...) }
	c := &chaosRun{
		flags: f, ds: ds, dir: dir, logs: logs, environ: environ, progress: progress,
		inbox: filepath.Join(dir, "inbox"), models: filepath.Join(dir, "models"), started: time.Now().UTC(),
	}
	start := time.Now()
	report, err := c.run(ctx)
	if err != nil {
		b, _ := os.ReadFile(logs.Name())
		return fmt.Errorf("%w\nservices' log (end):\n%s", err, lastLines(string(b), 30))
	}
	report.ElapsedSeconds = time.Since(start).Seconds()
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		report.print(stdout)
	}
	if len(report.Problems) > 0 {
		return fmt.Errorf("chaos: %d problems: %s", len(report.Problems), strings.Join(report.Problems, "; "))
	}
	return nil
}

// chaosRun is one `datamill chaos`.
type chaosRun struct {
	flags              chaosFlags
	ds                 *schemas.Dataset
	dir, inbox, models string
	logs               *os.File
	environ            []string
	progress           func(string, ...any)
	// files are the input's file names, in the order they are dropped;
	// each waits under a dot name until then. rawAfter[k] is how many
	// records raw.<dataset> holds once files[k] is read, from the undisturbed
	// run.
	files    []string
	rawAfter []int
	// started names this chaos run in the lake prefixes of an S3 from the
	// environment, which outlives the runs' stacks.
	started time.Time
}

func (c *chaosRun) run(ctx context.Context) (*chaosReport, error) {
	if err := c.writeFiles(); err != nil {
		return nil, err
	}
	r := &chaosReport{Dataset: c.ds.Name, Events: c.flags.events, Partitions: c.flags.partitions}
	var err error
	c.progress("run 1 of 2: %d %s records in %d files, undisturbed", c.flags.events, c.ds.Name, len(c.files))
	if r.Reference, _, err = c.once(ctx, "reference", false); err != nil {
		return nil, fmt.Errorf("undisturbed run: %w", err)
	}
	c.progress("undisturbed: %s", r.Reference)
	also := "PostgreSQL restarts once"
	if c.flags.restartBroker != "" {
		also += ", and the broker once"
	}
	c.progress("run 2 of 2: the same files, one every %v, while %d services are killed, one every %v; %s", c.flags.every, c.flags.kills, c.flags.every, also)
	if r.Chaos, r.Faults, err = c.once(ctx, "chaos", true); err != nil {
		return nil, fmt.Errorf("run under faults: %w", err)
	}
	c.progress("under faults: %s", r.Chaos)
	r.Problems = reconcile(c.ds.Name, r.Reference, r.Chaos)
	return r, nil
}

// writeFiles writes the generated records as CSV files under dot names,
// which the extractor leaves alone. Every record's event id names its file
// and line, so both runs read the same files at the same paths.
func (c *chaosRun) writeFiles() error {
	if err := os.MkdirAll(c.inbox, 0o750); err != nil {
		return err
	}
	g := gen.New(gen.Options{Users: c.flags.events, Seed: c.flags.seed, Dirty: 0.1})
	var rows [][]string
	for {
		row, ok := g.Next()
		if !ok {
			break
		}
		rec := make([]string, len(row.Values))
		for i, v := range row.Values {
			if v != nil {
				rec[i] = *v
			}
		}
		rows = append(rows, rec)
	}
	n := min(c.flags.files, len(rows))
	for k := range n {
		name := fmt.Sprintf("%s-%03d.csv", c.ds.Name, k)
		f, err := os.Create(filepath.Join(c.inbox, "."+name)) // #nosec G304 -- a file in the run's own inbox
		if err != nil {
			return err
		}
		w := csv.NewWriter(f)
		err = w.Write(gen.Columns)
		if err == nil {
			err = w.WriteAll(rows[k*len(rows)/n : (k+1)*len(rows)/n])
		}
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return err
		}
		c.files = append(c.files, name)
	}
	return nil
}

// once runs the file through a fresh stack, with faults or not, and
// returns the outcome.
func (c *chaosRun) once(ctx context.Context, name string, faults bool) (chaosOutcome, []chaosFault, error) {
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return chaosOutcome{}, nil, err
	}
	set := []string{
		"DATASETS=" + c.ds.Name, "EXTRACTOR_FILES=" + c.ds.Name + "=" + c.inbox, "EXTRACTOR_SCAN_INTERVAL=100ms",
		"SCORER_MODEL_DIR=" + c.models, "SCORER_MODEL_POLL=100ms", "LOG_LEVEL=warn",
		// Short pauses, so that the stages come back soon after the
		// database does.
		"STAGE_MAX_PAUSE=1s",
	}
	if prefix := c.lakePrefix(name); prefix != "" {
		set = append(set, "S3_PREFIX="+prefix)
	}
	d := commandStack(devFlags{dir: dir, partitions: c.flags.partitions, readyTimeout: 3 * time.Minute, secureKafka: true}, c.logs,
		"chaos-"+name, c.environ, set)
	if brokers := d.env["KAFKA_BROKERS"]; brokers != "" {
		c.progress("deleting the pipeline's topics and groups on %s", brokers)
		resetCtx, cancel := context.WithTimeout(ctx, time.Minute)
		kcfg, err := cliKafka(d.env)
		if err == nil {
			err = resetPipeline(resetCtx, kcfg, c.ds.Name)
		}
		cancel()
		if err != nil {
			return chaosOutcome{}, nil, err
		}
	}
	var out chaosOutcome
	var injected []chaosFault
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		if _, err := os.Stat(c.models); os.IsNotExist(err) {
			if err := trainModel(ctx, filepath.Join(dir, "bin", "scorer"), c.ds, c.dir, c.models, c.flags.seed+1, c.progress); err != nil {
				return err
			}
		}
		if err := awaitReady(ctx, svc["scorer"], time.Minute); err != nil {
			return fmt.Errorf("the scorer did not take the model: %w", err)
		}
		// The files go back into hiding for the next run, mtimes and all.
		defer func() {
			for _, name := range c.files {
				_ = os.Rename(filepath.Join(c.inbox, name), filepath.Join(c.inbox, "."+name))
			}
		}()
		kcfg, err := cliKafka(eps)
		if err != nil {
			return err
		}
		faultsDone := make(chan error, 1)
		injectCtx, stopInjecting := context.WithCancel(ctx)
		defer stopInjecting()
		if faults {
			go func() {
				var err error
				injected, err = c.inject(injectCtx, d)
				faultsDone <- err
			}()
		} else {
			close(faultsDone)
		}
		if err := c.feed(ctx, kcfg, svc, faults); err != nil {
			// No restart may race with the stack's shutdown.
			stopInjecting()
			<-faultsDone
			return err
		}
		if err := <-faultsDone; err != nil {
			return err
		}
		lcfg, err := lakeConfig(ownS3Environ(d.environ, d.s3 != nil), eps)
		if err != nil {
			return err
		}
		out, err = settleWithLake(ctx, kcfg, c.ds, eps, lcfg, c.progress)
		return err
	}
	if err := d.run(ctx); err != nil {
		return chaosOutcome{}, nil, err
	}
	return out, injected, nil
}

// lakePrefix is the S3_PREFIX of run name when the environment names an
// S3 (S3_ENDPOINT), which keeps its objects after the run: each run's
// topics start again at offset 0 (a fresh in-process Kafka, or topics
// deleted with --reset), so its objects need keys of their own, under the
// environment's prefix (raw by default, which the sink's credentials are
// limited to). With dev's own S3, each run has a new one: "".
func (c *chaosRun) lakePrefix(name string) string {
	env := config.ToMap(c.environ)
	if env["S3_ENDPOINT"] == "" {
		return ""
	}
	return cmpOr(env["S3_PREFIX"], "raw") + "/chaos-" + c.started.Format("20060102t150405") + "-" + name
}

// feed drops the files into the extractor's directory one after the other,
// each once the previous one is in raw.<dataset>, so that both runs
// extract the records in the same order. Undisturbed, the extractor's
// count says when a file is read, and the raw topic's count is noted;
// under faults (the extractor's counters restart with it), the raw topic
// must reach that count,
// and a file is dropped no sooner than every flags.every.
func (c *chaosRun) feed(ctx context.Context, kcfg kafka.Config, svc map[string]string, faults bool) error {
	start := time.Now()
	deadline := start.Add(10 * time.Minute)
	raw := kafka.Topic(kafka.Raw, c.ds.Name)
	for k, name := range c.files {
		if faults && !retry.Sleep(ctx, time.Until(start.Add(time.Duration(k)*c.flags.every))) {
			return ctx.Err()
		}
		if err := os.Rename(filepath.Join(c.inbox, "."+name), filepath.Join(c.inbox, name)); err != nil {
			return err
		}
		for {
			var done bool
			if faults {
				// The broker may be restarting: try again until the
				// deadline.
				n, err := countCommitted(ctx, kcfg, raw)
				if err != nil && time.Now().After(deadline) {
					return err
				}
				done = err == nil && n >= c.rawAfter[k]
			} else {
				m, err := fetchMetrics(ctx, svc["extractor"])
				if err != nil {
					return err
				}
				if done = sumOf(m, "datamill_extractor_files_total") > k; done {
					n, err := countCommitted(ctx, kcfg, raw)
					if err != nil {
						return err
					}
					c.rawAfter = append(c.rawAfter, n)
				}
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s was not extracted within 10 minutes", name)
			}
			if !retry.Sleep(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// countCommitted counts topic's committed records.
func countCommitted(ctx context.Context, kcfg kafka.Config, topic string) (int, error) {
	n := 0
	err := kafka.ReadCommitted(ctx, kcfg, zap.NewNop(), topic, nil, func(*kgo.Record) { n++ })
	return n, err
}

// inject kills a service every flags.every, kills times, each service in
// turn in a random order, restarting each at once; halfway, it restarts PostgreSQL instead, and three quarters
// through, with flags.restartBroker, the broker.
func (c *chaosRun) inject(ctx context.Context, d *devStack) ([]chaosFault, error) {
	rng := rand.New(rand.NewPCG(c.flags.seed, 0x0c4a05)) // #nosec G404 -- a seeded, reproducible fault schedule, not a secret
	names := make([]string, 0, len(d.children))
	for _, ch := range d.children {
		names = append(names, ch.name)
	}
	// Rounds of every service in a random order, so that each is killed
	// about as often as the others.
	var plan []string
	for len(plan) < c.flags.kills {
		rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		for _, name := range names[:min(len(names), c.flags.kills-len(plan))] {
			plan = append(plan, "kill -9 "+name)
		}
	}
	plan = slices.Insert(plan, len(plan)/2, "restart PostgreSQL")
	if c.flags.restartBroker != "" {
		plan = slices.Insert(plan, len(plan)*3/4, "restart the Kafka broker")
	}
	var faults []chaosFault
	start := time.Now()
	for _, what := range plan {
		if !retry.Sleep(ctx, c.flags.every) {
			return faults, ctx.Err()
		}
		at := time.Since(start)
		var err error
		switch what {
		case "restart PostgreSQL":
			err = d.pg.Restart(ctx)
		case "restart the Kafka broker":
			cmd := exec.CommandContext(ctx, "sh", "-c", c.flags.restartBroker) // #nosec G204 -- --restart-broker is a shell command the operator gives on purpose
			cmd.Stdout, cmd.Stderr = c.logs, c.logs
			err = cmd.Run()
		default:
			err = d.restart(ctx, strings.TrimPrefix(what, "kill -9 "))
		}
		if err != nil {
			return faults, fmt.Errorf("%s: %w", what, err)
		}
		f := chaosFault{AtSeconds: at.Seconds(), What: what, DownSeconds: (time.Since(start) - at).Seconds()}
		c.progress("%5.1f s  %s (back in %.2f s)", f.AtSeconds, f.What, f.DownSeconds)
		faults = append(faults, f)
	}
	return faults, nil
}

// settle waits until every stage has committed everything before it, then
// reads the outcome from the topics and the tables.
func settle(ctx context.Context, kcfg kafka.Config, ds *schemas.Dataset, eps map[string]string, progress func(string, ...any)) (chaosOutcome, error) {
	return settleWithLake(ctx, kcfg, ds, eps, lake.Config{}, progress)
}

// settleWithLake is settle, and when lcfg is enabled it also waits until
// the lake sink has committed all of raw.<dataset>, then checks the lake
// against that topic (chaosOutcome.Lake).
func settleWithLake(ctx context.Context, kcfg kafka.Config, ds *schemas.Dataset, eps map[string]string, lcfg lake.Config, progress func(string, ...any)) (chaosOutcome, error) {
	deadline := time.Now().Add(10 * time.Minute)
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		return chaosOutcome{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	steps := stageInputs(ds.Name)
	if lcfg.Enabled() {
		steps = append(steps, lakeInput(ds.Name))
	}
	for _, step := range steps {
		next, err := committedEnds(ctx, kcfg, step.topic)
		if err != nil {
			return chaosOutcome{}, err
		}
		if err := awaitCommitted(ctx, adm, step.group, step.topic, next, deadline, progress); err != nil {
			return chaosOutcome{}, err
		}
	}
	o, err := readOutcome(ctx, kcfg, ds, eps["SCHEMA_REGISTRY_URL"], eps["DATABASE_URL"])
	if err != nil || !lcfg.Enabled() {
		return o, err
	}
	store, err := lake.OpenStore(ctx, lcfg)
	if err != nil {
		return o, err
	}
	if o.Lake, err = checkLake(ctx, store, lcfg.Prefix, ds.Name, kcfg); err != nil {
		return o, fmt.Errorf("check the lake: %w", err)
	}
	o.Lake.Prefix = lcfg.Prefix
	return o, nil
}

// lakeInput is the lake sink's consumer group and the topic it archives.
func lakeInput(dataset string) stageInput {
	return stageInput{stage.Group("lake", dataset), kafka.Topic(kafka.Raw, dataset)}
}

// lakeConfig is the lake of a dev stack, as its services see it: the
// variables of environ with the stack's endpoints over them.
func lakeConfig(environ []string, eps map[string]string) (lake.Config, error) {
	vars := slices.Clone(environ)
	for _, k := range slices.Sorted(maps.Keys(eps)) {
		vars = append(vars, k+"="+eps[k])
	}
	cfg, err := config.Parse[lake.Config](vars)
	if err != nil {
		return cfg, fmt.Errorf("the lake's configuration: %w", err)
	}
	return cfg, nil
}

// committedEnds reads topic (read_committed) and returns, per partition,
// the offset after its last committed record: where a group that consumed
// everything has committed, whatever aborted batches follow.
func committedEnds(ctx context.Context, kcfg kafka.Config, topic string) (map[int32]int64, error) {
	next := map[int32]int64{}
	err := kafka.ReadCommitted(ctx, kcfg, zap.NewNop(), topic, nil, func(rec *kgo.Record) {
		next[rec.Partition] = rec.Offset + 1
	})
	return next, err
}

// awaitCommitted waits until group has committed at least next on every
// partition of topic, saying every 10 s how far behind it is.
func awaitCommitted(ctx context.Context, adm *kadm.Client, group, topic string, next map[int32]int64, deadline time.Time, progress func(string, ...any)) error {
	said := time.Now()
	for {
		offsets, err := adm.FetchOffsets(ctx, group)
		behind := map[int32]int64{}
		for part, want := range next {
			o, ok := offsets.Lookup(topic, part)
			if err != nil || !ok || o.At < want {
				behind[part] = want - o.At
			}
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not commit %s within 10 minutes: records behind per partition %v (%v)", group, topic, behind, err)
		}
		if time.Since(said) > 10*time.Second {
			progress("waiting for %s to commit %s: records behind per partition %v (%v)", group, topic, behind, err)
			said = time.Now()
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// readOutcome reads every committed record of the dataset's topics, its
// table and its predictions table. Persisted and scored records are read
// through the dataset's derived schemas, their fields by name.
func readOutcome(ctx context.Context, kcfg kafka.Config, ds *schemas.Dataset, registryURL, databaseURL string) (chaosOutcome, error) {
	o := chaosOutcome{DeadLetters: map[string]int{}, persisted: map[string]string{}}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registryURL})
	if err != nil {
		return o, err
	}
	topic := func(step string) string { return kafka.Topic(step, ds.Name) }
	persisted, err := serde.NewCodec[any](ctx, reg, topic(kafka.Persisted), ds.Persisted)
	if err != nil {
		return o, err
	}
	scored, err := serde.NewCodec[any](ctx, reg, topic(kafka.Scored), ds.Scored)
	if err != nil {
		return o, err
	}
	log := zap.NewNop()
	count := func(topic string, n *int, fn func(*kgo.Record) error) error {
		var firstErr error
		err := kafka.ReadCommitted(ctx, kcfg, log, topic, nil, func(rec *kgo.Record) {
			*n++
			if fn != nil && firstErr == nil {
				firstErr = fn(rec)
			}
		})
		return errors.Join(err, firstErr)
	}
	validIDs := map[string]bool{}
	scoredKeys := map[string]string{}
	err = errors.Join(
		count(topic(kafka.Raw), &o.Raw, nil),
		count(topic(kafka.Clean), &o.Clean, func(r *kgo.Record) error { validIDs[string(r.Key)] = true; return nil }),
		count(topic(kafka.DLQ), &o.DLQ, func(r *kgo.Record) error {
			o.DeadLetters[kafka.Header(r, stage.HeaderStage)+": "+kafka.Header(r, stage.HeaderReason)]++
			return nil
		}),
		count(topic(kafka.Persisted), &o.Persisted, func(r *kgo.Record) error {
			var v any
			if err := persisted.Decode(r.Value, &v); err != nil {
				return err
			}
			rec, _ := field(v, schemas.FieldRecord).(map[string]any)
			event, ok := field(rec, schemas.FieldEventID).(string)
			if !ok {
				return fmt.Errorf("%s offset %d: no %s.%s", r.Topic, r.Offset, schemas.FieldRecord, schemas.FieldEventID)
			}
			o.persisted[event] = fmt.Sprint(field(rec, ds.Key))
			return nil
		}),
		count(topic(kafka.Scored), &o.Scored, func(r *kgo.Record) error {
			var v any
			if err := scored.Decode(r.Value, &v); err != nil {
				return err
			}
			event, ok := field(v, schemas.FieldEventID).(string)
			if !ok {
				return fmt.Errorf("%s offset %d: no %s", r.Topic, r.Offset, schemas.FieldEventID)
			}
			scoredKeys[event] = fmt.Sprint(field(v, ds.Key))
			return nil
		}),
	)
	if err != nil {
		return o, err
	}
	o.PersistedEvents, o.ScoredEvents, o.DistinctValidIDs = len(o.persisted), len(scoredKeys), len(validIDs)
	for event, key := range scoredKeys {
		if p, ok := o.persisted[event]; ok && p != key {
			o.MisKeyed++
		}
	}

	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return o, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	digest, err := tableDigestQuery(ds)
	if err != nil {
		return o, err
	}
	if err := conn.QueryRow(ctx, digest).Scan(&o.TableRows, &o.TableDigest); err != nil {
		return o, fmt.Errorf("%s table: %w", ds.Name, err)
	}
	if o.predictions, err = readPredictions(ctx, conn, ds.Name); err != nil {
		return o, err
	}
	o.Predictions = len(o.predictions)
	return o, nil
}

// field is the field name of v, a record decoded generically, or nil.
func field(v any, name string) any {
	m, _ := v.(map[string]any)
	return m[name]
}

func (o chaosOutcome) String() string {
	return fmt.Sprintf("raw %d, clean %d, dead letters %d, persisted %d, scored %d; %d table rows, %d predictions",
		o.Raw, o.Clean, o.DLQ, o.Persisted, o.Scored, o.TableRows, o.Predictions)
}

// reconcile lists what a run of dataset under faults lost, doubled or
// changed, compared with the undisturbed run ref and with itself.
func reconcile(dataset string, ref, got chaosOutcome) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	topic := func(step string) string { return kafka.Topic(step, dataset) }
	for _, c := range []struct {
		what     string
		ref, got int
	}{
		{topic(kafka.Raw) + " records", ref.Raw, got.Raw},
		{topic(kafka.Clean) + " records", ref.Clean, got.Clean},
		{topic(kafka.DLQ) + " records", ref.DLQ, got.DLQ},
		{topic(kafka.Persisted) + " records", ref.Persisted, got.Persisted},
		{topic(kafka.Scored) + " records", ref.Scored, got.Scored},
		{dataset + " rows", ref.TableRows, got.TableRows},
		{schemas.PredictionsTable(dataset) + " rows", ref.Predictions, got.Predictions},
	} {
		if c.ref != c.got {
			add("%s: %d under faults, %d undisturbed", c.what, c.got, c.ref)
		}
	}
	if !maps.Equal(ref.DeadLetters, got.DeadLetters) {
		add("dead letters by stage and reason differ: %v under faults, %v undisturbed", got.DeadLetters, ref.DeadLetters)
	}
	if ref.TableDigest != got.TableDigest {
		add("the %s table differs from the undisturbed run's (digest %s, want %s)", dataset, got.TableDigest, ref.TableDigest)
	}
	changed := 0
	for event, p := range ref.predictions {
		if got.predictions[event] != p {
			changed++
		}
	}
	if changed > 0 {
		add("%d predictions differ from the undisturbed run's or are missing", changed)
	}
	// Within the run: nothing doubled, everything accounted for.
	if got.PersistedEvents != got.Persisted {
		add("%s holds %d records for %d distinct events: some were published twice", topic(kafka.Persisted), got.Persisted, got.PersistedEvents)
	}
	if got.ScoredEvents != got.Scored || got.Scored != got.PersistedEvents {
		add("%s holds %d records for %d distinct events, for %d persisted events: want one each", topic(kafka.Scored), got.Scored, got.ScoredEvents, got.PersistedEvents)
	}
	if got.MisKeyed > 0 {
		add("%d records of %s carry another key than their persisted event's", got.MisKeyed, topic(kafka.Scored))
	}
	missing := 0
	for event := range got.persisted {
		if _, ok := got.predictions[event]; !ok {
			missing++
		}
	}
	if missing > 0 || got.Predictions != got.PersistedEvents {
		add("%d %s rows for %d persisted events (%d persisted events have none): want one each", got.Predictions, schemas.PredictionsTable(dataset), got.PersistedEvents, missing)
	}
	if got.TableRows != got.DistinctValidIDs {
		add("the %s table has %d rows for %d distinct valid ids", dataset, got.TableRows, got.DistinctValidIDs)
	}
	// The lake of each run holds each raw event exactly once.
	for _, run := range []struct {
		name string
		o    chaosOutcome
	}{{"undisturbed", ref}, {"under faults", got}} {
		for _, p := range run.o.Lake.Problems {
			add("the lake %s: %s", run.name, p)
		}
	}
	return problems
}

func (r *chaosReport) print(w io.Writer) {
	fmt.Fprintf(w, "datamill chaos: %d %s records, %d partitions, %d faults in %.0f s\n\n", r.Events, r.Dataset, r.Partitions, len(r.Faults), r.ElapsedSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "at s\tfault\tback in s\t")
	for _, f := range r.Faults {
		fmt.Fprintf(tw, "%.1f\t%s\t%.2f\t\n", f.AtSeconds, f.What, f.DownSeconds)
	}
	_ = tw.Flush() // a report for the terminal, written like the Fprintf lines around it
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tundisturbed\tunder faults\t")
	for _, row := range []struct {
		name     string
		ref, got int
	}{
		{kafka.Topic(kafka.Raw, r.Dataset), r.Reference.Raw, r.Chaos.Raw},
		{kafka.Topic(kafka.Clean, r.Dataset), r.Reference.Clean, r.Chaos.Clean},
		{kafka.Topic(kafka.DLQ, r.Dataset), r.Reference.DLQ, r.Chaos.DLQ},
		{kafka.Topic(kafka.Persisted, r.Dataset), r.Reference.Persisted, r.Chaos.Persisted},
		{"  distinct events", r.Reference.PersistedEvents, r.Chaos.PersistedEvents},
		{kafka.Topic(kafka.Scored, r.Dataset), r.Reference.Scored, r.Chaos.Scored},
		{"  distinct events", r.Reference.ScoredEvents, r.Chaos.ScoredEvents},
		{r.Dataset + " rows", r.Reference.TableRows, r.Chaos.TableRows},
		{"  distinct valid ids", r.Reference.DistinctValidIDs, r.Chaos.DistinctValidIDs},
		{schemas.PredictionsTable(r.Dataset) + " rows", r.Reference.Predictions, r.Chaos.Predictions},
		{"lake objects", r.Reference.Lake.Objects, r.Chaos.Lake.Objects},
		{"  rows", r.Reference.Lake.Rows, r.Chaos.Lake.Rows},
		{"  distinct events", r.Reference.Lake.ArchivedEvents, r.Chaos.Lake.ArchivedEvents},
		{"  raw records in none", r.Reference.Lake.Missing, r.Chaos.Lake.Missing},
		{"  raw records in two", r.Reference.Lake.Doubled, r.Chaos.Lake.Doubled},
	} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", row.name, row.ref, row.got)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	reasons := slices.Sorted(maps.Keys(r.Reference.DeadLetters))
	for _, k := range slices.Sorted(maps.Keys(r.Chaos.DeadLetters)) {
		if !slices.Contains(reasons, k) {
			reasons = append(reasons, k)
		}
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "dead letters by stage: reason\tundisturbed\tunder faults\t")
	for _, k := range reasons {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", k, r.Reference.DeadLetters[k], r.Chaos.DeadLetters[k])
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	if len(r.Problems) == 0 {
		fmt.Fprintf(w, "reconciled: nothing lost, doubled or changed; %s table and predictions identical to the undisturbed run\n", r.Dataset)
		return
	}
	fmt.Fprintln(w, "NOT reconciled:")
	for _, p := range r.Problems {
		fmt.Fprintln(w, "  - "+p)
	}
}
