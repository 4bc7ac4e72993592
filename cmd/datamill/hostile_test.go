package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/retry"
)

// hostileLoad is what the clients of TestHostileInputWhileStagesAreKilled
// sent and what each of them heard.
type hostileLoad struct {
	mu sync.Mutex
	// want is the age each valid user must end with: the newest content
	// its client sent.
	want map[int]int
	// refusedIDs are ids that only ever came in records a client saw
	// refused: none of them may reach the table.
	refusedIDs []int
	// deadInFiles counts the records of the extractor's files that must
	// end as dead letters, by the stage that must reject them.
	deadInFiles map[string]int
	errs        []string
}

func (h *hostileLoad) sent(ages map[int]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	maps.Copy(h.want, ages)
}

func (h *hostileLoad) refused(ids ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refusedIDs = append(h.refusedIDs, ids...)
}

func (h *hostileLoad) errorf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs = append(h.errs, fmt.Sprintf(format, args...))
}

// usersCSV is a CSV of users with the given ids, all of age age.
func usersCSV(from, to, age int) string {
	var b strings.Builder
	b.WriteString("id,age,country,account_status,signup_date,last_login,monthly_spend\n")
	for id := from; id <= to; id++ {
		fmt.Fprintf(&b, "%d,%d,FR,active,2023-01-%02d,2024-06-01,%d.50\n", id, age, 1+id%28, id%90)
	}
	return b.String()
}

// usersNDJSON is NDJSON of users with the given ids, all of age age.
func usersNDJSON(from, to, age int) string {
	var b strings.Builder
	for id := from; id <= to; id++ {
		fmt.Fprintf(&b, `{"id":"%d","age":"%d","country":"DE","account_status":"active","signup_date":"2023-02-01"}`+"\n", id, age)
	}
	return b.String()
}

func agesOf(from, to, age int) map[int]int {
	m := map[int]int{}
	for id := from; id <= to; id++ {
		m[id] = age
	}
	return m
}

