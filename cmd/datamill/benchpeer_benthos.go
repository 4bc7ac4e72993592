package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
)

// The Benthos peer: Benthos v4.27.0 (Redpanda Connect's engine before its
// rename, MIT) running the users job of the cleaner and the loader,
// bench/peers/benthos/users.yaml, on a stack of datamill's. Its module is
// not in go.work: it is built apart, with GOWORK=off, into
// .cache/benthos/benthos.

// PeerStack is how a peer reaches the stack it runs on: the connection
// details `datamill dev` prints, with the secrets read from their files.
type PeerStack struct {
	// Kafka is the broker as the services' KAFKA_* variables give it
	// (brokers, TLS with its CA file, SASL mechanism, user, password).
	Kafka kafka.Config
	// RegistryURL is the schema registry; RegistryUsername and
	// RegistryPassword its basic auth, empty for none.
	RegistryURL, RegistryUsername, RegistryPassword string
	// DatabaseURL is a PostgreSQL URL as datamill takes it: sslmode,
	// sslrootcert and passfile in its query are honoured.
	DatabaseURL string
}

// BenthosPeerOptions say what the Benthos peer runs.
type BenthosPeerOptions struct {
	// Root is the repository's root: bench/peers/benthos and .cache/benthos
	// are under it.
	Root string
	// Topic is the raw topic read, raw.users by default.
	Topic string
	// Group is the consumer group, peer-benthos-users by default. It is
	// deleted before the run, so that the peer reads the topic from its
	// start.
	Group string
	// Table and RejectsTable are the peer's own tables, peer_benthos_users
	// and peer_benthos_users_rejects by default, schema-qualified or not
	// (the schema is created if missing); both are dropped before the run.
	// The table is made like the dataset's (users), so it must exist.
	Table, RejectsTable string
	// Batch is the number of records a batch (and a statement) holds, 2000
	// by default.
	Batch int
	// Timeout bounds the run, 10 minutes by default.
	Timeout time.Duration
	// Log receives benthos' own output (warnings and errors); nil
	// discards it.
	Log io.Writer
}

