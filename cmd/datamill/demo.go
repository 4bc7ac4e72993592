package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	htmlreport "github.com/datamill/datamill/cmd/datamill/internal/report"
	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/schemas"
)

func demo(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dataset string
	datasetFlag(fs, &dataset, "the dataset to generate and run")
	rows := fs.Int("rows", 20000, "distinct records to generate (duplicates and re-sends add rows)")
	seed := fs.Uint64("seed", 1, "generator seed")
	dirty := fs.Float64("dirty", 0.1, "share of dirty rows, in [0, 1]")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	exportSplit := fs.String("export-split", "", "with --dataset jobs: write the salary model's train/test split here, for bench/sklearn_reference.py")
	reportFile := fs.String("report", "report.html", "write the report of the run (datamill report) to this file before the stack stops; \"\" writes none")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: datamill demo [flags]\n\nStarts the embedded stack and the services (on free ports, with a fresh\nPostgreSQL), generates dirty records of --dataset into a file the extractor\nreads, waits until the pipeline has drained, and prints what every stage did. Exits non-zero when the\ncounts do not reconcile. Before its stack stops it writes the run's report\n(datamill report) to --report.\n\nWith --dataset jobs it serves --rows offers (%d unless given) on a local job\nboard (datamill jobboard), points every source of the jobs declaration at it,\nand checks that each offer is extracted once, that a second poll publishes\nnothing and that changing one offer publishes one event.\n\nflags:\n", jobsDemoRows)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *dirty < 0 || *dirty > 1 || *rows < 1 {
		return fmt.Errorf("demo: want --rows ≥ 1 and --dirty in [0, 1]")
	}
	if dataset == gen.JobsDataset {
		n := *rows
		if !flagSet(fs, "rows") {
			n = jobsDemoRows
		}
		return demoJobs(ctx, n, *seed, *dirty, *asJSON, *exportSplit, *reportFile, environ, stdout, stderr)
	}
	ds, err := generatedDataset(environ, stderr, dataset)
	if err != nil {
		return fmt.Errorf("demo: --dataset: %w", err)
	}
	dir, logs, err := commandDir("demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer logs.Close()

	// The extractor watches inbox; the generated file is renamed into it.
	inbox := filepath.Join(dir, "inbox")
	if err := os.Mkdir(inbox, 0o750); err != nil {
		return err
	}
	models := filepath.Join(dir, "models")
	runID := "demo-" + time.Now().UTC().Format("20060102T150405Z")
	// The demo's own throwaway stack: free ports, a fresh database, an
	// in-process broker, secure as dev's.
	d := commandStack(devFlags{dir: dir, partitions: 3, readyTimeout: 90 * time.Second, secureKafka: true}, logs, runID, environ,
		[]string{
			"DATASETS=" + ds.Name, "EXTRACTOR_FILES=" + ds.Name + "=" + inbox, "EXTRACTOR_SCAN_INTERVAL=200ms", "SCORER_MODEL_DIR=" + models, "SCORER_MODEL_POLL=100ms",
			"ECO_SAMPLE_INTERVAL=500ms", "SCORER_DRIFT_INTERVAL=200ms", // the report charts the drift of the run
		}, "DATABASE_URL", "KAFKA_BROKERS")
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "demo: "+format+"\n", a...) }
	var summary *demoSummary
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		progress("stack ready (services' logs: %s)", logs.Name())
		dr := demoRun{ds: ds, eps: eps, svc: svc, inbox: inbox, models: models, runID: runID, scorer: filepath.Join(dir, "bin", "scorer"), progress: progress}
		s, err := dr.demo(ctx, gen.Options{Users: *rows, Seed: *seed, Dirty: *dirty})
		summary = s
		if err != nil {
			return err
		}
		s.Report, err = demoReport(ctx, eps, ds.Name, *reportFile, progress)
		return err
	}
	progress("starting the embedded stack and building the services…")
	if err := d.run(ctx); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(summary); err != nil {
			return err
		}
	} else {
		summary.print(stdout)
	}
	if !summary.Reconciled {
		return errors.New("demo: the counts do not reconcile")
	}
	return nil
}

