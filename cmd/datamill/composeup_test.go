//go:build compose

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestComposeUp runs docker-compose.yml for real: the images built (the
// datamill ones from ./Dockerfile, the others the stand-ins of
// deploy/ci, named by deploy/ci/compose.ci.yml), the stack started with
// the secrets `datamill secrets` makes, then used as a user would:
// users published through the extractor's HTTP ingest and a file in its
// watched volume, the model trained with `docker compose run --rm scorer
// train`, scored.users read from the host with `datamill tail` and kcat,
// rows, predictions and eco samples read in PostgreSQL as the reader;
// then scaled (every replica takes part, the results still match),
// a loader crashed mid-stream (its restart policy brings it back and every
// event is scored once), Prometheus's targets all up, and `down -v`
// leaving nothing behind. make compose-test runs it, after
// scripts/compose/engine.sh and images.sh.
func TestComposeUp(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := newComposeStack(t, root)
	s.step("build the images", func() { s.must("build", "--quiet") })
	s.step("up", func() { s.must("up", "--detach", "--wait", "--wait-timeout", "300") })

	// Events: users with ids of their own per batch, so that every batch
	// adds its rows.
	var want composeCounts
	s.step("ingest over HTTP and through the inbox volume", func() {
		s.ingest(s.users(1, 400, 0))
		s.dropFile("users-b.csv", s.users(2, 300, 10_000))
		want.add(400 + 300)
		s.waitRows(want, false)
	})
	s.step("train: docker compose run --rm scorer train", func() {
		// The scorer swaps in the model it finds in the models volume.
		if out := s.must("run", "--rm", "--no-deps", "scorer", "train"); !strings.Contains(out, "/var/lib/datamill/models/churn-") {
			t.Errorf("scorer train saved no model in the models volume:\n%s", out)
		}
	})
	s.step("a prediction for every event", func() { s.waitRows(want, true) })
	s.step("read scored.users from the host", func() {
		if n := s.tail("scored.users"); n != want.events {
			t.Errorf("datamill tail scored.users: %d records, want %d", n, want.events)
		}
		s.checkTopics(want)
	})
	s.step("every stage reports its energy", func() {
		for _, stage := range []string{"extractor", "cleaner", "loader", "scorer", "lake", "ecometer"} {
			if n := s.count("select count(*) from eco_samples where stage = $1", stage); n == 0 {
				t.Errorf("no eco sample of the %s in PostgreSQL", stage)
			}
		}
	})

	replicas := map[string]int{"cleaner": 3, "loader": 2, "scorer": 2}
	s.step("scale: cleaner=3 loader=2 scorer=2", func() {
		s.must("up", "--detach", "--wait", "--wait-timeout", "300",
			"--scale", "cleaner=3", "--scale", "loader=2", "--scale", "scorer=2")
		s.waitTargets(replicas)
		before := s.recordsIn()
		s.ingest(s.users(3, 1200, 20_000))
		want.add(1200)
		s.waitRows(want, true)
		s.checkTopics(want)
		s.waitEveryReplicaWorked(replicas, before)
	})

	s.step("crash a loader mid-stream", func() {
		loaders := s.containers("loader")
		if len(loaders) != 2 {
			t.Fatalf("loader containers %v, want 2", loaders)
		}
		victim := loaders[0]
		restarts := s.restartCount(victim)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ingest(s.users(4, 2000, 30_000))
		}()
		time.Sleep(2 * time.Second)
		s.crash(victim)
		wg.Wait()
		want.add(2000)
		s.waitRestarted(victim, restarts)
		s.waitRows(want, true)
		s.checkTopics(want)
	})

	s.step("Prometheus scrapes every service", func() { s.waitTargets(replicas) })

	s.step("down -v", func() {
		s.must("down", "--volumes", "--remove-orphans", "--timeout", "30")
		for _, kind := range []string{"container", "volume", "network"} {
			args := []string{kind, "ls", "--quiet", "--filter", "label=com.docker.compose.project=" + s.project}
			if kind == "container" {
				args = []string{"ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=" + s.project}
			}
			if out := strings.TrimSpace(s.docker(args...)); out != "" {
				t.Errorf("after down -v, %ss of %s remain: %s", kind, s.project, out)
			}
		}
	})
}

