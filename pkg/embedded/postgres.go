package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// Dir is the data directory; an initialised one is reused, so a
	// restart keeps the data. Empty means a new temporary directory,
	// removed by Stop.
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Logf, when set, receives progress messages.
	Logf func(format string, args ...any)
}

// Postgres is a PostgreSQL server run from the machine's binaries.
type Postgres struct {
	bin     string // directory of initdb and postgres
	dir     string
	port    int
	tempDir bool
	cred    *syscall.Credential
	cmd     *exec.Cmd
	exited  chan struct{}
	logf    func(string, ...any)
}

// StartPostgres initialises (when needed) and starts a PostgreSQL cluster
// listening on 127.0.0.1 only, with a superuser and a database both named
// datamill, and returns once it accepts connections.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := postgresBinaries()
	if err != nil {
		return nil, err
	}
	p := &Postgres{bin: bin, dir: opts.Dir, port: opts.Port, logf: opts.Logf}
	if p.logf == nil {
		p.logf = func(string, ...any) {}
	}
	if p.dir == "" {
		if p.dir, err = os.MkdirTemp("", "datamill-pg-"); err != nil {
			return nil, fmt.Errorf("postgres data dir: %w", err)
		}
		p.tempDir = true
	}
	if p.dir, err = filepath.Abs(p.dir); err != nil {
		return nil, err
	}
	if p.port == 0 {
		if p.port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		if p.cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	if err := p.initdb(ctx); err != nil {
		p.cleanup()
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		p.cleanup()
		return nil, err
	}
	return p, nil
}

// postgresBinaries finds the directory holding initdb and postgres.
func postgresBinaries() (string, error) {
	if path, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(path)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) found: install them (Debian: apt-get install postgresql) or set DATABASE_URL to an existing server")
}

// unprivileged returns the credentials of the postgres (else nobody) user.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, and no postgres or nobody user to run PostgreSQL as")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (p *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: p.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }
func (p *Postgres) logFile() string { return filepath.Join(p.dir, "postgres.log") }

// initdb creates the cluster unless the data dir already holds one.
func (p *Postgres) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.dataDir(), "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.MkdirAll(p.dataDir(), 0o700); err != nil {
		return fmt.Errorf("postgres data dir: %w", err)
	}
	if err := p.chown(); err != nil {
		return err
	}
	start := time.Now()
	cmd := p.command(ctx, "initdb", "-D", p.dataDir(), "-U", "datamill", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb %s: %w: %s", p.dataDir(), err, lastLines(string(out), 20))
	}
	p.logf("postgres: initialised %s in %v", p.dataDir(), time.Since(start).Round(time.Millisecond))
	return nil
}

// chown hands the directory to the user PostgreSQL runs as.
func (p *Postgres) chown() error {
	if p.cred == nil {
		return nil
	}
	for _, d := range []string{p.dir, p.dataDir()} {
		if err := os.Chown(d, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres user: %w", d, err)
		}
	}
	// Every parent must be traversable by that user.
	for d := filepath.Dir(p.dir); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("make %s traversable for the postgres user: %w", d, err)
			}
		}
	}
	return nil
}

// start runs postgres and waits until it accepts connections.
func (p *Postgres) start(ctx context.Context) error {
	log, err := os.OpenFile(p.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres log: %w", err)
	}
	defer log.Close()
	cmd := p.command(context.Background(), "postgres",
		"-D", p.dataDir(),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(p.port),
		"-c", "unix_socket_directories="+p.dataDir(),
		"-c", "max_connections=200",
		"-c", "shared_buffers=64MB",
		"-c", "max_wal_size=1GB",
	)
	cmd.Stdout, cmd.Stderr = log, log
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	for {
		conn, err := pgx.Connect(ctx, p.adminURL())
		if err == nil {
			err = ensureDatabase(ctx, conn)
			_ = conn.Close(ctx)
			if err != nil {
				return err
			}
			p.logf("postgres: ready on 127.0.0.1:%d in %v", p.port, time.Since(started).Round(time.Millisecond))
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("postgres exited at start: %s", p.lastLog())
		case <-ctx.Done():
			_ = p.stop()
			return fmt.Errorf("postgres not ready: %w: %s", ctx.Err(), p.lastLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ensureDatabase(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `select exists (select 1 from pg_database where datname = 'datamill')`).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up database datamill: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `create database datamill`); err != nil {
			return fmt.Errorf("postgres: create database datamill: %w", err)
		}
	}
	return nil
}

func (p *Postgres) adminURL() string {
	return fmt.Sprintf("postgres://datamill@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// URL is the connection URL of the datamill database.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://datamill@127.0.0.1:%d/datamill?sslmode=disable", p.port)
}

// Port is the port the server listens on.
func (p *Postgres) Port() int { return p.port }

// Dir is the cluster's directory (data and log).
func (p *Postgres) Dir() string { return p.dir }

// stop shuts the server down fast (SIGINT), then kills it after a timeout.
func (p *Postgres) stop() error {
	if p.cmd == nil {
		return nil
	}
	defer func() { p.cmd = nil }()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
		return nil
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("postgres did not stop within 20 s of SIGINT and was killed")
	}
}

// Restart stops the server and starts it again on the same port and data.
func (p *Postgres) Restart(ctx context.Context) error {
	if err := p.stop(); err != nil {
		return err
	}
	return p.start(ctx)
}

// Stop stops the server and removes its directory if StartPostgres made it.
func (p *Postgres) Stop() error {
	err := p.stop()
	p.cleanup()
	return err
}

func (p *Postgres) cleanup() {
	if p.tempDir {
		_ = os.RemoveAll(p.dir)
	}
}

func (p *Postgres) lastLog() string {
	b, _ := os.ReadFile(p.logFile())
	return lastLines(string(b), 20)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