// commandDir makes the temporary directory of a command that runs its own
// stack (demo, bench), with the services' log file in it.
func commandDir(command string) (string, *os.File, error) {
	dir, err := os.MkdirTemp("", "datamill-"+command+"-")
	if err != nil {
		return "", nil, err
	}
	logs, err := os.Create(filepath.Join(dir, "services.log")) // #nosec G304 -- a file in the demo's own temporary directory
	if err != nil {
		_ = os.RemoveAll(dir) // on an error path: that error is the one returned
		return "", nil, err
	}
	return dir, logs, nil
}

// commandStack is the stack of `datamill dev` that a command (demo, bench)
// runs by itself, its services logging to logs and labelled runID. The
// services get set, then the variables of environ that set, RUN_ID and
// drop do not name; drop's are not dev's either (e.g. DATABASE_URL, for a
// fresh database). Dev reads set too (DATASETS: the topics it creates).
func commandStack(flags devFlags, logs io.Writer, runID string, environ, set []string, drop ...string) *devStack {
	env := config.ToMap(environ)
	skip := map[string]bool{"RUN_ID": true}
	for _, k := range drop {
		delete(env, k)
		skip[k] = true
	}
	env["RUN_ID"] = runID // dev gives it to the services
	children := append(slices.Clone(set), "RUN_ID="+runID)
	for _, kv := range set {
		k, v, _ := strings.Cut(kv, "=")
		skip[k] = true
		env[k] = v
	}
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); !skip[k] {
			children = append(children, kv)
		}
	}
	return &devStack{flags: flags, env: env, environ: children, out: &lockedWriter{w: logs}}
}

// demoSummary is what `datamill demo` reports.
type demoSummary struct {
	Counts struct {
		Raw        int `json:"raw"`
		Clean      int `json:"clean"`
		DLQ        int `json:"dlq"`
		Duplicates int `json:"duplicates"`
		Persisted  int `json:"persisted"`
		Unchanged  int `json:"unchanged"`
		Scored     int `json:"scored"`
	} `json:"counts"`
	DeadLetters map[string]int `json:"dead_letters_by_reason"`
	// Tables counts the rows of the dataset's table and of its
	// predictions table, by table name.
	Tables           map[string]int `json:"tables"`
	Dataset          string         `json:"dataset"`
	Model            demoModel      `json:"model"`
	Eco              *eco.Report    `json:"eco"`
	DistinctValidIDs int            `json:"distinct_valid_ids"`
	ElapsedSeconds   float64        `json:"elapsed_seconds"`
	EventsPerSecond  float64        `json:"events_per_second"`
	Reconciled       bool           `json:"reconciled"`
	// Report is the path of the report the demo wrote, if any.
	Report string `json:"report,omitempty"`
}

// demoReport writes the report of a demo's run of dataset, read from
// database, to file (nothing when file is ""), and returns its absolute
// path.
func demoReport(ctx context.Context, eps map[string]string, dataset, file string, progress func(string, ...any)) (string, error) {
	if file == "" {
		return "", nil
	}
	path, err := filepath.Abs(file)
	if err != nil {
		return "", fmt.Errorf("demo: --report: %w", err)
	}
	var sources []htmlreport.Source
	if src, ok := datasetSection(dataset); ok {
		sources = append(sources, src)
	}
	kcfg, err := cliKafka(eps)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	sources = append(sources, htmlreport.Pipeline, htmlreport.Streams(kcfg, eps["SCHEMA_REGISTRY_URL"], []string{dataset}), htmlreport.Profiles)
	if err := writeReport(ctx, eps["DATABASE_URL"], sources, path); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	progress("report: %s", path)
	return path, nil
}

// demoRun is one demo on a ready stack.
type demoRun struct {
	ds            *schemas.Dataset
	eps, svc      map[string]string
	inbox, models string // the extractor's directory, the scorer's
	runID         string
	scorer        string // binary, for `scorer train`
	progress      func(string, ...any)
}

