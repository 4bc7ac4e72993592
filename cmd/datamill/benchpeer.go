package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
)

// peers are the programs `datamill bench --peer` runs on the bench's input
// after datamill, and the part of datamill's job each does.
var peers = map[string][]string{
	// A seed-style Python consumer (bench/peers/seed_consumer.py):
	// kafka-python, per-record cleaning, SQLAlchemy upserts, a
	// scikit-learn model from a joblib file.
	"python": {"cleaner", "loader", "scorer"},
	// Benthos v4.27.0, Redpanda Connect's engine before its rename
	// (bench/peers/benthos): the cleaner's and the loader's job.
	"benthos": {"cleaner", "loader"},
}

// peerNames are the peers --peer names, comma-separated, checked.
func peerNames(flag string) ([]string, error) {
	if flag == "" {
		return nil, nil
	}
	names := strings.Split(flag, ",")
	for _, n := range names {
		if _, ok := peers[n]; !ok {
			return nil, fmt.Errorf("--peer %q: want python, benthos or both (python,benthos)", n)
		}
	}
	return names, nil
}

// peerDataset is the dataset whose rules the peers write by hand.
const peerDataset = "users"

// peerSchema is the PostgreSQL schema of the peer's tables, apart from
// datamill's.
const peerSchema = "peer"

// peerReport is a peer's run on the bench's input, beside datamill's.
type peerReport struct {
	Name   string `json:"name"`
	Events int    `json:"events"`
	// Consumed is how many records the peer says it consumed.
	Consumed int `json:"consumed"`
	// Seconds is the peer's consuming process from its start to its exit.
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	// CPUSeconds is the peer process's (user and system, its children
	// included); PostgresCPUSeconds the server's and its backends' while it
	// ran.
	CPUSeconds         float64 `json:"cpu_seconds"`
	PostgresCPUSeconds float64 `json:"postgres_cpu_seconds"`
	// CPUMicrosPerEvent is the peer's and PostgreSQL's CPU over the events.
	CPUMicrosPerEvent float64 `json:"cpu_us_per_event"`
	// Rows, Rejects and Predictions are in the peer's tables afterwards;
	// Differ counts the users whose cleaned values (every typed column and
	// the quality flags) are not those of datamill's table, or that only
	// one of the two tables holds.
	Rows        int `json:"rows"`
	Rejects     int `json:"rejects"`
	Predictions int `json:"predictions"`
	Differ      int `json:"differ"`
	// Datamill is datamill's run on the same input, doing the peer's part
	// of the job (peers): events over its end-to-end time (first event
	// published to last scored read; to the loader's last commit for a
	// peer that does not score), and the CPU of the stages doing that part
	// and of PostgreSQL over the events (for a peer that does not score,
	// PostgreSQL's CPU in the share of the loader's backends);
	// AllCPUMicrosPerEvent is every service's and all of PostgreSQL's.
	// Neither counts the bench process, which is the broker.
	Datamill struct {
		EventsPerSecond      float64 `json:"events_per_second"`
		CPUMicrosPerEvent    float64 `json:"cpu_us_per_event"`
		AllCPUMicrosPerEvent float64 `json:"all_cpu_us_per_event"`
		Rows                 int     `json:"rows"`
		Rejects              int     `json:"rejects"`
	} `json:"datamill"`
	// Speedup is datamill's events/s over the peer's; CPURatio the peer's
	// CPU per event over datamill's.
	Speedup  float64 `json:"speedup"`
	CPURatio float64 `json:"cpu_ratio"`

	// The peer's tables: users, rejects and, for a peer that scores,
	// predictions.
	table, rejects, predictions string
}

// peerInterpreter is the Python that runs the peer: python, or the venv
// scripts/python/peers.sh makes in .cache/peers. It must exist, so that a
// missing venv is told before the bench, not after.
func peerInterpreter(python string) (string, error) {
	if python == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		python = filepath.Join(root, ".cache", "peers", "bin", "python")
	}
	if _, err := os.Stat(python); err != nil {
		return "", fmt.Errorf("the peer's interpreter: %w (scripts/python/peers.sh makes its venv)", err)
	}
	return python, nil
}

// runPeer runs the named peer on the events datamill just handled, in a
// consumer group of its own from the start of raw.<dataset>, into tables
// of its own in the schema peerSchema, times it, and checks its tables
// against datamill's.
func (b *benchRun) runPeer(ctx context.Context, conn *pgx.Conn, r *benchReport, name string) (*peerReport, error) {
	if _, err := conn.Exec(ctx, `create schema if not exists `+peerSchema); err != nil {
		return nil, err
	}
	var p *peerReport
	var err error
	if name == "benthos" {
		p, err = b.runBenthos(ctx)
	} else {
		p, err = b.runPython(ctx, conn)
	}
	if err != nil {
		return p, err
	}
	if err := b.comparePeer(ctx, conn, r, p); err != nil {
		return p, err
	}
	scores := slices.Contains(peers[name], "scorer")
	if p.Consumed != p.Events || p.Rows != p.Datamill.Rows || p.Rejects != p.Datamill.Rejects || (scores && p.Predictions != p.Rows) || p.Differ != 0 {
		return p, fmt.Errorf("bench: the %s peer consumed %d of %d events and ended with %d rows, %d rejects and %d predictions, %d users differing from datamill's; datamill with %d rows and %d rejects",
			p.Name, p.Consumed, p.Events, p.Rows, p.Rejects, p.Predictions, p.Differ, p.Datamill.Rows, p.Datamill.Rejects)
	}
	return p, nil
}