// composeCounts is what PostgreSQL and the topics should hold: one users
// row per distinct id, one prediction and one scored record per event.
type composeCounts struct{ users, events int }

func (c *composeCounts) add(n int) { c.users += n; c.events += n }

// composeStack is the project make compose-test runs: docker-compose.yml
// with deploy/ci/compose.ci.yml, under a project name of its own, its
// host ports free ones.
type composeStack struct {
	t       *testing.T
	root    string
	project string
	envFile string
	secrets string
	ports   map[string]string
	start   time.Time
}

func newComposeStack(t *testing.T, root string) *composeStack {
	t.Helper()
	for _, tool := range []string{"docker", "kcat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/compose/engine.sh (make compose-test does)", tool)
		}
	}
	s := &composeStack{t: t, root: root, project: "datamill-ci", secrets: filepath.Join(root, "secrets"), start: time.Now(), ports: map[string]string{}}
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
		t.Fatalf("docker compose: %v %s (scripts/compose/engine.sh installs it)", err, out)
	}
	// The secrets compose reads (./secrets, kept when they exist).
	var out strings.Builder
	if err := run(t.Context(), []string{"secrets", "--dir", s.secrets}, os.Environ(), &out, &out); err != nil {
		t.Fatalf("datamill secrets: %v\n%s", err, out.String())
	}
	// The host's ports: free ones, so that a stack already running (or
	// any server) does not clash; no UI profile.
	env := "COMPOSE_PROFILES=\n"
	for _, name := range []string{"KAFKA_EXTERNAL_PORT", "SCHEMA_REGISTRY_PORT", "POSTGRES_PORT", "PROMETHEUS_PORT", "MINIO_PORT", "MINIO_CONSOLE_PORT"} {
		s.ports[name] = freePort(t)
		env += name + "=" + s.ports[name] + "\n"
	}
	s.envFile = filepath.Join(t.TempDir(), "compose.env")
	if err := os.WriteFile(s.envFile, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.compose("ps", "--all")
			t.Logf("docker compose ps --all:\n%s", out)
			out, _ = s.compose("logs", "--no-color", "--tail", "60")
			t.Logf("docker compose logs --tail 60:\n%s", out)
		}
		if out, err := s.compose("down", "--volumes", "--remove-orphans", "--timeout", "10"); err != nil {
			t.Logf("docker compose down: %v\n%s", err, out)
		}
	})
	return s
}

// step runs one part of the test and logs how long it took.
func (s *composeStack) step(name string, f func()) {
	s.t.Helper()
	begin := time.Now()
	s.t.Logf("%s ...", name)
	f()
	s.t.Logf("%s: %.1f s (%.0f s in all)", name, time.Since(begin).Seconds(), time.Since(s.start).Seconds())
}

