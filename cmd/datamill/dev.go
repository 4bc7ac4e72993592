package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/progress"
)

// serviceNames are the pipeline's binaries, in the order they start.
func serviceNames() []string {
	return []string{"extractor", "cleaner", "loader", "lake", "scorer", "ecometer"}
}

type devFlags struct {
	infraOnly    bool
	kafkaPort    int
	registryPort int
	pgPort       int
	s3Port       int
	// adminBasePort is the first service's admin port (ADMIN_ADDR), the
	// others following; ingestPort the extractor's (HTTP_ADDR).
	adminBasePort int
	ingestPort    int
	dir           string
	partitions    int
	readyTimeout  time.Duration
	scale         scale
	// secureKafka runs the in-process broker with TLS, SCRAM and ACLs,
	// each service as its own principal.
	secureKafka bool
}

// scale is --scale: how many processes of a service dev starts, by name;
// a service not named runs one.
type scale map[string]int

// scalable are the services that run more than one process: the stages
// and the lake sink, whose processes share their input's partitions in a
// consumer group. The extractor reads every file of its directory itself,
// so two would publish each file twice; the ecometer is one meter of the
// whole stack.
func scalable() []string { return []string{"cleaner", "loader", "lake", "scorer"} }

func (s scale) String() string {
	var parts []string
	for _, name := range serviceNames() {
		if n, ok := s[name]; ok {
			parts = append(parts, name+"="+strconv.Itoa(n))
		}
	}
	return strings.Join(parts, ",")
}

// Set parses name=N[,name=N…]; a later value of a name wins.
func (s scale) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		name, count, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%q: want name=N", part)
		}
		if !slices.Contains(serviceNames(), name) {
			return fmt.Errorf("%q: unknown service %q (services: %s)", part, name, strings.Join(serviceNames(), ", "))
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 {
			return fmt.Errorf("%q: want a number of processes of at least 1", part)
		}
		if n > 1 && !slices.Contains(scalable(), name) {
			return fmt.Errorf("%q: only %s run more than one process", part, strings.Join(scalable(), ", "))
		}
		s[name] = n
	}
	return nil
}

// replicas is how many processes of service dev starts.
func (f devFlags) replicas(service string) int {
	if n := f.scale[service]; n > 0 {
		return n
	}
	return 1
}

// replicaName names a service's i-th process (from 1): the first keeps the
// service's name, the others are name-2, name-3…
func replicaName(service string, i int) string {
	if i == 1 {
		return service
	}
	return service + "-" + strconv.Itoa(i)
}

func dev(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := devFlags{scale: scale{}}
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: datamill dev [flags]

Starts Kafka (in-process), a schema registry (in-process), PostgreSQL
(DATABASE_URL if set, else a throwaway cluster) and S3 for the lake
(S3_ENDPOINT if set, else an in-process server keeping its objects, encrypted,
in <dir>/s3), creates the topics, builds and starts the six services, prints
the endpoints and "ready". Ctrl-C stops it all.

Its Kafka speaks TLS only (a CA kept in <dir>/kafka/ca) and lets in only
SCRAM-SHA-512 principals: the admin, whose variables dev prints (the password
by its file, <dir>/kafka/admin.password), and each service as itself, allowed
only what its ACLs say. The passwords are new at every start.
--kafka-plaintext runs it open, without TLS, SASL or ACLs.

With KAFKA_BROKERS set, dev uses that Kafka instead of its own, and creates the
pipeline's topics there when they are missing (with --partitions; existing
topics keep theirs).

The in-process S3 answers only requests signed with its key pair, random at
its first start and kept in <dir>/s3: the services get S3_ACCESS_KEY and
S3_SECRET_KEY_FILE, the secret's file, never the secret itself.

--scale cleaner=3,loader=2 runs three cleaner and two loader processes, named
cleaner, cleaner-2, cleaner-3, loader and loader-2; the processes of a stage
share its input's partitions in one consumer group, so give the topics at least
as many --partitions. Only the cleaner, the loader, the lake sink and the
scorer scale: two extractors would each publish every file, and the ecometer
meters the whole stack. The first process of each service keeps its port; the others take the
ports after the last service's.

Each process serves /metrics, /healthz and /readyz on its own admin address
(ADMIN_ADDR) on 127.0.0.1, from --admin-base-port on; Go's profiles there only
with ADMIN_PPROF=true in dev's environment. The extractor's HTTP ingest listens
apart, on --ingest-port.