// postStatus posts body to the extractor's ingest endpoint and returns the
// status and the answer.
func postStatus(ctx context.Context, addr, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/datasets/users/events", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// writeAtomically writes a file of the extractor's inbox the way a
// well-behaved producer does: under a dot name, then renamed.
func writeAtomically(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Hostile clients on every way in at once — HTTP ingest, `datamill
// produce` and the extractor's files — send valid records, re-sends of
// older content, records without a key, records larger than the broker
// takes, JSON with colliding keys and trailing garbage, while the cleaner
// and the loader are killed with SIGKILL. Afterwards every record is
// accounted for: each valid user's row holds the newest content its client
// sent, each bad record of a file is a dead letter with a reason, every
// record a client saw refused is nowhere; every row has its prediction,
// counts reconcile and every stage is up.
func TestHostileInputWhileStagesAreKilled(t *testing.T) {
	inbox := t.TempDir()
	models := t.TempDir()
	big := strings.Repeat("x", 2<<20)
	load := &hostileLoad{want: map[int]int{}, deadInFiles: map[string]int{}}

	withStack(t, []string{
		"EXTRACTOR_FILES=users=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms",
		"SCORER_MODEL_DIR=" + models, "SCORER_MODEL_POLL=100ms",
	}, func(ctx context.Context, p *pipeline, d *devStack) {
		if err := trainModel(ctx, filepath.Join(d.flags.dir, "bin", "scorer"), generated(t), t.TempDir(), models, 7, t.Logf); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
		defer cancel()
		var wg sync.WaitGroup

		// HTTP ingest: ids 1–3000, each sent 31 → 32 → 31 in turn, among
		// bodies that must be refused whole.
		started := make(chan struct{})
		wg.Go(func() {
			post := func(body string, want int, ids ...int) {
				status, answer, err := postStatus(ctx, p.ingest, body)
				switch {
				case err != nil:
					load.errorf("POST: %v", err)
				case want == http.StatusAccepted && status != want:
					load.errorf("POST of valid records: %d %s, want 202", status, answer)
				case want != http.StatusAccepted && (status < 400 || status >= 500):
					load.errorf("POST of a bad body: %d %s, want a 4xx refusal", status, answer)
				case want != http.StatusAccepted:
					load.refused(ids...)
				}
			}
			for round, age := range []int{31, 32, 31} {
				for from := 1; from <= 3000; from += 100 {
					post(usersNDJSON(from, from+99, age), http.StatusAccepted)
					load.sent(agesOf(from, from+99, age))
				}
				if round == 0 {
					close(started)
				}
				// Refused whole: each body holds good records of
				// ids 9000+ beside the bad one.
				base := 9000 + 10*round
				post(usersNDJSON(base, base+2, 40)+`{"age":"50","country":"FR"}`+"\n", http.StatusBadRequest, base, base+1, base+2)
				post(usersNDJSON(base+3, base+3, 40)+fmt.Sprintf(`{"id":"%d","ID":"%d","age":"20"}`, base+4, base+5)+"\n", http.StatusBadRequest, base+3, base+4, base+5)
				post(fmt.Sprintf(`{"id":"%d","age":"20"}{"id":"%d","age":"21"}`, base+6, base+7)+"\n", http.StatusBadRequest, base+6, base+7)
				post(fmt.Sprintf(`{"id":"%d","age":"20","city":"%s"}`, base+8, big)+"\n", http.StatusRequestEntityTooLarge, base+8)
			}
		})

		// datamill produce: ids 20001–22000 at 40, then 41, then 40 again
		// in a new file; and files refused whole.
		wg.Go(func() {
			dir := t.TempDir()
			run := func(name, content string) error {
				file := filepath.Join(dir, name)
				if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
					return err
				}
				var out strings.Builder
				env := stackEnv(p.t, p.eps)
				if err := run(ctx, []string{"produce", "users", file}, env, &out, &out); err != nil {
					return fmt.Errorf("%w: %s", err, out.String())
				}
				return nil
			}
			for i, age := range []int{40, 41, 40} {
				if err := run(fmt.Sprintf("good-%d.csv", i), usersCSV(20001, 22000, age)); err != nil {
					load.errorf("produce a valid file: %v", err)
					continue
				}
				load.sent(agesOf(20001, 22000, age))
			}
			bad := map[string]string{
				"keyless.csv":   usersCSV(29001, 29010, 40) + ",33,FR,active,2023-01-01,2024-06-01,1.50\n",
				"oversized.csv": usersCSV(29011, 29020, 40) + "29021,33,FR,active,2023-01-01,2024-06-01," + big + "\n",
				"colliding.ndjson": usersNDJSON(29031, 29035, 40) +
					`{"id":"29036","Id":"29037","age":"20"}` + "\n",
				"trailing.ndjson": usersNDJSON(29041, 29045, 40) + `{"id":"29046","age":"20"} garbage` + "\n",
			}
			for _, name := range slices.Sorted(maps.Keys(bad)) {
				if err := run(name, bad[name]); err == nil {
					load.errorf("produce %s: published, want it refused whole", name)
				}
			}
			for id := 29001; id <= 29046; id++ {
				load.refused(id)
			}
		})

		// The extractor's files: users.csv, ids 10001–13000, rewritten
		// 50 → 51 → 50, each version once the extractor has read the last;
		// and a file whose bad records are dead letters.
		wg.Go(func() {
			users := filepath.Join(inbox, "users.csv")
			for _, age := range []int{50, 51, 50} {
				if err := writeAtomically(users, usersCSV(10001, 13000, age)); err != nil {
					load.errorf("write %s: %v", users, err)
					return
				}
				load.sent(agesOf(10001, 13000, age))
				if !awaitAges(ctx, p.eps["DATABASE_URL"], 10001, 13000, age) {
					load.errorf("users.csv at age %d never reached the table", age)
					return
				}
			}
		})
		var bad strings.Builder
		bad.WriteString(usersNDJSON(14001, 14050, 60))
		for range 300 {
			bad.WriteString(`{"age":"33","country":"FR"}` + "\n") // no id: the cleaner's
		}
		bad.WriteString(fmt.Sprintf(`{"id":"14060","age":"20","city":"%s"}`, big) + "\n")
		bad.WriteString(`{"id":"14061","age":"20"}{"id":"14062","age":"21"}` + "\n")
		bad.WriteString(`{"id":"14063","ID":"14064","age":"20"}` + "\n")
		bad.WriteString(usersNDJSON(14051, 14059, 60))
		if err := writeAtomically(filepath.Join(inbox, "bad.ndjson"), bad.String()); err != nil {
			t.Fatal(err)
		}
		load.sent(agesOf(14001, 14059, 60))
		load.refused(14060, 14061, 14062, 14063, 14064)
		load.deadInFiles["cleaner"] = 300
		load.deadInFiles["extractor"] = 3

		// Meanwhile, from the first round of HTTP requests on, the cleaner
		// and the loader are killed, twice each.
		<-started
		for _, name := range []string{"cleaner", "loader", "cleaner", "loader"} {
			time.Sleep(400 * time.Millisecond)
			c, err := scrape(ctx, p.svc[name], name)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("killing the %s after %d records in", name, c.in)
			if err := d.restart(ctx, name); err != nil {
				t.Fatalf("restart %s: %v", name, err)
			}
		}
		wg.Wait()
		for _, e := range load.errs {
			t.Error(e)
		}

		o, err := settle(ctx, p.kcfg, generated(t), p.eps, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("outcome: %v", o)
		conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))

		// Every valid user holds the newest content its client sent;
		// nothing a client saw refused is there.
		rows, err := conn.Query(ctx, `select id, coalesce(age, -1)::bigint from users`)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]int{}
		var id, age int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &age}, func() error { got[int(id)] = int(age); return nil }); err != nil {
			t.Fatal(err)
		}
		wrong := 0
		for id, want := range load.want {
			if got[id] != want && wrong < 10 {
				t.Errorf("user %d: age %d in the table, want %d, the newest sent", id, got[id], want)
				wrong++
			}
		}
		for id := range got {
			if _, ok := load.want[id]; !ok {
				t.Errorf("user %d is in the table, but no valid record of it was accepted", id)
			}
		}
		for _, id := range load.refusedIDs {
			if _, ok := got[id]; ok {
				t.Errorf("user %d is in the table, but every record of it was refused", id)
			}
		}
		if len(got) != len(load.want) {
			t.Errorf("%d rows, want %d", len(got), len(load.want))
		}

		// Each bad record of the files is one dead letter with a reason.
		deadBy := map[string]int{}
		for reason, n := range o.DeadLetters {
			stage, why, _ := strings.Cut(reason, ": ")
			if strings.TrimSpace(why) == "" {
				t.Errorf("%d dead letters of the %s without a reason", n, stage)
			}
			deadBy[stage] += n
		}
		if !maps.Equal(deadBy, load.deadInFiles) {
			t.Errorf("dead letters by stage %v (%v), want %v", deadBy, o.DeadLetters, load.deadInFiles)
		}

		// Every row has its prediction; every persisted event was scored
		// once; counts reconcile.
		var unscored int
		if err := conn.QueryRow(ctx, `select count(*) from users u
			where not exists (select 1 from predictions p where p.event_id = u.event_id)`).Scan(&unscored); err != nil {
			t.Fatal(err)
		}
		if unscored > 0 {
			t.Errorf("%d rows have no prediction of their event", unscored)
		}
		if o.Persisted != o.PersistedEvents || o.Scored != o.ScoredEvents || o.ScoredEvents != o.PersistedEvents {
			t.Errorf("persisted %d records of %d events, scored %d of %d: want one of each per event", o.Persisted, o.PersistedEvents, o.Scored, o.ScoredEvents)
		}
		cleaner := p.scrapeAll(ctx, "cleaner")
		if o.Raw != o.Clean+deadBy["cleaner"]+cleaner.duplicates {
			t.Errorf("raw %d != clean %d + the cleaner's dead letters %d + duplicates %d", o.Raw, o.Clean, deadBy["cleaner"], cleaner.duplicates)
		}

		// No stage stopped.
		for name, addr := range p.svc {
			wantUp(t, name, addr)
		}
	})
}

// awaitAges waits until users from–to are all in the table at age, and
// reports whether they got there within two minutes.
func awaitAges(ctx context.Context, dbURL string, from, to, age int) bool {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return false
	}
	defer conn.Close(context.WithoutCancel(ctx))
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var n int
		err := conn.QueryRow(ctx, `select count(*) from users where id between $1 and $2 and age = $3`, from, to, age).Scan(&n)
		if err == nil && n == to-from+1 {
			return true
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return false
		}
	}
	return false
}
