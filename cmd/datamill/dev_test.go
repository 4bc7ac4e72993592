package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/testkit"
)

// devBin is where every test's `datamill dev` builds the services: one
// directory for the whole test run, so that only the first build links and
// the others find the binaries up to date.
var devBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "datamill-dev-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devBin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	return port
}

// devRun is a `datamill dev` running in a test.
type devRun struct {
	endpoints map[string]string
	services  map[string]devService
	done      chan error
	cancel    context.CancelFunc
}

// devService is a process dev printed: its admin address and, for the
// extractor, its ingest address.
type devService struct {
	addr   string
	ingest string
	pid    int
}

// startDev runs `datamill dev` with args on free ports, in an environment
// of the Go toolchain's variables plus env, waits until it prints ready, and
// reads the endpoints and services it printed.
func startDev(t *testing.T, env []string, extra ...string) *devRun {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(devBin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	// Secure as dev is by default: the tests reach the broker as the
	// admin (stackKafka).
	args := append([]string{"dev", "--kafka-port", freePort(t), "--registry-port", freePort(t), "--admin-base-port", "0", "--ingest-port", "0", "--dir", dir}, extra...)
	if testkit.RealBroker() {
		resetRealBroker(t)
		env = append(env, testkit.KafkaEnv(testkit.Kafka(t))...)
	}
	ctx, cancel := context.WithCancel(t.Context())
	d := &devRun{endpoints: map[string]string{}, services: map[string]devService{}, done: make(chan error, 1), cancel: cancel}
	pr, pw := io.Pipe()
	go func() {
		err := run(ctx, args, append(toolchainEnv(), env...), pw, io.Discard)
		pw.CloseWithError(err)
		d.done <- err
	}()
	// "# extractor (pid 1234): http://127.0.0.1:9101/metrics /healthz /readyz; ingest: http://127.0.0.1:9100/v1/…",
	// "# cleaner-2 (pid 1236): …"
	serviceLine := regexp.MustCompile(`^# ([\w-]+) \(pid (\d+)\): http://([^/]+)/metrics [^;]*(?:; ingest: http://([^/]+)/)?`)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if m := serviceLine.FindStringSubmatch(line); m != nil {
				pid, _ := strconv.Atoi(m[2])
				d.services[m[1]] = devService{addr: m[3], ingest: m[4], pid: pid}
				continue
			}
			if line == "ready" {
				close(ready)
				break
			}
			if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(line, " ") {
				d.endpoints[k] = v
			}
		}
		// Keep draining: the services log until they stop.
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case err := <-d.done:
		d.done <- err
		t.Fatalf("datamill dev ended before ready: %v", err)
	case <-time.After(120 * time.Second):
		cancel()
		t.Fatal("datamill dev not ready within 120 s")
	}
	t.Cleanup(func() { _ = d.stop(t) })
	return d
}

// stop is Ctrl-C: it ends run's context and returns run's error.
func (d *devRun) stop(t *testing.T) error {
	t.Helper()
	d.cancel()
	return d.wait(t)
}

// wait returns run's error once it returned.
func (d *devRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("datamill dev did not stop within 60 s")
		return nil
	}
}

// addrs are every address the stack listens on: the broker when dev
// started it, the registry, PostgreSQL when dev started it, and the
// services.
func (d *devRun) addrs(t *testing.T) []string {
	t.Helper()
	var addrs []string
	if !testkit.RealBroker() {
		addrs = append(addrs, d.endpoints["KAFKA_BROKERS"])
	}
	u, err := url.Parse(d.endpoints["SCHEMA_REGISTRY_URL"])
	if err != nil {
		t.Fatal(err)
	}
	addrs = append(addrs, u.Host)
	cfg, err := pgx.ParseConfig(d.endpoints["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	addrs = append(addrs, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	if s3, err := url.Parse(d.endpoints["S3_ENDPOINT"]); err == nil && s3.Host != "" {
		addrs = append(addrs, s3.Host)
	}
	for _, s := range d.services {
		addrs = append(addrs, s.addr)
		if s.ingest != "" {
			addrs = append(addrs, s.ingest)
		}
	}
	return addrs
}

// assertGone fails the test when any of addrs still accepts connections or
// a service process still exists.
func (d *devRun) assertGone(t *testing.T, addrs []string) {
	t.Helper()
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens after dev stopped", addr)
		}
	}
	for name, s := range d.services {
		if err := syscall.Kill(s.pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after dev stopped (kill 0: %v)", name, s.pid, err)
		}
	}
}