flags:`)
		fs.PrintDefaults()
	}
	fs.BoolVar(&f.infraOnly, "infra-only", false, "start only Kafka, the schema registry, PostgreSQL and S3")
	fs.IntVar(&f.kafkaPort, "kafka-port", 19092, "Kafka port on 127.0.0.1 (0: any free port; unused with KAFKA_BROKERS)")
	fs.IntVar(&f.registryPort, "registry-port", 18081, "schema registry port on 127.0.0.1 (0: any free port)")
	fs.IntVar(&f.pgPort, "pg-port", 0, "PostgreSQL port on 127.0.0.1 (0: any free port)")
	fs.IntVar(&f.s3Port, "s3-port", 0, "in-process S3 port on 127.0.0.1 (0: any free port; unused with S3_ENDPOINT)")
	fs.IntVar(&f.adminBasePort, "admin-base-port", 9101, "admin port (ADMIN_ADDR: metrics and health) of the first service on 127.0.0.1, the others follow (0: any free ports)")
	fs.IntVar(&f.adminBasePort, "http-base-port", 9101, "former name of --admin-base-port")
	fs.IntVar(&f.ingestPort, "ingest-port", 9100, "the extractor's HTTP ingest port (HTTP_ADDR) on 127.0.0.1 (0: any free port)")
	fs.StringVar(&f.dir, "dir", ".dev", "directory for PostgreSQL's data, the S3 objects and the service binaries")
	fs.IntVar(&f.partitions, "partitions", 3, "partitions of the topics created")
	fs.DurationVar(&f.readyTimeout, "ready-timeout", 60*time.Second, "how long the services may take to become ready")
	plaintext := fs.Bool("kafka-plaintext", false, "run the in-process Kafka without TLS, SASL and ACLs")
	fs.Var(f.scale, "scale", "processes per service, name=N[,name=N…] (cleaner, loader, lake, scorer; default 1 each)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "datamill dev: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	f.secureKafka = !*plaintext
	if f.partitions < 1 || f.partitions > math.MaxInt32 {
		fmt.Fprintf(stderr, "datamill dev: --partitions %d: want 1 to %d\n", f.partitions, math.MaxInt32)
		return errUsage
	}
	d := &devStack{flags: f, env: config.ToMap(environ), environ: environ, out: &lockedWriter{w: stdout}, colour: progress.IsTerminal(stdout)}
	return d.run(ctx)
}

type devStack struct {
	// onReady, when set, runs once the stack is ready with its endpoints
	// and the services' metrics addresses; the stack stops when it returns.
	onReady  func(ctx context.Context, endpoints map[string]string, services map[string]string) error
	flags    devFlags
	env      map[string]string
	environ  []string
	out      *lockedWriter
	colour   bool
	children []*child
	exited   chan *child // children that ended, restarted ones included
	// pg is the embedded PostgreSQL server; nil with an outside
	// DATABASE_URL.
	pg *embedded.Postgres
	// dbEnv gives each service using pg its own role (DATABASE_URL) and
	// the migration owner's (DATABASE_OWNER_URL); nil with an outside
	// DATABASE_URL, which every service uses.
	dbEnv map[string][]string
	// s3 is the embedded S3 server; nil with an outside S3_ENDPOINT.
	s3 *embedded.S3
	// kafka is the security of the in-process broker; nil when it is
	// plaintext or outside.
	kafka *devKafka
}

func (d *devStack) logf(format string, args ...any) {
	d.out.printf("dev       | "+format+"\n", args...)
}

func (d *devStack) run(ctx context.Context) (err error) {
	started := time.Now()
	// Ending ctx on every return also stops a build still running.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir, err := filepath.Abs(d.flags.dir)
	if err != nil {
		return err
	}
	datasets, err := servicesDatasets(d.env)
	if err != nil {
		return err
	}

	// Build the services while the infrastructure starts.
	built := make(chan error, 1)
	if !d.flags.infraOnly {
		go func() { built <- d.build(ctx, filepath.Join(dir, "bin")) }()
	}

	brokers := d.env["KAFKA_BROKERS"]
	kafkaEnv := d.env // an outside broker: the environment says how to reach it
	if brokers == "" {
		opts := embedded.KafkaOptions{Port: d.flags.kafkaPort, Partitions: int32(d.flags.partitions)} // #nosec G115 -- dev checked it is 1 to MaxInt32
		if d.flags.secureKafka {
			if d.kafka, err = newDevKafka(filepath.Join(dir, "kafka")); err != nil {
				return err
			}
			opts.Security = d.kafka.security
		}
		k, err := embedded.StartKafka(opts)
		if err != nil {
			return err
		}
		defer k.Close()
		brokers = strings.Join(k.Brokers(), ",")
		kafkaEnv = map[string]string{"KAFKA_BROKERS": brokers}
		if d.kafka != nil {
			d.kafka.broker = k
			kafkaEnv = config.ToMap(d.kafka.env(kafka.Admin))
			d.logf("kafka (in-process, TLS and SCRAM-SHA-512, each service its own principal) on %s; CA %s, the admin's password in %s",
				brokers, d.kafka.security.CA.CertFile(), d.kafka.files[kafka.Admin])
		} else {
			d.logf("kafka (in-process) on %s", brokers)
		}
	} else {
		d.logf("kafka: using KAFKA_BROKERS from the environment (%s)", brokers)
	}

	reg, err := embedded.StartRegistry(d.flags.registryPort)
	if err != nil {
		return err
	}
	defer reg.Close()
	d.logf("schema registry (in-process) on %s", reg.URL())

	dbURL := d.env["DATABASE_URL"]
	if dbURL == "" {
		pg, err := embedded.StartPostgres(ctx, embedded.PostgresOptions{Dir: filepath.Join(dir, "pg"), Port: d.flags.pgPort, Logf: d.logf})
		if err != nil {
			return err
		}
		defer func() {
			if stopErr := pg.Stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}()
		// The URL names the pgpass file rather than holding the
		// password: it is printed and in every service's environment.
		dbURL = pg.PassFileURL("datamill")
		d.pg = pg
		if d.dbEnv, err = serviceRoles(ctx, dbURL); err != nil {
			return err
		}
	} else {
		d.logf("postgres: using DATABASE_URL from the environment")
	}

	var s3Endpoints []string
	if d.env["S3_ENDPOINT"] == "" {
		var s3 *embedded.S3
		if s3, err = embedded.StartS3(embedded.S3Options{Dir: filepath.Join(dir, "s3"), Port: d.flags.s3Port}); err != nil {
			return err
		}
		defer func() {
			if closeErr := s3.Close(); closeErr != nil {
				err = errors.Join(err, closeErr)
			}
		}()
		d.s3 = s3
		// The secret goes by its file, as credentials should: not in
		// the services' environments nor on the terminal.
		s3Endpoints = []string{
			"S3_ENDPOINT=" + s3.Endpoint(),
			"S3_BUCKET=" + s3.Bucket(),
			"S3_ACCESS_KEY=" + s3.AccessKey(),
			"S3_SECRET_KEY_FILE=" + s3.SecretKeyFile(),
		}
		d.logf("s3 (in-process, encrypted at rest in %s) on %s", s3.Dir(), s3.Endpoint())
	} else {
		d.logf("s3: using S3_ENDPOINT from the environment (%s)", d.env["S3_ENDPOINT"])
	}

	kcfg, err := cliKafka(kafkaEnv)
	if err != nil {
		return err
	}
	kcfg.Partitions, kcfg.ReplicationFactor = int32(d.flags.partitions), -1 // #nosec G115 -- dev checked it is 1 to MaxInt32
	topics, err := createTopics(ctx, kcfg, datasets)
	if err != nil {
		return err
	}
	d.logf("topics: %s", strings.Join(topics, " "))

	endpoints := []string{"KAFKA_BROKERS=" + brokers}
	if d.kafka != nil {
		endpoints = d.kafka.env(kafka.Admin)
	}
	endpoints = append(endpoints,
		"SCHEMA_REGISTRY_URL="+reg.URL(),
		"DATABASE_URL="+dbURL,
	)
	endpoints = append(endpoints, s3Endpoints...)
	processes := 0
	for _, name := range serviceNames() {
		processes += d.flags.replicas(name)
	}
	d.exited = make(chan *child, processes)
	if !d.flags.infraOnly {
		defer d.stopChildren()
		if err := <-built; err != nil {
			return err
		}
		if err := d.startServices(ctx, filepath.Join(dir, "bin"), endpoints, datasets); err != nil {
			return err
		}
	}
	for _, e := range endpoints {
		// A URL given with its password is printed without it: the
		// terminal and its scrollback are no place for a secret.
		k, v, _ := strings.Cut(e, "=")
		d.out.printf("%s=%s\n", k, config.RedactURL(v))
	}
	for _, c := range d.children {
		if c.api != "" {
			d.out.printf("# %s (pid %d): http://%s/metrics /healthz /readyz; ingest: http://%s/v1/datasets/{dataset}/events\n", c.name, c.cmd.Process.Pid, c.addr, c.api)
		} else {
			d.out.printf("# %s (pid %d): http://%s/metrics /healthz /readyz\n", c.name, c.cmd.Process.Pid, c.addr)
		}
		if c.waiting != "" {
			d.logf("%s is up and %s", c.name, c.waiting)
		}
	}
	d.logf("ready in %v; Ctrl-C stops everything", time.Since(started).Round(100*time.Millisecond))
	d.out.printf("ready\n")

	if d.onReady != nil {
		eps := map[string]string{}
		if d.env["KAFKA_BROKERS"] != "" {
			// The endpoints name an outside broker by its address alone:
			// its TLS and SASL settings are the environment's.
			for k, v := range d.env {
				if strings.HasPrefix(k, "KAFKA_") {
					eps[k] = v
				}
			}
		}
		for _, e := range endpoints {
			k, v, _ := strings.Cut(e, "=")
			eps[k] = v
		}
		svc := map[string]string{}
		for _, c := range d.children {
			svc[c.name] = c.addr
		}
		done := make(chan error, 1)
		go func() {
			// A test's FailNow ends this goroutine without a return: the
			// deferred send still tells run.
			err := errors.New("the stack's user ended without returning")
			defer func() { done <- err }()
			err = d.onReady(ctx, eps, svc)
		}()
		for {
			select {
			case err := <-done:
				return err
			case c := <-d.exited:
				if !c.killed.Load() {
					return fmt.Errorf("%s exited unexpectedly (%v); last lines:\n%s", c.name, c.err, c.tail.String())
				}
			}
		}
	}

	for {
		select {
		case <-ctx.Done():
			d.logf("stopping")
			return nil
		case c := <-d.exited:
			if ctx.Err() != nil {
				return nil
			}
			if !c.killed.Load() {
				return fmt.Errorf("%s exited unexpectedly (%v); last lines:\n%s", c.name, c.err, c.tail.String())
			}
		}
	}
}

// ownS3Environ is environ without the S3_* variables (but S3_PREFIX) when
// dev runs its own S3, whose endpoints then say everything: a stray
// S3_SECRET_KEY or S3_CA_FILE of the shell would contradict them.
func ownS3Environ(environ []string, own bool) []string {
	if !own {
		return slices.Clone(environ)
	}
	return slices.DeleteFunc(slices.Clone(environ), func(kv string) bool {
		return strings.HasPrefix(kv, "S3_") && !strings.HasPrefix(kv, "S3_PREFIX=")
	})
}

// build compiles the services into bin, without debug information, which
// only slows a cold build down.
func (d *devStack) build(ctx context.Context, bin string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	d.logf("building services into %s…", bin)
	start := time.Now()
	args := []string{"build", "-ldflags=-s -w", "-o", bin + string(filepath.Separator)}
	for _, s := range serviceNames() {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...) // #nosec G204 -- go run of our own packages, arguments passed without a shell
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build services: %w\n%s", err, out)
	}
	d.logf("services built in %v", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// startServices starts the built services, each as many times as --scale
// says, and waits until each process is ready.
func (d *devStack) startServices(ctx context.Context, bin string, endpoints, datasets []string) error {
	// The first process of each service has the port of the service's
	// place in the order; the other processes take the ports after them.
	extra := len(serviceNames())
	for i, service := range serviceNames() {
		for r := 1; r <= d.flags.replicas(service); r++ {
			port := i
			if r > 1 {
				port, extra = extra, extra+1
			}
			addr, err := d.adminAddr(port)
			if err != nil {
				return err
			}
			name := replicaName(service, r)
			env := append(ownS3Environ(d.environ, d.s3 != nil), endpoints...)
			var api string
			if service == "extractor" {
				if api, err = d.ingestAddr(); err != nil {
					return err
				}
				env = append(env, "HTTP_ADDR="+api)
			}
			env = append(env,
				"ADMIN_ADDR="+addr,
				"DATASETS="+strings.Join(datasets, ","),
				// The transactional id derives from it: processes of a
				// stage must differ.
				"STAGE_INSTANCE_ID="+replicaName("dev", r),
				"RUN_ID="+cmpOr(d.env["RUN_ID"], "dev"),
				"LOG_FORMAT="+cmpOr(d.env["LOG_FORMAT"], "console"),
			)
			env = append(env, d.dbEnv[service]...)
			if d.kafka != nil {
				// After the admin's endpoints: the service's own win,
				// and a shell's KAFKA_SASL_PASSWORD must not clash
				// with the file.
				env = append(append(env, d.kafka.env(service)...), "KAFKA_SASL_PASSWORD=")
			}
			if service == "lake" {
				// A short idle cut, so that a quiet dev stack's lake
				// catches up within seconds.
				env = append(env, "LAKE_FLUSH_INTERVAL="+cmpOr(d.env["LAKE_FLUSH_INTERVAL"], "2s"))
			}
			c, err := startChild(name, filepath.Join(bin, service), env, addr, d.prefix(service, name), d.out, d.exited)
			if err != nil {
				return err
			}
			c.api = api
			d.children = append(d.children, c)
		}
	}
	deadline := time.Now().Add(d.flags.readyTimeout)
	for _, c := range d.children {
		if err := c.awaitReady(ctx, deadline); err != nil {
			return err
		}
	}
	return nil
}

// serviceRoles provisions the datamill roles in dev's own cluster (of
// dbURL, its superuser's), with random passwords, hands them what runs
// before roles created (pg.Adopt), and returns the database variables of
// each service that uses it: its own role, and the migration owner for
// its schema's changes.
func serviceRoles(ctx context.Context, dbURL string) (map[string][]string, error) {
	pool, err := pg.Open(ctx, pg.Config{URL: dbURL, MaxConns: 1})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	passwords := map[string]string{}
	for _, role := range pg.Roles() {
		passwords[role] = rand.Text()
	}
	if err := pg.Provision(ctx, pool, passwords); err != nil {
		return nil, err
	}
	if err := pg.Adopt(ctx, pool); err != nil {
		return nil, err
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", err)
	}
	as := func(role string) string {
		r := *u
		r.User = url.UserPassword(role, passwords[role])
		return r.String()
	}
	env := map[string][]string{}
	for service, role := range map[string]string{"loader": pg.RoleLoader, "scorer": pg.RoleScorer, "ecometer": pg.RoleEcometer, "lake": pg.RoleLake} {
		env[service] = []string{"DATABASE_URL=" + as(role), "DATABASE_OWNER_URL=" + as(pg.RoleOwner)}
	}
	return env, nil
}

// adminAddr is the admin address of the process at place i.
func (d *devStack) adminAddr(i int) (string, error) {
	if d.flags.adminBasePort != 0 {
		return "127.0.0.1:" + strconv.Itoa(d.flags.adminBasePort+i), nil
	}
	return embedded.FreeAddr()
}

// ingestAddr is the extractor's ingest address.
func (d *devStack) ingestAddr() (string, error) {
	if d.flags.ingestPort != 0 {
		return "127.0.0.1:" + strconv.Itoa(d.flags.ingestPort), nil
	}
	return embedded.FreeAddr()
}

// ingest is the address of the extractor's HTTP ingest, once started.
func (d *devStack) ingest() string {
	for _, c := range d.children {
		if c.api != "" {
			return c.api
		}
	}
	return ""
}

// prefix is the padded name before the lines of a process of service, on
// a terminal in the service's colour.
func (d *devStack) prefix(service, name string) string {
	p := fmt.Sprintf("%-9s | ", name)
	if !d.colour {
		return p
	}
	colours := []string{"36", "32", "33", "91", "35", "34"}
	for i, s := range serviceNames() {
		if s == service {
			return "\x1b[" + colours[i%len(colours)] + "m" + p + "\x1b[0m"
		}
	}
	return p
}

// restart kills a service's process (loader, cleaner-2) with SIGKILL, as a
// crash would, starts it again as a supervisor would, and returns once the
// new process is ready.
func (d *devStack) restart(ctx context.Context, name string) error {
	return d.replace(ctx, name, syscall.SIGKILL)
}

// redeploy stops a service's process with SIGTERM, as a rolling deploy
// does, waits until it has stopped, and starts it again with env added to
// its environment; it returns once the new process is ready.
func (d *devStack) redeploy(ctx context.Context, name string, env ...string) error {
	return d.replace(ctx, name, syscall.SIGTERM, env...)
}

// replace ends a service's process with sig and starts it again, with env
// added to its environment.
func (d *devStack) replace(ctx context.Context, name string, sig syscall.Signal, env ...string) error {
	i := slices.IndexFunc(d.children, func(c *child) bool { return c.name == name })
	if i < 0 {
		return fmt.Errorf("restart: no service %q", name)
	}
	old := d.children[i]
	old.killed.Store(true)
	_ = old.cmd.Process.Signal(sig)
	select {
	case <-old.done:
	case <-time.After(15 * time.Second):
		d.logf("%s did not stop within 15 s; killing it", name)
		_ = old.cmd.Process.Kill()
		<-old.done
	}
	d.logf("%s stopped (%v); starting it again", name, sig)
	service, _, _ := strings.Cut(name, "-")
	c, err := startChild(name, old.cmd.Path, append(slices.Clip(old.cmd.Env), env...), old.addr, d.prefix(service, name), d.out, d.exited)
	if err != nil {
		return err
	}
	c.api = old.api
	d.children[i] = c
	return c.awaitReady(ctx, time.Now().Add(d.flags.readyTimeout))
}

// stopChildren sends SIGTERM to every child and waits; children still
// running after 15 s are killed.
func (d *devStack) stopChildren() {
	for _, c := range d.children {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	// One deadline for all: each child waits only for what is left of it.
	deadline := time.Now().Add(15 * time.Second)
	for _, c := range d.children {
		select {
		case <-c.done:
		case <-time.After(time.Until(deadline)):
			d.logf("%s did not stop within 15 s; killing it", c.name)
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// child is one service process: addr is its admin address, api its own
// API's (the extractor's ingest), "" for the others.
type child struct {
	name, addr string
	api        string
	cmd        *exec.Cmd
	done       chan struct{}
	err        error
	tail       *logTail
	killed     atomic.Bool // by restart: its exit is expected
	waiting    string      // why it is up but not ready, once started
}

func startChild(name, path string, env []string, addr, prefix string, out *lockedWriter, exited chan<- *child) (*child, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for %s's output: %w", name, err)
	}
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = w, w
	// SIGKILL when dev dies, so that no service outlives it; a process
	// group of its own, so that a terminal's Ctrl-C reaches only dev, which
	// then stops the services in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	c := &child{name: name, addr: addr, cmd: cmd, done: make(chan struct{}), tail: &logTail{max: 20}}
	lines := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the thread that started
		// the child ends, not the process (go.dev/issue/27505): start and
		// wait from a goroutine locked to its thread, never unlocked, so
		// the thread lives exactly as long as the child.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		<-lines
		close(c.done)
		exited <- c
	}()
	err = <-started
	_ = w.Close() // the child holds its own copy; closing ours only lets the reader see EOF
	if err != nil {
		_ = r.Close() // the start's error is the one returned
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		defer close(lines)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			c.tail.add(sc.Text())
			out.printf("%s%s\n", prefix, sc.Text())
		}
		// A line longer than the buffer ends the scan: keep draining, so
		// that the child never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, r)
	}()
	return c, nil
}

// awaitReady polls the child's /readyz until it answers 200.
func (c *child) awaitReady(ctx context.Context, deadline time.Time) error {
	url := "http://" + c.addr + "/readyz"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var body readiness
			_ = json.NewDecoder(resp.Body).Decode(&body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			if reasons := body.waiting(); reasons != "" {
				c.waiting = reasons
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s exited before it was ready (%v); last lines:\n%s", c.name, c.err, c.tail.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s in time (see -ready-timeout); last lines:\n%s", c.name, url, c.tail.String())
		}
	}
}

// readiness is a /readyz body.
type readiness struct {
	Components []struct {
		Ready  bool
		Reason string
	}
}

// waiting returns the reasons of a service that is up but waits for
// something only an operator provides (its not-ready components all say
// "waiting for …", like a scorer without a model), or "".
func (r readiness) waiting() string {
	var reasons []string
	for _, c := range r.Components {
		if c.Ready {
			continue
		}
		if !strings.HasPrefix(c.Reason, "waiting for ") {
			return ""
		}
		reasons = append(reasons, c.Reason)
	}
	return strings.Join(reasons, "; ")
}

// logTail keeps a child's last lines for error messages.
type logTail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *logTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func (t *logTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// lockedWriter serialises the lines of concurrent writers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// repoRoot walks up from the working directory to the one holding go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("datamill dev builds the services from source: run it inside the datamill repository (no go.work found above the working directory)")
		}
		dir = parent
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
