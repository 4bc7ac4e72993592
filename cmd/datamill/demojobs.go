package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v4"

	"github.com/datamill/datamill/cmd/datamill/internal/jobboard"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

// jobsDemoRows is the offers of the jobs demo unless --rows says.
const jobsDemoRows = 1200

// jobsDemo is `datamill demo --dataset jobs`: the jobs declaration's
// sources, pointed at a local job board, extracted, polled again, and
// polled once more after one offer changed.
type jobsDemo struct {
	board    *jobboard.Board
	base     string // the board's URL
	database string
	eps      map[string]string
	// datasets is the DATASETS_DIR of the stack, models the scorer's
	// model directory, scorer its binary; exportSplit, when set, is where
	// `scorer train` writes the split for reference checks.
	datasets, models, scorer, runID, exportSplit string
	svc                                          map[string]string
	registry                                     string
	progress                                     func(string, ...any)
}

// jobsDemoSummary is what the jobs demo reports.
type jobsDemoSummary struct {
	Dataset string `json:"dataset"`
	// Sources are the counts of each source.
	Sources map[string]*jobsSourceCounts `json:"sources"`
	// SecondPoll is what polls that saw the board unchanged published;
	// AfterChange what the polls after one offer changed did.
	SecondPoll int `json:"second_poll_published"`
	// Disallowed counts the board's requests for a path its robots.txt
	// disallows: none.
	Disallowed  int    `json:"disallowed_requests"`
	Changed     string `json:"changed_offer"`
	AfterChange int    `json:"after_change_published"`
	// Clean and Persisted follow the records downstream.
	Clean, DLQ, Persisted int
	// Clusters compares the duplicate clusters the cleaner found in the
	// jobs table with those the board planted (gen's copies).
	Clusters jobsClusters `json:"clusters"`
	// Views counts the rows of each declared view.
	Views map[string]int `json:"views"`
	// Answers are a few rows of the views, as text: the most, moderately
	// and least demanded titles, the top countries and regions, the
	// median stated salary per family.
	Answers map[string][]string `json:"answers"`
	// ViewRows are the rows of the demand and location views, each a
	// column → value map, for checks of what the report shows.
	ViewRows map[string][]map[string]any `json:"view_rows"`
	// Model is the salary model the demo trained on the jobs table, and
	// Scored the records it scored.
	Model          jobsModel `json:"model"`
	Scored         int       `json:"scored"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	Reconciled     bool      `json:"reconciled"`
	// Report is the path of the report the demo wrote, if any.
	Report string `json:"report,omitempty"`
}

// jobsSourceCounts are one source's counts.
type jobsSourceCounts struct {
	// Board is the offers the board serves; Raw the records of raw.jobs
	// from the source, Distinct their distinct keys; Dropped the offers
	// the source's declaration left out, with a reason (a required field
	// missing).
	Board, Raw, Distinct, Dropped int
	// Requests the board answered for the source; Failed the polls that
	// failed (a challenge page, a 429 past the retries) and were tried
	// again.
	Requests, Failed int
}

// jobsClusters are the duplicate clusters planted and found: Found those
// the jobs table holds (offers sharing a cluster_id), Matched the found
// ones that are planted exactly.
type jobsClusters struct {
	Planted, Found, Matched int
	// Missed and Extra show a few clusters planted but not found, and
	// found but not planted, as their offers' keys.
	Missed, Extra []string `json:",omitempty"`
}

// jobsModel is the salary model of the demo: its version and test
// metrics on the held-out split.
type jobsModel struct {
	Version string  `json:"version"`
	MAE     float64 `json:"mae"`
	R2      float64 `json:"r2"`
	Rows    int     `json:"test_rows"`
}

// demoJobs runs the jobs demo: rows offers on a local board, from seed,
// dirty as dirty says.
func demoJobs(ctx context.Context, rows int, seed uint64, dirty float64, asJSON bool, exportSplit, reportFile string, environ []string, stdout, stderr io.Writer) error {
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "demo: "+format+"\n", a...) }
	board, err := jobboard.New(jobboard.Config{
		Rows: rows, Seed: seed, Dirty: dirty, ChallengeEvery: 13, TooManyEvery: 7,
		CrawlDelay: 10 * time.Millisecond, BoardPerPage: 25,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: board, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	progress("local job board on %s: %d offers from %s", base, sum(board.Counts()), strings.Join(jobboard.Sources, ", "))

	dir, logs, err := commandDir("demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer logs.Close()
	datasets, secrets := filepath.Join(dir, "datasets"), filepath.Join(dir, "secrets")
	if err := writeJobsDeclaration(datasets, base); err != nil {
		return err
	}
	if err := writeBoardSecrets(secrets); err != nil {
		return err
	}
	models := filepath.Join(dir, "models")
	runID := "demo-" + time.Now().UTC().Format("20060102T150405Z")
	d := commandStack(devFlags{dir: dir, partitions: 3, readyTimeout: 90 * time.Second, secureKafka: true}, logs, runID, environ,
		[]string{
			"DATASETS=jobs", "DATASETS_DIR=" + datasets, "EXTRACTOR_SECRETS_DIR=" + secrets,
			"EXTRACTOR_POLL_RETRY=500ms", "ECO_SAMPLE_INTERVAL=500ms",
			"SCORER_MODEL_DIR=" + models, "SCORER_MODEL_POLL=100ms",
		}, "DATABASE_URL", "KAFKA_BROKERS", "SCHEMAS_DIR")
	var summary *jobsDemoSummary
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		progress("stack ready (services' logs: %s)", logs.Name())
		j := &jobsDemo{
			board: board, base: base, svc: svc, database: eps["DATABASE_URL"], eps: eps, datasets: datasets,
			models: models, scorer: filepath.Join(dir, "bin", "scorer"), runID: runID, exportSplit: exportSplit, registry: eps["SCHEMA_REGISTRY_URL"], progress: progress,
		}
		s, err := j.run(ctx)
		summary = s
		if err != nil {
			return err
		}
		s.Report, err = demoReport(ctx, eps, "jobs", reportFile, progress)
		return err
	}
	progress("starting the embedded stack and building the services…")
	if err := d.run(ctx); err != nil {
		return err
	}
	if asJSON {
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

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// writeJobsDeclaration writes into dir the built-in jobs dataset with its
// sources pointed at the board at base, at demo speed: every URL's scheme
// and host are the board's (its paths are the real ones), a poll every
// 2 s, requests 5 ms apart.
func writeJobsDeclaration(dir, base string) error {
	out := filepath.Join(dir, "jobs")
	if err := os.MkdirAll(out, 0o750); err != nil {
		return err
	}
	for _, name := range []string{"raw.avsc", "clean.avsc"} {
		b, err := fs.ReadFile(schemas.Files, "avro/jobs/"+name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), b, 0o600); err != nil {
			return err
		}
	}
	text, err := fs.ReadFile(schemas.Files, "avro/jobs/"+schemas.DeclarationFile)
	if err != nil {
		return err
	}
	b, err := localSources(text, base)
	if err != nil {
		return fmt.Errorf("the built-in jobs declaration: %w", err)
	}
	return os.WriteFile(filepath.Join(out, schemas.DeclarationFile), b, 0o600)
}

// localSources is the declaration text with each source's URLs (url, list,
// auth.oauth2.token_url) moved to base, and its every and rate set for a
// demo.
func localSources(text []byte, base string) ([]byte, error) {
	to, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, err
	}
	sources := mappingValue(doc.Content[0], "sources")
	if sources == nil {
		return nil, errors.New("no sources")
	}
	move := func(n *yaml.Node) error {
		if n == nil {
			return nil
		}
		u, err := url.Parse(n.Value)
		if err != nil {
			return err
		}
		u.Scheme, u.Host = to.Scheme, to.Host
		// {page} stays as written: the fetcher fills it.
		n.Value = strings.ReplaceAll(strings.ReplaceAll(u.String(), "%7B", "{"), "%7D", "}")
		return nil
	}
	for _, s := range sources.Content {
		for _, key := range []string{"url", "list"} {
			if err := move(mappingValue(s, key)); err != nil {
				return nil, err
			}
		}
		if oauth := mappingValue(mappingValue(mappingValue(s, "auth"), "oauth2"), "token_url"); oauth != nil {
			if err := move(oauth); err != nil {
				return nil, err
			}
		}
		setScalar(s, "every", "2s")
		setScalar(s, "rate", "5ms")
	}
	return yaml.Marshal(&doc)
}

// mappingValue is the value of key in the mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setScalar sets key of the mapping m to value.
func setScalar(m *yaml.Node, key, value string) {
	if v := mappingValue(m, key); v != nil {
		v.Kind, v.Tag, v.Value = yaml.ScalarNode, "!!str", value
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &yaml.Node{Kind: yaml.ScalarNode, Value: value})
}

// writeBoardSecrets writes the credentials the board takes, as the secret
// files the jobs declaration names.
func writeBoardSecrets(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, v := range map[string]string{
		"adzuna_app_id": jobboard.DefaultAdzunaAppID, "adzuna_app_key": jobboard.DefaultAdzunaAppKey,
		"francetravail_client_id": jobboard.DefaultFTClientID, "francetravail_client_secret": jobboard.DefaultFTClientSecret,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// run extracts from the board until every source has polled it whole, then
// waits for polls that publish nothing, changes one offer and waits for
// the one event it makes.
func (j *jobsDemo) run(ctx context.Context) (*jobsDemoSummary, error) {
	start := time.Now()
	s := &jobsDemoSummary{Dataset: "jobs", Sources: map[string]*jobsSourceCounts{}}
	for name, n := range j.board.Counts() {
		s.Sources[name] = &jobsSourceCounts{Board: n}
	}
	// Every source polled whole once: a published poll each.
	first, err := j.waitPolls(ctx, func(m map[string]float64, name string) bool {
		return sumOf(m, "datamill_extractor_polls_total", `source_name="`+name+`"`, `result="published"`) >= 1
	}, "every source's first complete poll")
	if err != nil {
		return nil, err
	}
	raw, err := j.rawCount(ctx)
	if err != nil {
		return nil, err
	}
	j.progress("first polls done: %d records in raw.jobs", raw)

	// The next polls see the same board: they publish nothing.
	polled := map[string]int{}
	for _, name := range jobboard.Sources {
		polled[name] = polls(first, name)
	}
	if _, err := j.waitPolls(ctx, func(m map[string]float64, name string) bool {
		return polls(m, name) >= polled[name]+1
	}, "a second poll of every source"); err != nil {
		return nil, err
	}
	again, err := j.rawCount(ctx)
	if err != nil {
		return nil, err
	}
	s.SecondPoll = again - raw
	j.progress("second polls done: %d new records", s.SecondPoll)

	// One offer changes: the next polls publish it once.
	id := j.board.IDs("remotive")[0]
	if err := j.board.Change("remotive", id); err != nil {
		return nil, err
	}
	s.Changed = "remotive:" + id
	m, err := fetchMetrics(ctx, j.svc["extractor"])
	if err != nil {
		return nil, err
	}
	for _, name := range jobboard.Sources {
		polled[name] = polls(m, name)
	}
	if _, err := j.waitPolls(ctx, func(m map[string]float64, name string) bool {
		return polls(m, name) >= polled[name]+1
	}, "a poll of every source after the change"); err != nil {
		return nil, err
	}
	records, err := j.rawRecords(ctx)
	if err != nil {
		return nil, err
	}
	s.AfterChange = len(records) - again
	j.progress("polls after changing %s done: %d new records", s.Changed, s.AfterChange)

	distinct := map[string]map[string]bool{}
	for _, r := range records {
		c := s.Sources[r.sourceName]
		if c == nil {
			c = &jobsSourceCounts{}
			s.Sources[r.sourceName] = c
		}
		c.Raw++
		if distinct[r.sourceName] == nil {
			distinct[r.sourceName] = map[string]bool{}
		}
		distinct[r.sourceName][r.id] = true
	}
	m, err = fetchMetrics(ctx, j.svc["extractor"])
	if err != nil {
		return nil, err
	}
	requests := map[string]int{}
	for _, r := range j.board.Requests() {
		requests[sourceOfPath(r.Path)]++
		if strings.HasPrefix(r.Path, jobboard.PathDisallowed) {
			s.Disallowed++
		}
	}
	s.Reconciled = s.SecondPoll == 0 && s.AfterChange == 1 && s.Disallowed == 0
	for name, c := range s.Sources {
		c.Distinct = len(distinct[name])
		c.Dropped = sumOf(m, "datamill_extractor_poll_offers", `source_name="`+name+`"`, `state="dropped"`)
		c.Requests = requests[name]
		c.Failed = sumOf(m, "datamill_extractor_polls_total", `source_name="`+name+`"`, `result="failed"`)
		if c.Distinct+c.Dropped != c.Board {
			s.Reconciled = false
		}
	}
	// Downstream: every record cleaned and loaded.
	for deadline := time.Now().Add(5 * time.Minute); ; {
		cl, err := scrape(ctx, j.svc["cleaner"], "cleaner")
		if err != nil {
			return nil, err
		}
		lo, err := scrape(ctx, j.svc["loader"], "loader")
		if err != nil {
			return nil, err
		}
		s.Clean, s.DLQ, s.Persisted = cl.out, cl.dead+lo.dead, lo.out
		if cl.in == len(records) && lo.in == cl.out {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: %d of %d records cleaned and %d of %d loaded after 5 minutes", cl.in, len(records), lo.in, cl.out)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := j.model(ctx, s, len(records)); err != nil {
		return nil, err
	}
	if err := j.warehouse(ctx, s); err != nil {
		return nil, err
	}
	s.Reconciled = s.Reconciled && s.Clusters.Planted == s.Clusters.Found && s.Clusters.Found == s.Clusters.Matched
	s.ElapsedSeconds = time.Since(start).Seconds()
	return s, nil
}

// model trains the salary model on the jobs table (`scorer train`), and
// waits until the scorer has scored every persisted record with it.
func (j *jobsDemo) model(ctx context.Context, s *jobsDemoSummary, persisted int) error {
	j.progress("training the salary model on the jobs table…")
	args := []string{"train", "--dataset", "jobs", "--out", j.models}
	if j.exportSplit != "" {
		args = append(args, "--export-split", j.exportSplit)
	}
	cmd := exec.CommandContext(ctx, j.scorer, args...) // #nosec G204 -- our own scorer binary, arguments passed without a shell
	cmd.Env = append(os.Environ(), "DATABASE_URL="+j.database, "RUN_ID="+j.runID, "DATASETS_DIR="+j.datasets,
		"SCHEMA_REGISTRY_URL="+j.eps["SCHEMA_REGISTRY_URL"])
	cmd.Env = append(cmd.Env, kafkaVars(j.eps)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("demo: scorer train: %w\n%s", err, out)
	}
	entries, _ := filepath.Glob(filepath.Join(j.models, "salary-*.json"))
	if len(entries) == 0 {
		return errors.New("demo: scorer train wrote no model")
	}
	slices.Sort(entries)
	b, err := os.ReadFile(entries[len(entries)-1])
	if err != nil {
		return err
	}
	var art struct {
		Version string `json:"version"`
		Test    struct {
			MAE  float64 `json:"mae"`
			R2   float64 `json:"r2"`
			Rows int     `json:"rows"`
		} `json:"test_metrics"`
	}
	if err := json.Unmarshal(b, &art); err != nil {
		return fmt.Errorf("demo: model %s: %w", entries[len(entries)-1], err)
	}
	if j.exportSplit != "" {
		// Beside its split, for bench/sklearn_reference.py.
		if err := os.WriteFile(filepath.Join(j.exportSplit, filepath.Base(entries[len(entries)-1])), b, 0o600); err != nil { // #nosec G703 -- --export-split, the operator's own directory
			return err
		}
	}
	s.Model = jobsModel{Version: art.Version, MAE: art.Test.MAE, R2: art.Test.R2, Rows: art.Test.Rows}
	j.progress("scoring with model %s (test MAE %.0f, R² %.3f)…", art.Version, art.Test.MAE, art.Test.R2)
	for deadline := time.Now().Add(5 * time.Minute); ; {
		sc, err := scrape(ctx, j.svc["scorer"], "scorer")
		if err != nil {
			return err
		}
		s.Scored = sc.out
		if sc.in >= persisted {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the scorer scored %d of %d records in 5 minutes", sc.in, persisted)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// warehouse compares the clusters of the jobs table with the board's, and
// asks every declared view.
func (j *jobsDemo) warehouse(ctx context.Context, s *jobsDemoSummary) error {
	conn, err := pgx.Connect(ctx, j.database)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	planted := map[string]bool{}
	for _, g := range j.board.Duplicates() {
		keys := make([]string, len(g))
		for i, o := range g {
			id := o.ID
			if o.Source == "weworkremotely" { // scraped: its id is its page's URL
				id = j.base + "/" + strings.TrimPrefix(id, "/")
			}
			keys[i] = o.Source + ":" + id
		}
		slices.Sort(keys)
		planted[strings.Join(keys, " ")] = true
	}
	rows, err := conn.Query(ctx, `select array_agg(id order by id) from jobs where cluster_id is not null group by cluster_id having count(*) > 1`)
	if err != nil {
		return err
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var ids []string
		err := r.Scan(&ids)
		slices.Sort(ids)
		return strings.Join(ids, " "), err
	})
	if err != nil {
		return err
	}
	c := &s.Clusters
	c.Planted, c.Found = len(planted), len(found)
	for _, f := range found {
		if planted[f] {
			c.Matched++
			delete(planted, f)
		} else if len(c.Extra) < 5 {
			c.Extra = append(c.Extra, f)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(planted)) {
		if len(c.Missed) < 5 {
			c.Missed = append(c.Missed, p)
		}
	}
	ds, err := schemas.BuiltIn().Dataset("jobs")
	if err != nil {
		return err
	}
	// A view that reads the predictions table is created by the loader's
	// next try after the scorer made that table (every 5 s): wait for it.
	for deadline := time.Now().Add(time.Minute); ; {
		var missing []string
		for _, v := range ds.Decl.Views {
			var exists bool
			if err := conn.QueryRow(ctx, `select to_regclass($1) is not null`, v.Name).Scan(&exists); err != nil {
				return fmt.Errorf("view %s: %w", v.Name, err)
			}
			if !exists {
				missing = append(missing, v.Name)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the loader has not created the views %s", strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Views = map[string]int{}
	for _, v := range ds.Decl.Views {
		var n int
		if err := conn.QueryRow(ctx, fmt.Sprintf("select count(*) from %s", ident(v.Name))).Scan(&n); err != nil {
			return fmt.Errorf("view %s: %w", v.Name, err)
		}
		s.Views[v.Name] = n
	}
	s.ViewRows = map[string][]map[string]any{}
	for _, v := range []string{"jobs_title_demand", "jobs_family_demand", "jobs_top_locations", "jobs_salary_by_family", "jobs_per_source_day"} {
		rows, err := conn.Query(ctx, fmt.Sprintf("select * from %s", ident(v)))
		if err != nil {
			return fmt.Errorf("view %s: %w", v, err)
		}
		if s.ViewRows[v], err = pgx.CollectRows(rows, pgx.RowToMap); err != nil {
			return fmt.Errorf("view %s: %w", v, err)
		}
	}
	s.Answers = map[string][]string{}
	for name, q := range map[string]string{
		"most demanded titles":                           `select title || ' (' || offers || ')' from jobs_title_demand where band = 'top' order by rank, title limit 5`,
		"moderately demanded titles":                     `select title || ' (' || offers || ')' from jobs_title_demand where band = 'middle' order by rank, title limit 5`,
		"least demanded titles":                          `select title || ' (' || offers || ')' from jobs_title_demand where band = 'bottom' order by rank desc, title limit 5`,
		"top countries":                                  `select code || ' (' || offers || ')' from jobs_top_locations where kind = 'country' order by rank, code`,
		"top regions":                                    `select code || ' (' || offers || ')' from jobs_top_locations where kind = 'region' order by rank, code`,
		"median stated salary (EUR a year) by family":    `select family || ' ' || round(median::numeric) from jobs_salary_by_family where basis = 'stated' order by median desc`,
		"median estimated salary (EUR a year) by family": `select family || ' ' || round(median::numeric) from jobs_salary_by_family where basis = 'estimated' order by median desc`,
	} {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if s.Answers[name], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// polls counts the complete polls of source name: those that published,
// and those that found nothing new.
func polls(m map[string]float64, name string) int {
	n := 0
	for _, result := range []string{"published", "unchanged", "not_modified"} {
		n += sumOf(m, "datamill_extractor_polls_total", `source_name="`+name+`"`, `result="`+result+`"`)
	}
	return n
}

// sourceOfPath names the source a request path of the board belongs to.
func sourceOfPath(path string) string {
	switch {
	case path == jobboard.PathRemotive:
		return "remotive"
	case path == jobboard.PathArbeitnow:
		return "arbeitnow"
	case path == jobboard.PathRemoteOK:
		return "remoteok"
	case strings.HasPrefix(path, "/v1/api/jobs/"):
		return "adzuna"
	case path == jobboard.PathFTSearch || path == jobboard.PathFTToken:
		return "francetravail"
	case strings.HasPrefix(path, jobboard.PathBoardList), strings.HasPrefix(path, jobboard.PathBoardDetail), path == "/robots.txt":
		return "weworkremotely"
	}
	return "other"
}

// waitPolls waits until ok holds for every source on the extractor's
// metrics, saying what it waits for every few seconds.
func (j *jobsDemo) waitPolls(ctx context.Context, ok func(m map[string]float64, name string) bool, what string) (map[string]float64, error) {
	deadline := time.Now().Add(5 * time.Minute)
	last := time.Now()
	for {
		m, err := fetchMetrics(ctx, j.svc["extractor"])
		if err != nil {
			return nil, err
		}
		var waiting []string
		for _, name := range jobboard.Sources {
			if !ok(m, name) {
				waiting = append(waiting, name)
			}
		}
		if len(waiting) == 0 {
			return m, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: no %s within 5 minutes: still waiting for %s", what, strings.Join(waiting, ", "))
		}
		if time.Since(last) > 3*time.Second {
			j.progress("waiting for %s: %s", what, strings.Join(waiting, ", "))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rawJob is what the demo reads of a raw.jobs record.
type rawJob struct{ id, sourceName string }

// rawRecords reads every committed record of raw.jobs.
func (j *jobsDemo) rawRecords(ctx context.Context) ([]rawJob, error) {
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: j.registry})
	if err != nil {
		return nil, err
	}
	var out []rawJob
	var bad error
	kcfg, err := cliKafka(j.eps)
	if err != nil {
		return nil, err
	}
	err = kafka.ReadCommitted(ctx, kcfg, zap.NewNop(), kafka.Topic(kafka.Raw, "jobs"), nil, func(r *kgo.Record) {
		_, v, err := reg.DecodeAny(ctx, r.Value)
		if err != nil {
			bad = err
			return
		}
		rec, _ := v.(map[string]any)
		out = append(out, rawJob{id: unionString(rec["id"]), sourceName: unionString(rec["source_name"])})
	})
	return out, errors.Join(err, bad)
}

// rawCount counts the committed records of raw.jobs.
func (j *jobsDemo) rawCount(ctx context.Context) (int, error) {
	recs, err := j.rawRecords(ctx)
	return len(recs), err
}

// unionString is the string of a decoded nullable string.
func unionString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		s, _ := v["string"].(string)
		return s
	}
	return ""
}

func (s *jobsDemoSummary) print(w io.Writer) {
	fmt.Fprintf(w, "\njobs demo: every source of the jobs declaration, on a local board\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "source\ton the board\textracted\tdistinct\tleft out\trequests\tfailed polls\t")
	for _, name := range slices.Sorted(maps.Keys(s.Sources)) {
		c := s.Sources[name]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, c.Board, c.Raw, c.Distinct, c.Dropped, c.Requests, c.Failed)
	}
	_ = tw.Flush() // a report for the terminal, written like the Fprintf lines around it
	fmt.Fprintf(w, "\nsecond poll of an unchanged board: %d records published\n", s.SecondPoll)
	fmt.Fprintf(w, "after changing %s: %d record published\n", s.Changed, s.AfterChange)
	fmt.Fprintf(w, "requests for a path robots.txt disallows: %d\n", s.Disallowed)
	fmt.Fprintf(w, "downstream: %d clean, %d dead-lettered, %d persisted\n", s.Clean, s.DLQ, s.Persisted)
	c := s.Clusters
	fmt.Fprintf(w, "duplicate clusters: %d planted on the board, %d found in the jobs table, %d of them planted\n", c.Planted, c.Found, c.Matched)
	for _, m := range c.Missed {
		fmt.Fprintf(w, "  planted, not found: %s\n", m)
	}
	for _, e := range c.Extra {
		fmt.Fprintf(w, "  found, not planted: %s\n", e)
	}
	for _, q := range slices.Sorted(maps.Keys(s.Answers)) {
		fmt.Fprintf(w, "%s: %s\n", q, strings.Join(s.Answers[q], ", "))
	}
	fmt.Fprintf(w, "salary model %s: test MAE %.0f EUR, R² %.3f on %d held-out offers; %d records scored\n", s.Model.Version, s.Model.MAE, s.Model.R2, s.Model.Rows, s.Scored)
	fmt.Fprintln(w, "views:")
	for _, v := range slices.Sorted(maps.Keys(s.Views)) {
		fmt.Fprintf(w, "  %-24s %d rows\n", v, s.Views[v])
	}
	verdict := "reconciled: every offer on the board is extracted once or left out with a reason, a second poll publishes nothing, a change publishes one event, the duplicates planted are the clusters found"
	if !s.Reconciled {
		verdict = "NOT reconciled"
	}
	fmt.Fprintf(w, "%s (%.1f s)\n", verdict, s.ElapsedSeconds)
	if s.Report != "" {
		fmt.Fprintf(w, "report: %s\n", s.Report)
	}
}