func (d *demoRun) demo(ctx context.Context, opts gen.Options) (*demoSummary, error) {
	eps, svc, inbox, progress := d.eps, d.svc, d.inbox, d.progress
	// Written under a dot name, which the extractor leaves alone, then
	// renamed in whole.
	file := d.ds.Name + ".csv"
	tmp := filepath.Join(inbox, "."+file)
	f, err := os.Create(tmp) // #nosec G304 -- a file in the demo's own temporary directory
	if err != nil {
		return nil, err
	}
	g := gen.New(opts)
	err = gen.Write(f, g, "csv", nil)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, err
	}
	st := g.Stats()
	progress("generated %d rows for %d %s (%d dirty rows, %d duplicates, %d re-sends)", st.Rows, st.Users, d.ds.Name, st.DirtyRows, st.Duplicates, st.Resends)
	start := time.Now()
	if err := os.Rename(tmp, filepath.Join(inbox, file)); err != nil {
		return nil, err
	}
	progress("%s is in the extractor's directory; waiting for the pipeline to drain…", file)

	s := &demoSummary{Dataset: d.ds.Name, DeadLetters: map[string]int{}, Tables: map[string]int{}}
	var cleaner, loader stageCounts
	extracted, unreadable := 0, 0
	for last := time.Now(); ; {
		m, err := fetchMetrics(ctx, svc["extractor"])
		if err != nil {
			return nil, err
		}
		done := sumOf(m, "datamill_extractor_files_total") > 0
		extracted = sumOf(m, "datamill_extractor_records_total", `source="file"`)
		unreadable = sumOf(m, "datamill_extractor_records_dead_lettered_total")
		if cleaner, err = scrape(ctx, svc["cleaner"], "cleaner"); err != nil {
			return nil, err
		}
		if loader, err = scrape(ctx, svc["loader"], "loader"); err != nil {
			return nil, err
		}
		if done && cleaner.in == extracted && loader.in == cleaner.out {
			break
		}
		if time.Since(last) > 2*time.Second {
			progress("extracted %d/%d, cleaned %d, loaded %d/%d", extracted+unreadable, st.Rows, cleaner.in, loader.in, cleaner.out)
			last = time.Now()
		}
		if time.Since(start) > 10*time.Minute {
			return nil, errors.New("demo: the pipeline did not drain within 10 minutes")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Counts.Raw = extracted

	// The model: trained on the loaded records unless there is one, then
	// every persisted event scored.
	if s.Model, err = d.model(ctx); err != nil {
		return nil, err
	}
	var scorer stageCounts
	for {
		if scorer, err = scrape(ctx, svc["scorer"], "scorer"); err != nil {
			return nil, err
		}
		if scorer.in == loader.out {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return nil, errors.New("demo: the scorer did not catch up within 10 minutes")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Counts.Scored = scorer.out
	s.ElapsedSeconds = time.Since(start).Seconds()
	s.EventsPerSecond = float64(s.Counts.Raw) / s.ElapsedSeconds
	s.Counts.Clean, s.Counts.Duplicates = cleaner.out, cleaner.duplicates
	s.Counts.DLQ = unreadable + cleaner.dead + loader.dead + scorer.dead
	if unreadable > 0 {
		s.DeadLetters["extractor: unreadable"] = unreadable
	}
	s.Counts.Persisted, s.Counts.Unchanged = loader.out, loader.duplicates
	for r, n := range cleaner.deadBy {
		s.DeadLetters["cleaner: "+r] += n
	}
	for r, n := range loader.deadBy {
		s.DeadLetters["loader: "+r] += n
	}

	conn, err := pgx.Connect(ctx, eps["DATABASE_URL"])
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	table, predictions := d.ds.Name, schemas.PredictionsTable(d.ds.Name)
	var rows, predicted int
	if err := conn.QueryRow(ctx, fmt.Sprintf(`select (select count(*) from %s), (select count(*) from %s)`, ident(table), ident(predictions))).Scan(&rows, &predicted); err != nil {
		return nil, err
	}
	s.Tables[table], s.Tables[predictions] = rows, predicted
	if s.DistinctValidIDs, err = distinctKeys(ctx, eps, kafka.Topic(kafka.Clean, d.ds.Name), s.Counts.Clean); err != nil {
		return nil, err
	}
	if s.Eco, err = d.eco(ctx, conn); err != nil {
		return nil, err
	}
	s.Reconciled = st.Rows == extracted+unreadable &&
		s.Counts.Raw == s.Counts.Clean+cleaner.dead+s.Counts.Duplicates &&
		loader.in == loader.out+loader.dead+loader.duplicates &&
		rows == s.DistinctValidIDs &&
		s.Counts.Scored == s.Counts.Persisted && predicted == s.Counts.Persisted
	return s, nil
}

// eco waits until the ecometer holds samples of every stage up to now,
// then returns the eco report of the run.
func (d *demoRun) eco(ctx context.Context, conn *pgx.Conn) (*eco.Report, error) {
	until := time.Now()
	deadline := until.Add(30 * time.Second)
	for {
		var covered int
		err := conn.QueryRow(ctx, `select count(*) from eco_stage_totals where run_id = $1 and last_at >= $2
			and stage in ('extractor', 'cleaner', 'loader', 'scorer')`, d.runID, until).Scan(&covered)
		if err == nil && covered == 4 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: the ecometer has no samples of every stage up to the end of the run (%v)", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	totals, err := eco.LoadRun(ctx, conn, d.runID)
	if err != nil {
		return nil, err
	}
	constants := map[eco.Bound]eco.Constants{}
	for _, b := range []eco.Bound{eco.Low, eco.Central, eco.High} {
		constants[b] = eco.Defaults(b, 0, false)
	}
	return eco.NewReport(d.runID, "WORLD", totals, constants)
}

// demoModel is the model of a demo's summary.
type demoModel struct {
	Version string  `json:"version"`
	AUC     float64 `json:"auc"`
	Trained bool    `json:"trained_by_demo"`
}

// model trains the dataset's model on its table when the scorer's
// directory has none, and returns the model the scorer applies.
func (d *demoRun) model(ctx context.Context) (demoModel, error) {
	m := demoModel{}
	entries, _ := filepath.Glob(filepath.Join(d.models, modelName(d.ds)+"-*.json"))
	if len(entries) == 0 {
		d.progress("training the %s model on the loaded %s…", modelName(d.ds), d.ds.Name)
		cmd := exec.CommandContext(ctx, d.scorer, "train", "--out", d.models, "--name", modelName(d.ds)) // #nosec G204 -- our own scorer binary, arguments passed without a shell
		cmd.Env = append(os.Environ(), "DATABASE_URL="+d.eps["DATABASE_URL"], "RUN_ID="+d.runID, "SCHEMA_REGISTRY_URL="+d.eps["SCHEMA_REGISTRY_URL"])
		cmd.Env = append(cmd.Env, kafkaVars(d.eps)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return m, fmt.Errorf("demo: scorer train: %w\n%s", err, out)
		}
		m.Trained = true
		if entries, _ = filepath.Glob(filepath.Join(d.models, modelName(d.ds)+"-*.json")); len(entries) == 0 {
			return m, errors.New("demo: scorer train wrote no model")
		}
	}
	slices.Sort(entries)
	b, err := os.ReadFile(entries[len(entries)-1])
	if err != nil {
		return m, err
	}
	var art struct {
		Version string `json:"version"`
		Test    struct {
			AUC float64 `json:"roc_auc"`
		} `json:"test_metrics"`
	}
	if err := json.Unmarshal(b, &art); err != nil {
		return m, fmt.Errorf("demo: model %s: %w", entries[len(entries)-1], err)
	}
	m.Version, m.AUC = art.Version, art.Test.AUC
	d.progress("scoring with model %s (test ROC-AUC %.3f)…", m.Version, m.AUC)
	return m, nil
}

// stageCounts are a stage's counters from its /metrics.
type stageCounts struct {
	in, out, dead, duplicates int
	deadBy                    map[string]int
}

// fetchMetrics reads a service's /metrics page: each series (name and
// labels) with its value.
func fetchMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// sumOf adds up the series of metric name whose labels contain every one
// of with (e.g. `stage="cleaner"`).
func sumOf(m map[string]float64, name string, with ...string) int {
	return int(total(m, name, with...))
}

// total is sumOf in float.
func total(m map[string]float64, name string, with ...string) float64 {
	total := 0.0
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, w := range with {
			ok = ok && strings.Contains(series, w)
		}
		if ok {
			total += v
		}
	}
	return total
}

// scrape reads a stage's record counters from its metrics endpoint.
func scrape(ctx context.Context, addr, stage string) (stageCounts, error) {
	m, err := fetchMetrics(ctx, addr)
	if err != nil {
		return stageCounts{}, err
	}
	is := `stage="` + stage + `"`
	c := stageCounts{
		in:         sumOf(m, "datamill_stage_records_in_total", is),
		out:        sumOf(m, "datamill_stage_records_out_total", is),
		duplicates: sumOf(m, "datamill_stage_records_duplicates_total", is),
		dead:       sumOf(m, "datamill_stage_records_dead_lettered_total", is),
		deadBy:     map[string]int{},
	}
	for series, v := range m {
		if strings.HasPrefix(series, "datamill_stage_records_dead_lettered_total{") && strings.Contains(series, is) {
			if _, reason, ok := strings.Cut(series, `reason="`); ok {
				reason, _, _ = strings.Cut(reason, `"`)
				c.deadBy[reason] += int(v)
			}
		}
	}
	return c, nil
}

// distinctKeys reads the n committed records of topic and counts their
// distinct keys.
func distinctKeys(ctx context.Context, eps map[string]string, topic string, n int) (int, error) {
	kcfg, err := cliKafka(eps)
	if err != nil {
		return 0, err
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop(), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	keys := map[string]bool{}
	for seen := 0; seen < n; {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0, fmt.Errorf("read %s: %d of %d records: %w", topic, seen, n, ctx.Err())
		}
		f.EachRecord(func(r *kgo.Record) {
			keys[string(r.Key)] = true
			seen++
		})
	}
	return len(keys), nil
}

func (s *demoSummary) print(w io.Writer) {
	ds, predictions := s.Dataset, schemas.PredictionsTable(s.Dataset)
	topic := func(step string) string { return kafka.Topic(step, ds) }
	fmt.Fprintf(w, "\ndatamill demo — %d %s events in %.1f s (%.0f events/s end to end, file → predictions)\n\n", s.Counts.Raw, ds, s.ElapsedSeconds, s.EventsPerSecond)
	fmt.Fprintf(w, "  %-18s %8d\n", topic(kafka.Raw), s.Counts.Raw)
	fmt.Fprintf(w, "  %-18s %8d\n", topic(kafka.Clean), s.Counts.Clean)
	fmt.Fprintf(w, "  %-18s %8d\n", topic(kafka.DLQ), s.Counts.DLQ)
	for r, n := range s.DeadLetters {
		fmt.Fprintf(w, "    %-16s %8d\n", r, n)
	}
	fmt.Fprintf(w, "  duplicates dropped %8d\n", s.Counts.Duplicates)
	fmt.Fprintf(w, "  %-18s %8d   (%d events changed nothing: re-sends and duplicates)\n", topic(kafka.Persisted), s.Counts.Persisted, s.Counts.Unchanged)
	fmt.Fprintf(w, "  %-18s %8d   (model %s, test ROC-AUC %.3f)\n", topic(kafka.Scored), s.Counts.Scored, s.Model.Version, s.Model.AUC)
	fmt.Fprintf(w, "  %-18s %8d rows for %d distinct valid ids\n", ds+" table", s.Tables[ds], s.DistinctValidIDs)
	fmt.Fprintf(w, "  %-18s %8d\n\n", predictions+" table", s.Tables[predictions])
	if s.Eco != nil {
		s.Eco.Print(w)
		fmt.Fprintln(w)
	}
	if s.Reconciled {
		fmt.Fprintln(w, "  reconciled: raw = clean + dead letters + duplicates, one row per distinct valid id,")
		fmt.Fprintln(w, "  one prediction and one scored record per persisted event")
	} else {
		fmt.Fprintln(w, "  NOT RECONCILED")
	}
	if s.Report != "" {
		fmt.Fprintf(w, "\n  report: %s\n", s.Report)
	}
}