func (o *BenthosPeerOptions) defaults() {
	if o.Topic == "" {
		o.Topic = "raw.users"
	}
	if o.Group == "" {
		o.Group = "peer-benthos-users"
	}
	if o.Table == "" {
		o.Table = "peer_benthos_users"
	}
	if o.RejectsTable == "" {
		o.RejectsTable = o.Table + "_rejects"
	}
	if o.Batch <= 0 {
		o.Batch = 2000
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// BenthosPeerResult is what one run of the Benthos peer measured.
type BenthosPeerResult struct {
	// Records are the committed records the topic held when the run
	// began: what the peer consumed.
	Records int64
	// Rows are the rows of the peer's table at the end (one per user),
	// Rejects the rejected records in its dead-letter table.
	Rows, Rejects int64
	// WallSeconds run from starting benthos until the group's committed
	// offsets passed the last of those records; CPUSeconds are benthos' CPU time
	// over that span (user and system).
	WallSeconds, CPUSeconds float64
	// PostgresCPUSeconds is the CPU time of the PostgreSQL server and its
	// backends over the same span, when it runs on this machine (else
	// -1). Other clients of the same server count too.
	PostgresCPUSeconds float64
	// PeakRSSMiB is benthos' peak resident memory.
	PeakRSSMiB float64
}

// benthosBinary is where the peer's binary is built.
func benthosBinary(root string) string {
	return filepath.Join(root, ".cache", "benthos", "benthos")
}

// buildBenthos builds the peer's binary when it is missing: the wrapper
// module, with GOWORK=off, its dependencies from the module proxy.
func buildBenthos(ctx context.Context, root string, log io.Writer) (string, error) {
	bin := benthosBinary(root)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", abs, ".") // #nosec G204 -- go build of the repository's own module, no shell
	cmd.Dir = filepath.Join(root, "bench", "peers", "benthos")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the benthos peer in %s: %w", cmd.Dir, err)
	}
	return bin, nil
}

// libpqDSN is url as a lib/pq key=value DSN (the driver the peer's
// binary has), its password read from the passfile the URL names if it
// has none of its own.
func libpqDSN(databaseURL string) (string, error) {
	cfg, err := pgconn.ParseConfig(databaseURL)
	if err != nil {
		return "", fmt.Errorf("database url: %w", err)
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("database url: %w", err)
	}
	q := u.Query()
	sslmode := q.Get("sslmode")
	if sslmode == "" {
		sslmode = "prefer"
	}
	quote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	parts := []string{
		"host=" + quote(cfg.Host), "port=" + strconv.Itoa(int(cfg.Port)),
		"dbname=" + quote(cfg.Database), "user=" + quote(cfg.User),
		"password=" + quote(cfg.Password), "sslmode=" + quote(sslmode),
	}
	if ca := q.Get("sslrootcert"); ca != "" {
		parts = append(parts, "sslrootcert="+quote(ca))
	}
	return strings.Join(parts, " "), nil
}

// peerEnv is the environment users.yaml reads (see its header).
func peerEnv(stack PeerStack, o BenthosPeerOptions, dsn string) []string {
	mechanism := stack.Kafka.SASLMechanism
	if mechanism == "" {
		mechanism = "none"
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"PEER_KAFKA_BROKERS=" + strings.Join(stack.Kafka.Brokers, ","),
		"PEER_KAFKA_TLS=" + strconv.FormatBool(stack.Kafka.TLS),
		"PEER_KAFKA_CA_FILE=" + stack.Kafka.TLSCAFile,
		"PEER_KAFKA_SASL_MECHANISM=" + mechanism,
		"PEER_KAFKA_USER=" + stack.Kafka.SASLUsername,
		"PEER_KAFKA_PASSWORD=" + stack.Kafka.SASLPassword,
		"PEER_TOPIC=" + o.Topic,
		"PEER_GROUP=" + o.Group,
		"PEER_REGISTRY_URL=" + stack.RegistryURL,
		"PEER_REGISTRY_AUTH=" + strconv.FormatBool(stack.RegistryUsername != ""),
		"PEER_REGISTRY_USER=" + stack.RegistryUsername,
		"PEER_REGISTRY_PASSWORD=" + stack.RegistryPassword,
		"PEER_PG_DSN=" + dsn,
		"PEER_TABLE=" + o.Table,
		"PEER_REJECTS_TABLE=" + o.RejectsTable,
		"PEER_BATCH=" + strconv.Itoa(o.Batch),
		"PEER_MAPPING_DIR=" + filepath.Join(o.Root, "bench", "peers", "benthos"),
	}
	return env
}

// runBenthosPeer runs the Benthos peer over what the topic holds when it
// starts (publish the input first): it builds the binary if it is
// missing, drops the peer's tables and group, counts the topic's records,
// starts benthos, and stops it once the group has committed the last
// record of every partition. Benthos
// commits an offset only once the writes of its batch are acknowledged, so
// then every record has its row or its reject.
func runBenthosPeer(ctx context.Context, stack PeerStack, o BenthosPeerOptions) (BenthosPeerResult, error) {
	o.defaults()
	res := BenthosPeerResult{PostgresCPUSeconds: -1}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	bin, err := buildBenthos(ctx, o.Root, o.Log)
	if err != nil {
		return res, err
	}
	dsn, err := libpqDSN(stack.DatabaseURL)
	if err != nil {
		return res, err
	}
	conn, err := pgx.Connect(ctx, stack.DatabaseURL)
	if err != nil {
		return res, fmt.Errorf("connect to postgresql: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, t := range []string{o.Table, o.RejectsTable} {
		if schema, _, ok := strings.Cut(t, "."); ok {
			if _, err := conn.Exec(ctx, "create schema if not exists "+ident(schema)); err != nil {
				return res, fmt.Errorf("create schema %s: %w", schema, err)
			}
		}
		if _, err := conn.Exec(ctx, "drop table if exists "+qualified(t)); err != nil {
			return res, fmt.Errorf("drop %s: %w", t, err)
		}
	}
	pgPID := postgresServerPID(ctx, conn)

	cl, err := kafka.NewClient(stack.Kafka, zap.NewNop())
	if err != nil {
		return res, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteGroup(ctx, o.Group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return res, fmt.Errorf("delete group %s: %w", o.Group, err)
	}
	// The offset after the last record of each partition: where the
	// group's commits end. A partition that transactions wrote ends with
	// a marker, which no consumer commits past.
	last := map[int32]int64{}
	err = kafka.ReadCommitted(ctx, stack.Kafka, zap.NewNop(), o.Topic, nil, func(r *kgo.Record) {
		res.Records++
		last[r.Partition] = r.Offset + 1
	})
	if err != nil {
		return res, err
	}

	cmd := exec.Command(bin, "-c", filepath.Join(o.Root, "bench", "peers", "benthos", "users.yaml")) // #nosec G204 -- the peer's binary built from the repository, its config from the repository, no shell
	cmd.Env = peerEnv(stack, o, dsn)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	pg0 := treeCPU(pgPID)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start benthos: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			stop()
			return res, fmt.Errorf("benthos peer: %w before the group committed the last record of %s", ctx.Err(), o.Topic)
		case err := <-exited:
			return res, fmt.Errorf("benthos exited before the group committed the last record of %s: %v", o.Topic, err)
		case <-tick.C:
		}
		committed, err := adm.FetchOffsets(ctx, o.Group)
		if err != nil {
			continue // the group may not exist yet
		}
		done = true
		for p, end := range last {
			if c, ok := committed.Lookup(o.Topic, p); !ok || c.At < end {
				done = false
			}
		}
	}
	res.WallSeconds = time.Since(start).Seconds()
	if p, err := eco.ReadProcess(cmd.Process.Pid); err == nil {
		res.CPUSeconds = p.CPUSeconds
		res.PeakRSSMiB = float64(p.PeakRSSBytes) / (1 << 20)
	}
	if pg0 >= 0 {
		if pg1 := treeCPU(pgPID); pg1 >= 0 {
			res.PostgresCPUSeconds = pg1 - pg0
		}
	}
	stop()

	for t, n := range map[string]*int64{o.Table: &res.Rows, o.RejectsTable: &res.Rejects} {
		if err := conn.QueryRow(ctx, "select count(*) from "+qualified(t)).Scan(n); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
				continue // no record of this kind: benthos never created the table
			}
			return res, fmt.Errorf("count %s: %w", t, err)
		}
	}
	return res, nil
}

