package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
)

// The same dirty users, run once through one process of each service and
// once through three cleaners, two loaders and two scorers on six
// partitions: every process of a scaled stage does part of the work, and
// the outcome is the same to the last column and prediction.
func TestScaledStagesSpreadTheWorkAndMatchOneOfEach(t *testing.T) {
	// One file, at one path, for both runs: a record's event id names its
	// file. It waits under a dot name, which the extractor leaves alone,
	// and is renamed into place once a stack's groups are formed.
	inbox := t.TempDir()
	f, err := os.Create(filepath.Join(inbox, ".users.csv"))
	if err != nil {
		t.Fatal(err)
	}
	g := gen.New(gen.Options{Users: 20_000, Seed: 23, Dirty: 0.1})
	if err := gen.Write(f, g, "csv", nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %+v", g.Stats())
	// The first run trains the model into models; the second applies the
	// same artefact.
	models := t.TempDir()

	start := time.Now()
	one, _ := runScaled(t, inbox, models, scale{})
	t.Logf("one of each in %v: %s", time.Since(start).Round(100*time.Millisecond), one)
	start = time.Now()
	scaled, shares := runScaled(t, inbox, models, scale{"cleaner": 3, "loader": 2, "scorer": 2})
	t.Logf("scaled in %v: %s; records in per process %v", time.Since(start).Round(100*time.Millisecond), scaled, shares)

	for _, name := range []string{"cleaner", "cleaner-2", "cleaner-3", "loader", "loader-2", "scorer", "scorer-2"} {
		if shares[name] == 0 {
			t.Errorf("%s processed no records (records in per process: %v)", name, shares)
		}
	}
	if diff := cmp.Diff(one, scaled, cmp.AllowUnexported(scaledOutcome{})); diff != "" {
		t.Errorf("the scaled stack's outcome differs from one of each (-one +scaled):\n%s", diff)
	}
}

// scaledOutcome is what a run of the whole pipeline ends with.
type scaledOutcome struct {
	Raw, Clean, DLQ, Persisted, Scored int
	DeadLetters                        map[string]int // "stage: reason" → dead letters
	UserRows                           int
	Users                              string // digest of the users table, every column but the clocks
	predictions                        map[string]string
}

func (o scaledOutcome) String() string {
	return fmt.Sprintf("raw %d, clean %d, dlq %d, persisted %d, scored %d, %d users, %d predictions",
		o.Raw, o.Clean, o.DLQ, o.Persisted, o.Scored, o.UserRows, len(o.predictions))
}

// runScaled runs the users file waiting in inbox through a fresh stack
// with sc's processes on topics of six partitions. It returns the outcome
// and how many records each process of the cleaner, the loader and the
// scorer took in.
func runScaled(t *testing.T, inbox, models string, sc scale) (scaledOutcome, map[string]int) {
	t.Helper()
	var out scaledOutcome
	shares := map[string]int{}
	env := []string{
		"EXTRACTOR_FILES=users=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms",
		"SCORER_MODEL_DIR=" + models, "SCORER_MODEL_POLL=100ms",
	}
	withStackOf(t, devFlags{partitions: 6, scale: sc}, env, func(ctx context.Context, p *pipeline, d *devStack) {
		p.awaitGroups(ctx, sc)
		file := filepath.Join(inbox, "users.csv")
		if err := os.Rename(filepath.Join(inbox, ".users.csv"), file); err != nil {
			t.Fatal(err)
		}
		// The file goes back into hiding for the next run, mtime and all.
		defer func() {
			if err := os.Rename(file, filepath.Join(inbox, ".users.csv")); err != nil {
				t.Error(err)
			}
		}()

		raw := p.drained(ctx)
		dr := demoRun{ds: generated(t), eps: p.eps, models: models, runID: "dev", scorer: filepath.Join(d.flags.dir, "bin", "scorer"), progress: t.Logf}
		if _, err := dr.model(ctx); err != nil {
			t.Fatal(err)
		}
		persisted := p.read(ctx, "persisted.users", nil)
		p.waitCommitted(ctx, "datamill-scorer-users", "persisted.users", persisted.next)

		o := p.check(ctx, raw)
		out.Raw, out.Persisted, out.UserRows, out.Users = raw.records, o.Persisted, o.Rows, o.Table
		out.Clean = p.read(ctx, "clean.users", nil).records
		out.Scored = p.read(ctx, "scored.users", nil).records
		out.DeadLetters = map[string]int{}
		out.DLQ = p.read(ctx, "dlq.users", func(r *kgo.Record) {
			out.DeadLetters[kafka.Header(r, stage.HeaderStage)+": "+kafka.Header(r, stage.HeaderReason)]++
		}).records
		out.predictions = p.predictions(ctx)

		for name, addr := range p.svc {
			service, _, _ := strings.Cut(name, "-")
			if !slices.Contains(scalable(), service) {
				continue
			}
			c, err := scrape(ctx, addr, service)
			if err != nil {
				t.Fatal(err)
			}
			shares[name] = c.in
		}
	})
	return out, shares
}

// awaitGroups waits until the group of every stage sc runs in more than one
// process has them all as members, each with partitions of its own, so
// that no process joins after the records have gone by.
func (p *pipeline) awaitGroups(ctx context.Context, sc scale) {
	p.t.Helper()
	cl, err := kafka.NewClient(p.kcfg, zap.NewNop())
	if err != nil {
		p.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(time.Minute)
	for service, n := range sc {
		if n < 2 {
			continue
		}
		group := "datamill-" + service + "-users"
		for {
			state, ok := groupSpread(ctx, adm, group, n)
			if ok {
				break
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("group %s did not give partitions to its %d processes within a minute: %s", group, n, state)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// groupSpread reports whether group is stable with n members that each
// have partitions, and describes what it is.
func groupSpread(ctx context.Context, adm *kadm.Client, group string, n int) (string, bool) {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return err.Error(), false
	}
	g := described[group]
	if g.Err != nil {
		return g.Err.Error(), false
	}
	var parts []string
	spread := g.State == "Stable" && len(g.Members) == n
	for _, m := range g.Members {
		assigned := 0
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, topic := range a.Topics {
				assigned += len(topic.Partitions)
			}
		}
		spread = spread && assigned > 0
		parts = append(parts, strconv.Itoa(assigned))
	}
	return fmt.Sprintf("%s, partitions per member %v", g.State, parts), spread
}

// predictions reads the predictions table: event id → user, prediction,
// probability and model version.
func (p *pipeline) predictions(ctx context.Context) map[string]string {
	p.t.Helper()
	conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `select event_id, user_id, prediction, probability, model_version from predictions`)
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[string]string{}
	var event, version string
	var user int64
	var prediction int
	var probability float64
	_, err = pgx.ForEachRow(rows, []any{&event, &user, &prediction, &probability, &version}, func() error {
		out[event] = fmt.Sprintf("%d %d %s %s", user, prediction, strconv.FormatFloat(probability, 'g', -1, 64), version)
		return nil
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}
