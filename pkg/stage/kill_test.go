package stage

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
)

// The kill tests run runners in child processes (this test binary started
// again with childEnv set) and kill them with SIGKILL in the middle of a
// batch: after its outputs are produced, before its transaction commits.

const childEnv = "DATAMILL_STAGE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs one runner as the parent described it in the environment.
// With CHILD_HANG_AT=n it prints "hang" and blocks for good once its n-th
// batch is produced and not yet committed.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	kcfg, err := config.Parse[kafka.Config](os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	kcfg.Partitions, kcfg.ReplicationFactor = 3, -1
	f := &fixture{
		kcfg:        kcfg,
		registryURL: os.Getenv("CHILD_REGISTRY"),
		in:          os.Getenv("CHILD_IN"), out: os.Getenv("CHILD_OUT"), dlq: os.Getenv("CHILD_DLQ"),
		partitions: 3,
		log:        zap.NewNop(),
	}
	if err := f.dial(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer f.client.Close()
	handler := PerRecord(echo)
	if url := os.Getenv("CHILD_DATABASE_URL"); url != "" {
		pool, err := pg.Open(ctx, pg.Config{URL: url, MaxConns: 2})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
		defer pool.Close()
		handler = itemSink(pool)
	}
	cfg := testConfig(os.Getenv("CHILD_INSTANCE"))
	cfg.TransactionTimeout = 5 * time.Second
	r, err := NewRunner(f.spec(handler), cfg, f.kcfg, f.log, NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	hangAt, _ := strconv.Atoi(os.Getenv("CHILD_HANG_AT"))
	batches := 0
	r.beforeCommit = func() {
		batches++
		if batches == hangAt {
			fmt.Println("hang")
			select {}
		}
	}
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// itemSink is a database-sink handler: it upserts the batch's rows in one
// transaction, idempotently, and returns an output for every row, also for
// rows a previous attempt already applied.
func itemSink(pool *pgxpool.Pool) Handler[item, item] {
	return func(ctx context.Context, batch []Message[item]) (Result[item], error) {
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			for _, m := range batch {
				_, err := tx.Exec(ctx, `insert into items (id, payload, src_partition, src_offset) values ($1, $2, $3, $4)
					on conflict (id) do nothing`, m.Value.ID, m.Value.Payload, m.Origin.Partition, m.Origin.Offset)
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Result[item]{}, err
		}
		return PerRecord(echo)(ctx, batch)
	}
}

type child struct {
	cmd   *exec.Cmd
	lines chan string
}

// startChild starts a runner process for f with the given instance id.
func startChild(t *testing.T, f *fixture, instance string, hangAt int, databaseURL string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), testkit.KafkaEnv(f.kcfg)...),
		childEnv+"=1",
		"CHILD_REGISTRY="+f.registryURL,
		"CHILD_IN="+f.in, "CHILD_OUT="+f.out, "CHILD_DLQ="+f.dlq,
		"CHILD_INSTANCE="+instance,
		"CHILD_HANG_AT="+strconv.Itoa(hangAt),
		"CHILD_DATABASE_URL="+databaseURL,
	)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return c
}

// waitHang waits for the child to report that it hangs mid-batch.
func (c *child) waitHang(t *testing.T) {
	t.Helper()
	select {
	case line := <-c.lines:
		if line != "hang" {
			t.Fatalf("child said %q, want hang", line)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("child did not reach its hang point within 60 s")
	}
}

// kill sends SIGKILL: no shutdown, no commit, no leaving the group.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// stop sends SIGTERM and wants a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child exit after SIGTERM: %v", err)
	}
}

func TestKilledMidBatchLosesAndDoublesNothing(t *testing.T) {
	f := newFixture(t)
	const n = 600
	f.produce(t, items(0, n)...)

	// A dies with its third batch produced but not committed; B, another
	// member, takes over once the group notices; B dies the same way; A's
	// restart (same instance id, so it fences B's transaction) finishes.
	a := startChild(t, f, "a", 3, "")
	a.waitHang(t)
	a.kill(t)
	b := startChild(t, f, "b", 2, "")
	b.waitHang(t)
	b.kill(t)
	a2 := startChild(t, f, "a", 0, "")
	f.waitDrained(t, f.in+".group", 90*time.Second)
	a2.stop(t)

	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), n, nil)
}

func TestDatabaseSinkCommitsOffsetsOnlyAfterRowsAreDurable(t *testing.T) {
	f := newFixture(t)
	url := testkit.Postgres(t)
	pool, err := pg.Open(t.Context(), pg.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), `create table items (id bigint primary key, payload text not null,
		src_partition int not null, src_offset bigint not null)`); err != nil {
		t.Fatal(err)
	}
	const n = 400
	f.produce(t, items(0, n)...)

	a := startChild(t, f, "a", 3, url)
	a.waitHang(t)
	// The child's third batch is in the database, its offsets are not
	// committed: every committed offset is covered by durable rows, and
	// rows exist past the committed offsets.
	group := f.in + ".group"
	committed := f.committed(t, group)
	var beyond int
	for p := range f.partitions {
		var covered, past int
		err := pool.QueryRow(t.Context(), `select count(*) filter (where src_offset < $2), count(*) filter (where src_offset >= $2)
			from items where src_partition = $1`, p, committed[p]).Scan(&covered, &past)
		if err != nil {
			t.Fatal(err)
		}
		if int64(covered) != committed[p] {
			t.Errorf("partition %d: offset %d committed but only %d rows below it are durable", p, committed[p], covered)
		}
		beyond += past
	}
	if beyond == 0 {
		t.Errorf("no durable rows beyond the committed offsets %v: the batch in flight should be in the database before its offsets commit", committed)
	}
	a.kill(t)

	// The replay finds those rows already applied and publishes them
	// again, so nothing is lost downstream.
	a2 := startChild(t, f, "a", 0, url)
	f.waitDrained(t, group, 90*time.Second)
	a2.stop(t)

	var rows int
	if err := pool.QueryRow(t.Context(), `select count(*) from items`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Errorf("%d rows, want %d", rows, n)
	}
	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), n, nil)
}