// qualified quotes a table's name, schema.table or table.
func qualified(name string) string { return pgx.Identifier(strings.Split(name, ".")).Sanitize() }

// postgresServerPID is the PID of the PostgreSQL server conn is connected
// to when it runs on this machine (the parent of conn's backend), else 0.
func postgresServerPID(ctx context.Context, conn *pgx.Conn) int {
	var backend int
	if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&backend); err != nil {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", backend))
	if err != nil {
		return 0 // a server elsewhere, or in another PID namespace
	}
	// The fields after the command's closing parenthesis: state, ppid, …
	rest := stat[strings.LastIndexByte(string(stat), ')')+1:]
	fields := strings.Fields(string(rest))
	if len(fields) < 2 {
		return 0
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0
	}
	return ppid
}

// treeCPU is the CPU seconds of pid and its descendants, -1 without one.
func treeCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	s, err := eco.TreeCPUSeconds(pid)
	if err != nil {
		return -1
	}
	return s
}

// peerStackFromEnv reads a PeerStack from the variables `datamill dev`
// prints (KAFKA_*, SCHEMA_REGISTRY_*, DATABASE_URL), the secrets' _FILE
// variables included.
func peerStackFromEnv(env map[string]string) (PeerStack, error) {
	kc, err := cliKafka(env)
	if err != nil {
		return PeerStack{}, err
	}
	var environ []string
	for k, v := range env {
		if strings.HasPrefix(k, "SCHEMA_REGISTRY_") && v != "" {
			environ = append(environ, k+"="+v)
		}
	}
	if env["SCHEMA_REGISTRY_URL"] == "" {
		environ = append(environ, "SCHEMA_REGISTRY_URL="+defaultRegistry)
	}
	rc, err := config.Parse[serde.Config](environ)
	if err != nil {
		return PeerStack{}, fmt.Errorf("schema registry: %w", err)
	}
	if env["DATABASE_URL"] == "" {
		return PeerStack{}, errors.New("DATABASE_URL is not set")
	}
	return PeerStack{
		Kafka:       kc,
		RegistryURL: rc.RegistryURL, RegistryUsername: rc.Username, RegistryPassword: rc.Password,
		DatabaseURL: env["DATABASE_URL"],
	}, nil
}