// compose runs docker compose on the project.
func (s *composeStack) compose(args ...string) (string, error) {
	full := append([]string{
		"compose", "--project-name", s.project, "--project-directory", s.root,
		"--file", filepath.Join(s.root, "docker-compose.yml"), "--file", filepath.Join(s.root, "deploy/ci/compose.ci.yml"),
		"--env-file", s.envFile,
	}, args...)
	// Not the test's context: the cleanup's down runs after it ends.
	cmd := exec.Command("docker", full...) // #nosec G204 -- the test's own arguments
	// The profiles and ports are the env file's, not the caller's.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ours := s.ports[name]; !ours && name != "COMPOSE_PROFILES" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Dir = s.root
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *composeStack) must(args ...string) string {
	s.t.Helper()
	out, err := s.compose(args...)
	if err != nil {
		s.t.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *composeStack) docker(args ...string) string {
	s.t.Helper()
	out, err := exec.CommandContext(s.t.Context(), "docker", args...).CombinedOutput() // #nosec G204 -- the test's own arguments
	if err != nil {
		s.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// users generates n users (no dirt) with `datamill gen`, their ids moved
// up by offset.
func (s *composeStack) users(seed, n, offset int) []map[string]string {
	s.t.Helper()
	var out, errs bytes.Buffer
	args := []string{"gen", "users", "--rows", strconv.Itoa(n), "--seed", strconv.Itoa(seed), "--format", "json"}
	if err := run(s.t.Context(), args, os.Environ(), &out, &errs); err != nil {
		s.t.Fatalf("datamill gen: %v\n%s", err, errs.String())
	}
	var rows []map[string]string
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		s.t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range rows {
		id, err := strconv.Atoi(r["id"])
		if err != nil {
			s.t.Fatalf("gen: id %q: %v", r["id"], err)
		}
		r["id"] = strconv.Itoa(id + offset)
		ids[r["id"]] = true
	}
	if len(rows) != n || len(ids) != n {
		s.t.Fatalf("gen users --rows %d: %d rows, %d ids", n, len(rows), len(ids))
	}
	return rows
}

// ingest posts rows to the extractor's HTTP ingest, 100 a request, with
// the producer token `datamill secrets` made.
func (s *composeStack) ingest(rows []map[string]string) {
	s.t.Helper()
	addr := strings.TrimSpace(s.must("port", "extractor", "8080"))
	token := s.secret("extractor_ingest_token")
	for start := 0; start < len(rows); start += 100 {
		body, err := json.Marshal(rows[start:min(start+100, len(rows))])
		if err != nil {
			s.t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(s.t.Context(), http.MethodPost, "http://"+addr+"/v1/datasets/users/events", bytes.NewReader(body))
		if err != nil {
			s.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.t.Fatalf("ingest: %v", err)
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf(`{"accepted":%d}`, min(100, len(rows)-start)); resp.StatusCode != http.StatusAccepted || strings.TrimSpace(string(reply)) != want {
			s.t.Fatalf("ingest: %s %s, want 202 %s", resp.Status, reply, want)
		}
	}
}

// dropFile writes rows as a CSV file into the extractor's inbox volume.
func (s *composeStack) dropFile(name string, rows []map[string]string) {
	s.t.Helper()
	columns := []string{"id", "age", "gender", "country", "city", "email", "signup_date", "last_login", "account_status", "monthly_spend"}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(columns)
	for _, r := range rows {
		record := make([]string, len(columns))
		for i, c := range columns {
			record[i] = r[c]
		}
		_ = w.Write(record)
	}
	w.Flush()
	file := filepath.Join(s.t.TempDir(), name)
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil { // #nosec G306 -- test data, read by the container's user
		s.t.Fatal(err)
	}
	s.must("cp", file, "extractor:/var/lib/datamill/inbox/"+name)
}

func (s *composeStack) secret(name string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.secrets, name)) // #nosec G304 -- the stack's secrets
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// count runs a count query in PostgreSQL from the host, as the read-only
// datamill_reader over TLS checked against the stack's CA.
func (s *composeStack) count(query string, args ...any) int {
	s.t.Helper()
	u := url.URL{
		Scheme: "postgres", User: url.UserPassword("datamill_reader", s.secret("db_reader_password")),
		Host: "127.0.0.1:" + s.ports["POSTGRES_PORT"], Path: "/datamill",
		RawQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {filepath.Join(s.secrets, "ca.pem")}}.Encode(),
	}
	ctx, cancel := context.WithTimeout(s.t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		s.t.Fatalf("PostgreSQL as datamill_reader: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitRows waits until PostgreSQL holds want's users and, with
// predictions, one prediction per event.
func (s *composeStack) waitRows(want composeCounts, predictions bool) {
	s.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		users := s.count("select count(*) from users")
		scored := s.count("select count(*) from predictions")
		done := users == want.users && (!predictions || scored == want.events)
		if done {
			return
		}
		if users > want.users || scored > want.events {
			s.t.Fatalf("PostgreSQL holds %d users and %d predictions, more than the %d users and %d events sent", users, scored, want.users, want.events)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after 4 min PostgreSQL holds %d users and %d predictions, want %d and %d", users, scored, want.users, want.events)
		}
		time.Sleep(2 * time.Second)
	}
}

// kafkaEnv is the admin's client settings on the host's listener, as
// `datamill secrets` prints them.
func (s *composeStack) kafkaEnv() []string {
	return append(os.Environ(),
		"KAFKA_BROKERS=localhost:"+s.ports["KAFKA_EXTERNAL_PORT"],
		"KAFKA_TLS=true", "KAFKA_TLS_CA_FILE="+filepath.Join(s.secrets, "ca.pem"),
		"KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "KAFKA_SASL_USERNAME=admin",
		"KAFKA_SASL_PASSWORD_FILE="+filepath.Join(s.secrets, "kafka_user_admin_password"),
		"SCHEMA_REGISTRY_URL=http://127.0.0.1:"+s.ports["SCHEMA_REGISTRY_PORT"],
		"SCHEMA_REGISTRY_USERNAME=datamill",
		"SCHEMA_REGISTRY_PASSWORD_FILE="+filepath.Join(s.secrets, "schema_registry_password"))
}

// tail reads a topic with `datamill tail` from the host and counts its
// records, each a JSON line with a value decoded through the registry.
func (s *composeStack) tail(topic string) int {
	s.t.Helper()
	var out, errs bytes.Buffer
	if err := run(s.t.Context(), []string{"tail", topic, "--from-beginning", "--idle", "5s"}, s.kafkaEnv(), &out, &errs); err != nil {
		s.t.Fatalf("datamill tail %s: %v\n%s", topic, err, errs.String())
	}
	n := 0
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Value map[string]any `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Value == nil {
			s.t.Fatalf("datamill tail %s: line %q: %v, want a record with a decoded value", topic, sc.Text(), err)
		}
		n++
	}
	return n
}

// kcat counts a topic's committed records with kcat from the host, signed
// in as the admin, its password in a 0600 configuration file. kcat runs on
// the librdkafka of scripts/compose/librdkafka.sh: Debian's (2.0.2) cannot
// sign in to Kafka 4 with SCRAM.
func (s *composeStack) kcat(topic string) int {
	s.t.Helper()
	lib, err := exec.Command(filepath.Join(s.root, "scripts/compose/librdkafka.sh")).Output() // #nosec G204 -- the checkout's own script
	if err != nil {
		s.t.Fatalf("scripts/compose/librdkafka.sh: %v %s", err, exitStderr(err))
	}
	conf := filepath.Join(s.t.TempDir(), "kcat.conf")
	body := fmt.Sprintf("security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-512\nsasl.username=admin\nsasl.password=%s\nssl.ca.location=%s\n",
		s.secret("kafka_user_admin_password"), filepath.Join(s.secrets, "ca.pem"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.CommandContext(s.t.Context(), "kcat", "-F", conf, "-b", "localhost:"+s.ports["KAFKA_EXTERNAL_PORT"], // #nosec G204 -- the test's own arguments
		"-C", "-t", topic, "-o", "beginning", "-e", "-q", "-X", "isolation.level=read_committed", "-f", "%p %o\n")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+strings.TrimSpace(string(lib)))
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("kcat %s: %v %s", topic, err, exitStderr(err))
	}
	return strings.Count(string(out), "\n")
}

// checkTopics compares the scored and dead-letter topics, read with kcat,
// with what was sent: one scored record per event, no dead letter.
func (s *composeStack) checkTopics(want composeCounts) {
	s.t.Helper()
	if n := s.kcat("scored.users"); n != want.events {
		s.t.Errorf("kcat scored.users: %d records, want %d", n, want.events)
	}
	if n := s.kcat("dlq.users"); n != 0 {
		s.t.Errorf("kcat dlq.users: %d dead letters of clean users, want none", n)
	}
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// prometheus asks the stack's Prometheus's HTTP API, with its basic auth.
func (s *composeStack) prometheus(path string, v any) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), http.MethodGet, "http://127.0.0.1:"+s.ports["PROMETHEUS_PORT"]+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.SetBasicAuth("prometheus", s.secret("prometheus_password"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("Prometheus: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("Prometheus %s: %s %s", path, resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		s.t.Fatal(err)
	}
}

// waitTargets waits until Prometheus's targets are every service's
// replicas, each up.
func (s *composeStack) waitTargets(replicas map[string]int) {
	s.t.Helper()
	want := map[string]int{"extractor": 1, "lake": 1, "ecometer": 1, "prometheus": 1}
	for job, n := range replicas {
		want[job] = n
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		var targets struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		s.prometheus("/api/v1/targets?state=active", &targets)
		up, seen := map[string]int{}, []string{}
		for _, tg := range targets.Data.ActiveTargets {
			seen = append(seen, fmt.Sprintf("%s %s %s %s", tg.Labels["job"], tg.Labels["instance"], tg.Health, tg.LastError))
			if tg.Health == "up" {
				up[tg.Labels["job"]]++
			}
		}
		if fmt.Sprint(up) == fmt.Sprint(want) && len(seen) == sum(want) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("Prometheus's targets after 90 s, want %v up:\n%s", want, strings.Join(seen, "\n"))
		}
		time.Sleep(2 * time.Second)
	}
}

// recordsIn is datamill_stage_records_in_total of every replica, as
// Prometheus scraped it, by job and instance.
func (s *composeStack) recordsIn() map[string]float64 {
	s.t.Helper()
	var res struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	s.prometheus("/api/v1/query?query="+url.QueryEscape("sum by (job, instance) (datamill_stage_records_in_total)"), &res)
	got := map[string]float64{}
	for _, r := range res.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
		got[r.Metric["job"]+" "+r.Metric["instance"]] = v
	}
	return got
}

// waitEveryReplicaWorked waits until every replica of the scaled stages
// consumed records since before, as Prometheus scrapes them.
func (s *composeStack) waitEveryReplicaWorked(replicas map[string]int, before map[string]float64) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		after := s.recordsIn()
		worked := map[string]int{}
		for key, v := range after {
			if v > before[key] {
				worked[strings.Fields(key)[0]]++
			}
		}
		ok := true
		for job, n := range replicas {
			ok = ok && worked[job] == n
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("replicas that consumed records since the scale-up: %v, want %v (before %v, after %v)", worked, replicas, before, after)
		}
		time.Sleep(2 * time.Second)
	}
}

// containers lists the ids of a service's containers.
func (s *composeStack) containers(service string) []string {
	s.t.Helper()
	return strings.Fields(s.must("ps", "--quiet", service))
}

func (s *composeStack) inspect(container, format string) string {
	s.t.Helper()
	return strings.TrimSpace(s.docker("inspect", "--format", format, container))
}

func (s *composeStack) restartCount(container string) int {
	s.t.Helper()
	n, err := strconv.Atoi(s.inspect(container, "{{.RestartCount}}"))
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// crash kills a container's program with SIGKILL from the host, as the
// kernel's OOM killer would. (`docker kill` would not do: Docker takes it
// for an operator's stop, which restart policies leave stopped.)
func (s *composeStack) crash(container string) {
	s.t.Helper()
	pid, err := strconv.Atoi(s.inspect(container, "{{.State.Pid}}"))
	if err != nil || pid <= 0 {
		s.t.Fatalf("the pid of %s: %v", container, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatalf("SIGKILL %s (pid %d): %v", container, pid, err)
	}
	s.t.Logf("killed %s (pid %d) with SIGKILL", container[:12], pid)
}

// waitRestarted waits until the restart policy has started the container
// again and its healthcheck passes.
func (s *composeStack) waitRestarted(container string, restarts int) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		state := s.inspect(container, "{{.RestartCount}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}")
		if f := strings.Fields(state); len(f) == 3 && f[0] != strconv.Itoa(restarts) && f[1] == "running" && f[2] == "healthy" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s after 2 min: restarts, status, health = %s; want a restart, running and healthy", container[:12], state)
		}
		time.Sleep(2 * time.Second)
	}
}