// runBenthos runs the Benthos peer (runBenthosPeer) into peer.benthos_users.
func (b *benchRun) runBenthos(ctx context.Context) (*peerReport, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	stack, err := peerStackFromEnv(b.eps)
	if err != nil {
		return nil, err
	}
	b.progress("running the benthos peer on the same %d events (building it first when .cache/benthos has none)…", b.flags.events)
	res, err := runBenthosPeer(ctx, stack, BenthosPeerOptions{
		Root: root, Topic: kafka.Topic(kafka.Raw, b.ds.Name), Group: "peer-benthos-" + filepath.Base(b.dir),
		Table: peerSchema + ".benthos_users", RejectsTable: peerSchema + ".benthos_users_rejects",
		Timeout: time.Hour, Log: b.logs,
	})
	if err != nil {
		return nil, err
	}
	p := &peerReport{
		Name: "benthos", Events: b.flags.events, Consumed: int(res.Records), Seconds: res.WallSeconds,
		CPUSeconds: res.CPUSeconds, PostgresCPUSeconds: max(res.PostgresCPUSeconds, 0),
		table: peerSchema + ".benthos_users", rejects: peerSchema + ".benthos_users_rejects",
	}
	p.EventsPerSecond = float64(p.Events) / p.Seconds
	p.CPUMicrosPerEvent = 1e6 * (p.CPUSeconds + p.PostgresCPUSeconds) / float64(p.Events)
	return p, nil
}

// runPython trains the Python peer's model on the training file
// datamill's was trained on, then runs it into peer.users.
func (b *benchRun) runPython(ctx context.Context, conn *pgx.Conn) (*peerReport, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "bench", "peers", "seed_consumer.py")
	python := b.flags.peerPython
	dir := filepath.Join(b.dir, "peer")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	for _, t := range []string{"users", "users_rejects", "predictions"} {
		if _, err := conn.Exec(ctx, `drop table if exists `+peerSchema+`.`+t+` cascade`); err != nil {
			return nil, err
		}
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"SCHEMA_REGISTRY_URL=" + b.eps["SCHEMA_REGISTRY_URL"], "DATABASE_URL=" + b.eps["DATABASE_URL"],
		"PEER_SCHEMA=" + peerSchema,
	}
	env = append(env, kafkaVars(b.eps)...)
	model := filepath.Join(dir, "churn.joblib")
	b.progress("training the python peer's model on the same 20,000 records…")
	if _, _, err := runScript(ctx, python, env, script, "train", "--csv", filepath.Join(b.dir, "train.csv"), "--model", model); err != nil {
		return nil, err
	}

	pgCPU := func() float64 { return 0 }
	if b.stack.pg != nil {
		pid := b.stack.pg.PID()
		pgCPU = func() float64 { cpu, _ := eco.TreeCPUSeconds(pid); return cpu }
	}
	b.progress("running the python peer on the same %d events…", b.flags.events)
	pg0, start := pgCPU(), time.Now()
	out, state, err := runScript(ctx, python, env, script, "consume", "--events", fmt.Sprint(b.flags.events),
		"--model", model, "--topic", kafka.Topic(kafka.Raw, b.ds.Name), "--group", "seed-consumer-"+filepath.Base(b.dir))
	if err != nil {
		return nil, err
	}
	p := &peerReport{
		Name: "python", Events: b.flags.events, Seconds: time.Since(start).Seconds(),
		table: peerSchema + ".users", rejects: peerSchema + ".users_rejects", predictions: peerSchema + ".predictions",
	}
	p.PostgresCPUSeconds = pgCPU() - pg0
	var summary struct {
		Consumed int `json:"consumed"`
	}
	if err := json.Unmarshal(out, &summary); err != nil {
		return nil, fmt.Errorf("bench: the python peer's summary %q: %w", out, err)
	}
	p.Consumed = summary.Consumed
	p.CPUSeconds = (state.UserTime() + state.SystemTime()).Seconds()
	p.EventsPerSecond = float64(p.Events) / p.Seconds
	p.CPUMicrosPerEvent = 1e6 * (p.CPUSeconds + p.PostgresCPUSeconds) / float64(p.Events)
	return p, nil
}