func TestDevStartsTheStackAndStopsCleanly(t *testing.T) {
	d := startDev(t, nil)
	for _, k := range []string{"KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "DATABASE_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY_FILE"} {
		if d.endpoints[k] == "" {
			t.Fatalf("dev printed no %s: %v", k, d.endpoints)
		}
	}
	if _, printed := d.endpoints["S3_SECRET_KEY"]; printed {
		t.Errorf("dev printed the S3 secret key; want only the file that holds it")
	}
	// PostgreSQL's password stays in its pgpass file too, and the URL
	// verifies the server's certificate.
	if u, err := url.Parse(d.endpoints["DATABASE_URL"]); err != nil {
		t.Errorf("dev printed DATABASE_URL=%s: %v", d.endpoints["DATABASE_URL"], err)
	} else if _, printed := u.User.Password(); printed || u.Query().Get("sslmode") != "verify-full" || u.Query().Get("passfile") == "" {
		t.Errorf("dev printed DATABASE_URL=%s, want no password, sslmode=verify-full and a passfile", d.endpoints["DATABASE_URL"])
	}
	ctx := t.Context()

	// A Kafka client produces and consumes on the printed broker.
	cl, err := kafka.NewClient(stackKafka(t, d.endpoints), zap.NewNop(), kgo.ConsumeTopics("raw.users"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "raw.users", Key: []byte("k"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce to raw.users: %v", err)
	}
	pollCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if fetches := cl.PollFetches(pollCtx); fetches.NumRecords() != 1 || string(fetches.Records()[0].Value) != "hello" {
		t.Fatalf("consumed %d records (%v), want the one produced", fetches.NumRecords(), fetches.Errors())
	}

	// The registry and PostgreSQL answer.
	checkRegistry(t, d.endpoints["SCHEMA_REGISTRY_URL"])
	checkPostgres(t, d.endpoints["DATABASE_URL"])

	// Every service is ready.
	if len(d.services) != len(serviceNames()) {
		t.Fatalf("dev printed %d services, want %d: %v", len(d.services), len(serviceNames()), d.services)
	}
	for _, name := range serviceNames() {
		s, ok := d.services[name]
		if !ok {
			t.Errorf("dev printed no endpoint for %s", name)
			continue
		}
		wantUp(t, name, s.addr)
	}
	wantAdminApart(t, d.services)

	addrs := d.addrs(t)
	if err := d.stop(t); err != nil {
		t.Fatalf("dev after Ctrl-C: %v", err)
	}
	d.assertGone(t, addrs)
}

// wantAdminApart checks that every process of dev serves its metrics and
// health on loopback, its profiles not at all (ADMIN_PPROF is not set),
// and that the extractor's ingest, on an address of its own, serves none
// of them but takes records.
func wantAdminApart(t *testing.T, services map[string]devService) {
	t.Helper()
	status := func(method, url, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for name, s := range services {
		if host, _, _ := net.SplitHostPort(s.addr); host != "127.0.0.1" {
			t.Errorf("%s: admin address %s, want one on 127.0.0.1", name, s.addr)
		}
		if code := status(http.MethodGet, "http://"+s.addr+"/debug/pprof/", ""); code != http.StatusNotFound {
			t.Errorf("%s: GET /debug/pprof/ on the admin address = %d, want 404 without ADMIN_PPROF", name, code)
		}
		if (s.ingest != "") != (name == "extractor") {
			t.Errorf("%s: ingest address %q, want one for the extractor alone", name, s.ingest)
		}
	}
	ingest := services["extractor"].ingest
	if ingest == "" || ingest == services["extractor"].addr {
		t.Fatalf("extractor: ingest address %q, want one apart from its admin address %s", ingest, services["extractor"].addr)
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/"} {
		if code := status(http.MethodGet, "http://"+ingest+path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s on the ingest address = %d, want 404", path, code)
		}
	}
	if code := status(http.MethodPost, "http://"+ingest+"/v1/datasets/users/events", `{"id":"dev-1"}`); code != http.StatusAccepted {
		t.Errorf("POST on the ingest address = %d, want 202", code)
	}
}

// With --kafka-plaintext the in-process broker is open, and kcat, a
// client of another implementation (librdkafka, which cannot authenticate
// to the in-process broker: see README), produces and consumes on it. On
// the real-broker tier kcat goes through Apache Kafka's SASL_SSL.
func TestDevKafkaPlaintextServesKcat(t *testing.T) {
	d := startDev(t, nil, "--infra-only", "--kafka-plaintext")
	kcfg := stackKafka(t, d.endpoints)
	if !testkit.RealBroker() && (kcfg.TLS || kcfg.SASLMechanism != "") {
		t.Fatalf("dev --kafka-plaintext printed TLS or SASL settings: %v", d.endpoints)
	}
	kcatRoundTrip(t, kcfg)
}

func TestDevInfraOnly(t *testing.T) {
	d := startDev(t, nil, "--infra-only")
	if len(d.services) != 0 {
		t.Errorf("--infra-only started services: %v", d.services)
	}
	checkRegistry(t, d.endpoints["SCHEMA_REGISTRY_URL"])
	checkPostgres(t, d.endpoints["DATABASE_URL"])
	cl, err := kafka.NewClient(stackKafka(t, d.endpoints), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	topics, err := kadm.NewClient(cl).ListTopics(t.Context())
	cl.Close()
	if err != nil || !topics.Has("raw.users") || !topics.Has("dlq.users") {
		t.Errorf("topics = %v, %v; want the users pipeline's", topics.Names(), err)
	}
	// The lake's S3 answers with the printed credentials, its bucket made.
	lcfg, err := lakeConfig(nil, d.endpoints)
	if err != nil {
		t.Fatal(err)
	}
	store, err := lake.OpenStore(t.Context(), lcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Ping(t.Context()); err != nil {
		t.Errorf("the printed S3: %v", err)
	}
	addrs := d.addrs(t)
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	d.assertGone(t, addrs)
}

func TestDevStopsWhenAServiceDies(t *testing.T) {
	d := startDev(t, nil)
	victim := d.services["cleaner"]
	addrs := d.addrs(t)
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := d.wait(t)
	if err == nil || !strings.Contains(err.Error(), "cleaner exited unexpectedly") {
		t.Fatalf("dev after the cleaner died = %v, want an error naming it", err)
	}
	d.assertGone(t, addrs)
}

func TestDevUsesDatabaseURL(t *testing.T) {
	db := testkit.Postgres(t)
	d := startDev(t, []string{"DATABASE_URL=" + db})
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	if got := d.endpoints["DATABASE_URL"]; got != config.RedactURL(db) || password == "" || strings.Contains(got, password) {
		t.Errorf("dev printed DATABASE_URL=%s, want the one it was given without its password, %s", got, config.RedactURL(db))
	}
	for name, s := range d.services {
		wantUp(t, name, s.addr)
	}
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	checkPostgres(t, db) // dev leaves a server it did not start alone
}

func checkRegistry(t *testing.T, registry string) {
	t.Helper()
	resp, err := http.Get(registry + "/subjects")
	if err != nil {
		t.Fatalf("GET %s/subjects: %v", registry, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/subjects = %s, want 200", registry, resp.Status)
	}
}

func checkPostgres(t *testing.T, dbURL string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var one int
	if err := conn.QueryRow(t.Context(), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
}

func TestUsageErrors(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"nope"}, nil, io.Discard, &out); err != errUsage || !strings.Contains(out.String(), `unknown command "nope"`) {
		t.Errorf("run(nope) = %v, %q", err, out.String())
	}
	if err := run(t.Context(), []string{"dev", "--kafka-port", "x"}, nil, io.Discard, io.Discard); err != errUsage {
		t.Errorf("run(dev --kafka-port x) = %v, want a usage error", err)
	}
	out.Reset()
	if err := run(t.Context(), []string{"help"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "dev") {
		t.Errorf("help = %v, %q", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"help", "dev"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "-infra-only") {
		t.Errorf("help dev = %v, %q; want dev's flags", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), nil, nil, io.Discard, &out); err != errUsage || !strings.Contains(out.String(), "commands:") {
		t.Errorf("run() = %v, %q; want a usage error with the usage on stderr", err, out.String())
	}
	if err := run(t.Context(), []string{"dev", "extra"}, nil, io.Discard, io.Discard); err != errUsage {
		t.Errorf("run(dev extra) = %v, want a usage error", err)
	}
}

func TestDevRefusesPartitionsOutOfRange(t *testing.T) {
	for _, n := range []string{"0", "-1", "2147483648"} {
		t.Run(n, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // should it start anyway, it stops at once
			var stderr strings.Builder
			err := run(ctx, []string{"dev", "--partitions", n}, nil, io.Discard, &stderr)
			if err != errUsage || !strings.Contains(stderr.String(), "--partitions "+n+": want 1 to 2147483647") {
				t.Errorf("dev --partitions %s = %v, %q; want a usage error naming the range", n, err, stderr.String())
			}
		})
	}
}

func TestDevReadyTimeoutNamesTheService(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(devBin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	args := []string{"dev", "--kafka-port", freePort(t), "--registry-port", freePort(t), "--admin-base-port", "0", "--ingest-port", "0", "--dir", dir, "--ready-timeout", "1ns"}
	err := run(t.Context(), args, toolchainEnv(), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "extractor not ready") {
		t.Fatalf("dev with no time to get ready = %v, want an error naming the extractor", err)
	}
}

// toolchainEnv is the environment dev needs to build the services.
func toolchainEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "GOCACHE", "GOPATH", "GOMODCACHE", "GOFLAGS", "GOPROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// kcatRoundTrip produces a record with kcat and reads it back. kcat is a
// test dependency (.ci/run installs it): missing, it skips locally and fails
// in CI.
func kcatRoundTrip(t *testing.T, kcfg kafka.Config) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is required in CI (apt-get install kcat)")
		}
		t.Log("kcat not installed: skipping the kcat round trip")
		return
	}
	args := []string{"-b", strings.Join(kcfg.Brokers, ",")}
	if kcfg.TLS {
		args = append(args, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location="+kcfg.TLSCAFile,
			"-X", "sasl.mechanisms="+kcfg.SASLMechanism, "-X", "sasl.username="+kcfg.SASLUsername, "-X", "sasl.password="+kcfg.SASLPassword)
	}
	produce := exec.CommandContext(t.Context(), "kcat", append(args, "-t", "clean.users", "-P", "-k", "k1")...) // #nosec G204 -- the test's own broker settings
	produce.Stdin = strings.NewReader("from-kcat\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v: %s", err, out)
	}
	out, err := exec.CommandContext(t.Context(), "kcat", append(args, "-t", "clean.users", "-C", "-e", "-q", "-o", "beginning")...).Output() // #nosec G204 -- the test's own broker settings
	if err != nil || strings.TrimSpace(string(out)) != "from-kcat" {
		t.Fatalf("kcat consume = %q, %v; want from-kcat", out, err)
	}
}

// TestPipelineFromFileToTable publishes a dirty CSV with `datamill produce`
// into the stack of `datamill dev` and follows it through the cleaner and
// the loader into PostgreSQL.
func TestPipelineFromFileToTable(t *testing.T) {
	d := startDev(t, nil)
	endpoints := d.endpoints
	csv := filepath.Join(t.TempDir(), "users.csv")
	data := "id,age,gender,country,email,signup_date,monthly_spend\n" +
		"1,30,F,FR,ada@example.org,2023-01-02,12.50\n" +
		"2,40,Homme,Deutschland,bob@example.org,02/01/2023,\"€1 234,56\"\n" +
		"0,50,M,IT,nobody@example.org,2023-01-02,1\n" +
		"3,230,x,fra,not-an-email,2023-02-30,-4\n" +
		"1,31,F,FR,ada@example.org,2023-01-02,12.50\n" +
		"2,40,Homme,Deutschland,bob@example.org,02/01/2023,\"€1 234,56\"\n"
	if err := os.WriteFile(csv, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	env := stackEnv(t, endpoints)
	var out strings.Builder
	if err := run(t.Context(), []string{"produce", "users", csv}, env, &out, &out); err != nil {
		t.Fatalf("produce: %v: %s", err, out.String())
	}
	if !strings.Contains(out.String(), "published 6 users records to raw.users") {
		t.Errorf("produce said %q", out.String())
	}
	kcfg := stackKafka(t, endpoints)
	testkit.Consume(t, kcfg, "clean.users", 4) // the exact duplicate of user 2 is dropped
	dead := testkit.Consume(t, kcfg, "dlq.users", 1)
	if r := kafka.Header(dead[0], "datamill.reason"); !strings.HasPrefix(r, "id: out_of_range") {
		t.Errorf("dead letter reason %q, want id: out_of_range", r)
	}

	conn, err := pgx.Connect(t.Context(), endpoints["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	// User 1's re-send (a later line) wins; the exact duplicate of user 2
	// changes nothing; user 3's bad optional values are nulled and flagged.
	want := "1/31/female/FR/12.50/ 2/40/male/DE/1234.56/ 3/-/other/FR/-/{age:out_of_range,email:malformed_email,signup_date:bad_date,monthly_spend:out_of_range}"
	var got string
	deadline := time.Now().Add(30 * time.Second)
	for got != want && time.Now().Before(deadline) {
		rows, err := conn.Query(t.Context(), `select id, coalesce(age::text, '-'), coalesce(gender, '-'), coalesce(country, '-'),
			coalesce(monthly_spend::text, '-'), case when quality_flags = '{}' then '' else quality_flags::text end from users order by id`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var id int
			var age, gender, country, spend, flags string
			err := r.Scan(&id, &age, &gender, &country, &spend, &flags)
			return fmt.Sprintf("%d/%s/%s/%s/%s/%s", id, age, gender, country, spend, flags), err
		})
		if err != nil {
			t.Fatal(err)
		}
		got = strings.Join(lines, " ")
		time.Sleep(100 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("users table:\n got %s\nwant %s", got, want)
	}
	// The loader wrote as its own role, in a table the migration owner
	// created.
	var owner, who string
	if err := conn.QueryRow(t.Context(), `select tableowner, (select string_agg(distinct who, ',') from datamill_batches where stage = 'loader')
		from pg_tables where tablename = 'users'`).Scan(&owner, &who); err != nil || owner != "datamill_owner" || who != "datamill_loader" {
		t.Errorf("users owned by %q, its batches written by %q (%v); want datamill_owner and datamill_loader", owner, who, err)
	}

	// The lake sink archives the six raw records, each once, in objects
	// of the dev stack's S3.
	lcfg, err := lakeConfig(nil, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	store, err := lake.OpenStore(t.Context(), lcfg)
	if err != nil {
		t.Fatal(err)
	}
	var lr lakeReport
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if lr, err = checkLake(t.Context(), store, lcfg.Prefix, "users", kcfg); err == nil && lr.Rows >= 6 {
			break
		}
	}
	if err != nil || lr.Objects == 0 || lr.Rows != 6 || len(lr.Problems) != 0 {
		t.Errorf("the lake of users: %s, problems %v, %v; want the 6 raw records each in one row", lr, lr.Problems, err)
	}
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
}

// wantUp checks that a service of dev is ready, or, for the scorer of a
// stack without a model, up and waiting for one.
func wantUp(t *testing.T, name, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Errorf("%s: GET /readyz: %v", name, err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return
	}
	if name != "scorer" || !strings.Contains(string(body), "waiting for a model") {
		t.Errorf("%s: GET /readyz = %d %s; want 200", name, resp.StatusCode, body)
	}
}

// resetRealBroker deletes the pipeline's topics, its stages' state topics
// and datamill's consumer groups from the real broker of KAFKA_BROKERS, and
// waits until they are gone: its topics outlive a test, and a stack's
// counts and checkpoints must start from nothing.
func resetRealBroker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := resetPipeline(ctx, testkit.Kafka(t), "users"); err != nil {
		t.Fatal(err)
	}
}

func TestScaleFlag(t *testing.T) {
	tests := map[string]struct {
		value   string
		want    scale
		wantErr string
	}{
		"one":               {value: "cleaner=3", want: scale{"cleaner": 3}},
		"several":           {value: "cleaner=3,loader=2, scorer=2", want: scale{"cleaner": 3, "loader": 2, "scorer": 2}},
		"later wins":        {value: "loader=2,loader=4", want: scale{"loader": 4}},
		"one extractor":     {value: "extractor=1", want: scale{"extractor": 1}},
		"unknown service":   {value: "cleaner=2,mixer=2", wantErr: `unknown service "mixer"`},
		"no count":          {value: "cleaner", wantErr: "want name=N"},
		"zero":              {value: "cleaner=0", wantErr: "at least 1"},
		"not a number":      {value: "cleaner=two", wantErr: "at least 1"},
		"two lake sinks":    {value: "lake=2", want: scale{"lake": 2}},
		"two extractors":    {value: "extractor=2", wantErr: "only cleaner, loader, lake, scorer"},
		"two ecometers":     {value: "ecometer=2", wantErr: "only cleaner, loader, lake, scorer"},
		"empty":             {value: "", wantErr: "want name=N"},
		"trailing comma":    {value: "cleaner=2,", wantErr: "want name=N"},
		"negative":          {value: "loader=-1", wantErr: "at least 1"},
		"scorer of several": {value: "scorer=5", want: scale{"scorer": 5}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := scale{}
			err := got.Set(tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set(%q) = %v, want an error containing %q", tt.value, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q) = %v", tt.value, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Set(%q) (-want +got):\n%s", tt.value, diff)
			}
		})
	}
}

// TestDevScalesAService starts two cleaners: both are printed under their
// own names and addresses, ready, and stop with the stack.
func TestDevScalesAService(t *testing.T) {
	d := startDev(t, nil, "--scale", "cleaner=2", "--partitions", "4")
	if len(d.services) != len(serviceNames())+1 {
		t.Fatalf("dev printed %d services, want %d: %v", len(d.services), len(serviceNames())+1, d.services)
	}
	one, two := d.services["cleaner"], d.services["cleaner-2"]
	if one.addr == "" || two.addr == "" || one.addr == two.addr || one.pid == two.pid {
		t.Fatalf("cleaner %+v and cleaner-2 %+v: want two processes at two addresses", one, two)
	}
	for name, s := range d.services {
		wantUp(t, name, s.addr)
	}
	addrs := d.addrs(t)
	if err := d.stop(t); err != nil {
		t.Fatalf("dev after Ctrl-C: %v", err)
	}
	d.assertGone(t, addrs)
}

// TestOwnS3EndpointsOverrideTheShells checks that the lake's configuration
// of a stack with dev's own S3 is that S3's alone, whatever S3_* variables
// the shell holds, and the shell's own S3 otherwise.
func TestOwnS3EndpointsOverrideTheShells(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret_key")
	if err := os.WriteFile(secretFile, []byte("own-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	shell := []string{"PATH=/bin", "S3_ENDPOINT=https://s3.example.com", "S3_SECRET_KEY=stale", "S3_CA_FILE=/nowhere", "S3_PREFIX=archive"}
	own := map[string]string{
		"S3_ENDPOINT": "http://127.0.0.1:9000", "S3_BUCKET": "datamill-lake", "S3_ACCESS_KEY": "OWN", "S3_SECRET_KEY_FILE": secretFile,
	}
	if diff := cmp.Diff([]string{"PATH=/bin", "S3_PREFIX=archive"}, ownS3Environ(shell, true)); diff != "" {
		t.Errorf("ownS3Environ with dev's own S3 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(shell, ownS3Environ(shell, false)); diff != "" {
		t.Errorf("ownS3Environ with the shell's S3 (-want +got):\n%s", diff)
	}
	cfg, err := lakeConfig(ownS3Environ(shell, true), own)
	if err != nil {
		t.Fatalf("lakeConfig: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.Endpoint != own["S3_ENDPOINT"] || cfg.AccessKey != "OWN" || cfg.SecretKey != "own-secret" || cfg.CAFile != "" || cfg.Prefix != "archive" {
		t.Errorf("lakeConfig = %+v; want dev's own S3 under the shell's prefix", cfg)
	}
}