// comparePeer reads the peer's end state and datamill's beside it.
func (b *benchRun) comparePeer(ctx context.Context, conn *pgx.Conn, r *benchReport, p *peerReport) error {
	table := ident(b.ds.Name)
	cols := "age, gender, country, city, email, signup_date, last_login, account_status, monthly_spend, quality_flags"
	d, q := "d."+strings.ReplaceAll(cols, ", ", ", d."), "p."+strings.ReplaceAll(cols, ", ", ", p.")
	predictions := "0"
	if p.predictions != "" {
		predictions = `(select count(*) from ` + p.predictions + `)`
	}
	err := conn.QueryRow(ctx, `select
		(select count(*) from `+p.table+`),
		(select count(*) from `+p.rejects+`),
		`+predictions+`,
		(select count(*) from `+table+`),
		(select count(*) from `+table+` d full join `+p.table+` p using (id)
			where d.id is null or p.id is null or (`+d+`) is distinct from (`+q+`))`).
		Scan(&p.Rows, &p.Rejects, &p.Predictions, &p.Datamill.Rows, &p.Differ)
	if err != nil {
		return fmt.Errorf("bench: the peer's tables: %w", err)
	}
	c, err := scrape(ctx, b.svc["cleaner"], "cleaner")
	if err != nil {
		return err
	}
	p.Datamill.Rejects = c.dead
	// Events, as the peer's: the end-to-end figure counts scored records,
	// of which exact duplicates and unchanged re-sends make none.
	work := peers[p.Name]
	scores := slices.Contains(work, "scorer")
	p.Datamill.EventsPerSecond = float64(r.Events) / r.EndToEnd.Seconds
	if !scores {
		p.Datamill.EventsPerSecond = float64(r.Events) / b.loaderDone.Sub(b.publishStart).Seconds()
	}
	// PostgreSQL's CPU in the part of the job the peer does: all of it
	// for a peer that scores; else in the share of the loader's backends.
	pgShare, backends := 1.0, 0.0
	for _, cpu := range r.Postgres.CPUSecondsByRole {
		backends += cpu
	}
	if !scores && backends > 0 {
		pgShare = r.Postgres.CPUSecondsByRole["datamill_loader"] / backends
	}
	var part, all float64
	for _, proc := range r.Processes {
		switch service := serviceOf(proc.Name); {
		case strings.HasPrefix(proc.Name, "postgresql"):
			part += pgShare * proc.CPUSeconds
			all += proc.CPUSeconds
		case slices.Contains(work, service):
			part += proc.CPUSeconds
			all += proc.CPUSeconds
		case slices.Contains(serviceNames(), service):
			all += proc.CPUSeconds
		}
	}
	p.Datamill.CPUMicrosPerEvent = 1e6 * part / float64(r.Events)
	p.Datamill.AllCPUMicrosPerEvent = 1e6 * all / float64(r.Events)
	if p.EventsPerSecond > 0 {
		p.Speedup = p.Datamill.EventsPerSecond / p.EventsPerSecond
	}
	if p.Datamill.CPUMicrosPerEvent > 0 {
		p.CPURatio = p.CPUMicrosPerEvent / p.Datamill.CPUMicrosPerEvent
	}
	return nil
}

// runScript runs script with python, returning its standard output and how
// it exited; a failure carries its standard error.
func runScript(ctx context.Context, python string, env []string, script string, args ...string) ([]byte, *os.ProcessState, error) {
	cmd := exec.CommandContext(ctx, python, append([]string{script}, args...)...) // #nosec G204 -- the repository's own script, arguments passed without a shell
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(script), args[0], err, lastBytes(stderr.String(), 4000))
	}
	return stdout.Bytes(), cmd.ProcessState, nil
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// printPeers writes the peers' figures beside datamill's.
func printPeers(w io.Writer, runs []*peerReport) {
	for _, p := range runs {
		fmt.Fprintf(w, "\npeer %s on the same %d events (%d rows, %d rejects, %d predictions; %d users differ from datamill's table)\n",
			p.Name, p.Events, p.Rows, p.Rejects, p.Predictions, p.Differ)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\tevents/s\tCPU µs/event (incl. PostgreSQL)\t")
		fmt.Fprintf(tw, "datamill (%s)\t%.0f\t%.1f\t\n", strings.Join(peers[p.Name], ", "), p.Datamill.EventsPerSecond, p.Datamill.CPUMicrosPerEvent)
		fmt.Fprintf(tw, "datamill (every service)\t\t%.1f\t\n", p.Datamill.AllCPUMicrosPerEvent)
		fmt.Fprintf(tw, "%s peer\t%.0f\t%.1f\t\n", p.Name, p.EventsPerSecond, p.CPUMicrosPerEvent)
		_ = tw.Flush()
		fmt.Fprintf(w, "datamill is %.1f× the peer's events/s; the peer uses %.1f× datamill's CPU an event (peer %.1f CPU s, PostgreSQL %.1f, in %.1f s)\n",
			p.Speedup, p.CPURatio, p.CPUSeconds, p.PostgresCPUSeconds, p.Seconds)
	}
}
