package embedded

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres is returned by StartPostgres when the machine has no
// PostgreSQL server binaries.
var ErrNoPostgres = errors.New("no PostgreSQL server binaries (initdb, postgres) on PATH or under /usr/lib/postgresql/*/bin: " +
	"install them (Debian, Ubuntu: apt-get install postgresql) or set DATABASE_URL to an existing server")

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// Dir is the data directory. One that holds a cluster already is
	// reused, so its data survives; a missing or empty one is initialised.
	// Empty means a new temporary directory, removed by Stop.
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// CA signs the certificate the server presents. Nil means the
	// cluster's own, kept in <Dir>/tls, so that a reused directory keeps
	// the CA its clients trust.
	CA *CA
	// Logf, when set, receives progress messages.
	Logf func(format string, args ...any)
}

// Postgres is a PostgreSQL server run from the machine's binaries, with a
// superuser and a database both named datamill, listening on 127.0.0.1
// only. It is secure by default: TCP connections must use TLS (the server's
// certificate signed by the cluster's CA) and every connection, the Unix
// socket's too, authenticates with SCRAM-SHA-256 and the superuser's random
// password, kept in the data directory. When the pgaudit extension is
// installed, DDL and role changes are audited. Its log is postgres.log in
// the data directory: every login is logged, and each line of a session
// starts with role@database and the client's host, so that a refused
// login or statement names who it was.
type Postgres struct {
	bin      string // directory of initdb and postgres
	dir      string
	port     int
	tempDir  bool // dir was made by StartPostgres and is removed by Stop
	cred     *syscall.Credential
	logf     func(string, ...any)
	ca       *CA
	password string
	audit    bool // the pgaudit library is installed and loaded

	mu     sync.Mutex
	server *exec.Cmd
	exited chan struct{} // closed when server has exited
}

// Timeouts of the server's life cycle.
const (
	stopTimeout = 15 * time.Second
	readyPoll   = 25 * time.Millisecond
	// connectTimeout bounds one readiness probe: something that accepts
	// connections on the port but never answers must not stall the start.
	connectTimeout = 2 * time.Second
	// bindAttempts is how often a server on a port picked by StartPostgres
	// is retried on another one when something else took the port first.
	bindAttempts = 3
)

// StartPostgres initialises the cluster in opts.Dir when it holds none yet,
// starts the server and returns once the datamill database accepts
// connections. ctx bounds the start only; the server runs until Stop, or
// until this process dies: it is killed with it.
//
// PostgreSQL refuses to run as root, so when this process is root the
// server runs as the postgres user, which then owns the data directory.
//
// Besides the cluster, the data directory holds what its clients need:
// superuser-password (0600, the password on one line), pgpass (0600, the
// same for libpq and pgx's passfile) and, unless opts.CA is set, the
// cluster's CA in tls/. pg_hba.conf and the server's certificate and key
// (0600, owned by the server's user) are written afresh at every start.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := findPostgres("/usr/lib/postgresql")
	if err != nil {
		return nil, err
	}
	p := &Postgres{bin: bin, dir: opts.Dir, port: opts.Port, logf: opts.Logf, ca: opts.CA}
	if p.logf == nil {
		p.logf = func(string, ...any) {}
	}
	if os.Geteuid() == 0 {
		if p.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if p.dir == "" {
		if p.dir, err = os.MkdirTemp("", "datamill-pg-"); err != nil {
			return nil, fmt.Errorf("postgres data dir: %w", err)
		}
		p.tempDir = true
	}
	if p.dir, err = filepath.Abs(p.dir); err != nil {
		return nil, fmt.Errorf("postgres data dir: %w", err)
	}
	if err := p.initdb(ctx); err != nil {
		p.removeTemp()
		return nil, err
	}
	if err := p.secure(); err != nil {
		p.removeTemp()
		return nil, err
	}
	if p.audit = hasPgaudit(p.bin); !p.audit {
		p.logf("postgres: pgaudit is not installed (Debian, Ubuntu: apt-get install postgresql-15-pgaudit), so DDL and role changes are not audited")
	}
	for attempt := 1; ; attempt++ {
		if opts.Port == 0 {
			if p.port, err = freePort(); err != nil {
				p.removeTemp()
				return nil, err
			}
		}
		err = p.start(ctx)
		if err == nil {
			return p, nil
		}
		if opts.Port != 0 || attempt == bindAttempts || !errors.Is(err, errPortTaken) {
			p.removeTemp()
			return nil, err
		}
		p.logf("postgres: port %d was taken meanwhile, trying another", p.port)
	}
}

// findPostgres returns the directory holding initdb and postgres: the one
// of initdb on PATH, else the newest version under root (Debian's layout,
// root/<version>/bin, kept off PATH).
func findPostgres(root string) (string, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		// Prefer the real directory, so that both programs are of one
		// version even when PATH holds symlinks.
		dirs := []string{filepath.Dir(initdb)}
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			dirs = append([]string{filepath.Dir(real)}, dirs...)
		}
		for _, d := range dirs {
			if hasPostgres(d) {
				return d, nil
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "bin"))
	slices.SortFunc(dirs, func(a, b string) int { // newest first
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, d := range dirs {
		if hasPostgres(d) {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func hasPostgres(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions orders dotted version numbers such as 9.6 and 15.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// postgresUser returns the credentials to run PostgreSQL with when this
// process is root.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and no postgres user to run it as (apt-get install postgresql creates one): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user id %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres group id %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	addr, err := FreeAddr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// command prepares one of the PostgreSQL programs: as the postgres user
// when this process is root, in a process group of its own (a Ctrl-C in
// the terminal is for this process, which stops the server in its own
// time), killed when this process dies, with a neutral environment.
func (p *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...) // #nosec G204 -- PostgreSQL's own binaries (initdb, pg_ctl), arguments passed without a shell
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Env = []string{"LC_ALL=C.UTF-8", "TZ=UTC"}
	for _, kv := range os.Environ() {
		// PG* would steer the programs (PGDATA, PGPORT, PGOPTIONS...),
		// LANG and LC_* the cluster's locale.
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") && !strings.HasPrefix(kv, "TZ=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// spawn starts cmd and returns a channel that receives its exit. Linux
// sends the parent-death signal when the thread that started the child
// ends, not the process (go.dev/issue/27505), so cmd is started from a
// goroutine locked to its thread until cmd has exited.
func spawn(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// initdb creates the cluster, with a new random superuser password, unless
// the data directory holds one already, whose password it reads back.
func (p *Postgres) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.dir, "PG_VERSION")); err == nil {
		if p.password, err = readPassword(p.PasswordFile()); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("postgres data dir %s holds a cluster without a password file (made before clusters had passwords): remove the directory to make a new one", p.dir)
			}
			return err
		}
		p.logf("postgres: reusing the cluster in %s", p.dir)
		return nil
	}
	if entries, err := os.ReadDir(p.dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("postgres data dir %s is not empty and holds no cluster: empty it or choose another", p.dir)
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("postgres data dir: %w", err)
	}
	if err := p.handOver(); err != nil {
		return err
	}
	p.password = rand.Text()
	pwfile, removePwfile, err := p.passwordForInitdb()
	if err != nil {
		return err
	}
	defer removePwfile()
	args := []string{
		"-D", p.dir, "-U", "datamill", "--pwfile=" + pwfile,
		"--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
		"-E", "UTF8", "--locale=C.UTF-8",
	}
	if p.tempDir {
		// Skip initdb's final sync: a temporary cluster does not outlive a
		// machine crash anyway. The server itself always runs with fsync.
		args = append(args, "--no-sync")
	}
	var out strings.Builder
	cmd := p.command(ctx, "initdb", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	exited, err := spawn(cmd)
	if err == nil {
		err = <-exited
	}
	if err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", p.dir, cmp.Or(ctx.Err(), err), lastLines(out.String(), 20))
	}
	// Kept by this process's user, not the server's: clients read it.
	if err := os.WriteFile(p.PasswordFile(), []byte(p.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("store the postgres superuser password: %w", err)
	}
	p.logf("postgres: initialised a cluster in %s in %v (superuser password in %s)", p.dir, time.Since(start).Round(time.Millisecond), p.PasswordFile())
	return nil
}

// passwordForInitdb writes the new superuser password where initdb, run as
// the server's user, can read it (the data directory must be empty), and
// returns its path and how to remove it.
func (p *Postgres) passwordForInitdb() (string, func(), error) {
	dir, err := os.MkdirTemp("", "datamill-pwfile-")
	if err != nil {
		return "", nil, fmt.Errorf("initdb password file: %w", err)
	}
	remove := func() { _ = os.RemoveAll(dir) }
	file := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(file, []byte(p.password+"\n"), 0o600); err != nil {
		remove()
		return "", nil, fmt.Errorf("initdb password file: %w", err)
	}
	if err := p.chown(dir, file); err != nil {
		remove()
		return "", nil, fmt.Errorf("initdb password file: %w", err)
	}
	return file, remove, nil
}

// readPassword reads a password file: its first line.
func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file) // #nosec G304 -- the cluster's own password file
	if err != nil {
		return "", fmt.Errorf("read the postgres superuser password: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	if pw == "" {
		return "", fmt.Errorf("postgres superuser password file %s is empty", file)
	}
	return pw, nil
}

// chown gives files to the user the server runs as, when that is not this
// process's.
func (p *Postgres) chown(files ...string) error {
	if p.cred == nil {
		return nil
	}
	for _, f := range files {
		if err := os.Chown(f, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("give %s to the postgres user: %w", f, err)
		}
	}
	return nil
}

// hbaConf is the cluster's pg_hba.conf, written at every start: TLS and
// SCRAM only, nothing trusted.
const hbaConf = `# Written by datamill at every start: edits are lost.
# TCP only over TLS, every connection with a SCRAM password; nothing trusted.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
hostssl all       all   127.0.0.1/32  scram-sha-256
hostssl all       all   ::1/128       scram-sha-256
`

// Files in the data directory.
const (
	passwordFileName = "superuser-password"
	passFileName     = "pgpass"
	serverCertName   = "server.crt"
	serverKeyName    = "server.key"
)

// secure writes pg_hba.conf, the server's certificate and key (signed by
// the CA, which is the cluster's own in <dir>/tls unless one was given) and
// a pgpass file of the superuser's password.
func (p *Postgres) secure() error {
	hba := filepath.Join(p.dir, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	if p.ca == nil {
		ca, err := NewCA(filepath.Join(p.dir, "tls"))
		if err != nil {
			return fmt.Errorf("postgres CA: %w", err)
		}
		p.ca = ca
	}
	// A name of its own, so that clusters sharing a CA never read each
	// other's files; the pair is moved into the data directory.
	certFile, keyFile, err := p.ca.Issue("postgres-"+strings.ToLower(rand.Text()[:8]), "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	defer func() {
		_ = os.Remove(certFile)
		_ = os.Remove(keyFile)
	}()
	for _, f := range []struct {
		from, to string
		perm     os.FileMode
	}{
		{certFile, serverCertName, 0o644},
		{keyFile, serverKeyName, 0o600},
	} {
		b, err := os.ReadFile(f.from) // #nosec G304 -- a file the CA just wrote
		if err != nil {
			return fmt.Errorf("postgres server certificate: %w", err)
		}
		to := filepath.Join(p.dir, f.to)
		// Written afresh, so that the mode is f.perm whatever it was.
		_ = os.Remove(to)
		// #nosec G703 G306 -- into the cluster's own data directory; the certificate is public, the key 0600
		if err := os.WriteFile(to, b, f.perm); err != nil {
			return fmt.Errorf("postgres server certificate: %w", err)
		}
	}
	if err := p.chown(hba, filepath.Join(p.dir, serverCertName), filepath.Join(p.dir, serverKeyName)); err != nil {
		return err
	}
	// Any host, port and database: the file belongs to this cluster. A
	// password of rand.Text holds no ':' or '\' to escape.
	if err := os.WriteFile(p.PassFile(), []byte("*:*:*:datamill:"+p.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the pgpass file: %w", err)
	}
	return nil
}

// hasPgaudit reports whether the pgaudit library is installed beside the
// server binaries in bin: in <bin>/../lib (Debian's layout) or in the
// directory pg_config names.
func hasPgaudit(bin string) bool {
	dirs := []string{filepath.Join(filepath.Dir(bin), "lib")}
	// #nosec G204 -- PostgreSQL's own pg_config, no shell
	if out, err := exec.Command(filepath.Join(bin, "pg_config"), "--pkglibdir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pgaudit.so")); err == nil {
			return true
		}
	}
	return false
}

// handOver gives the data directory to the postgres user when this process
// is root, and makes its parents traversable for that user.
func (p *Postgres) handOver() error {
	if p.cred == nil {
		return nil
	}
	if err := p.chown(p.dir); err != nil {
		return err
	}
	for d := filepath.Dir(p.dir); d != filepath.Dir(d); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("postgres data dir: %w", err)
		}
		if fi.Mode().Perm()&0o001 != 0 {
			continue
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("let the postgres user traverse %s: %w", d, err)
		}
		p.logf("postgres: let other users traverse %s (chmod o+x) to reach %s", d, p.dir)
	}
	return nil
}

// errPortTaken is a start that failed because the port was in use.
var errPortTaken = errors.New("port in use")

// start runs the server and waits until the datamill database accepts
// connections, creating it on first start.
func (p *Postgres) start(ctx context.Context) error {
	logPath := p.LogFile()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) // #nosec G304 -- the log in the cluster's own directory
	if err != nil {
		return fmt.Errorf("postgres log: %w", err)
	}
	defer log.Close()
	if p.cred != nil {
		if err := log.Chown(int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("postgres log: %w", err)
		}
	}
	logStart, _ := log.Seek(0, io.SeekEnd)
	since := func() string { return p.logSince(logStart) }

	args := []string{
		"-D", p.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(p.port),
		// A small cluster for one developer or one test binary. Durability
		// stays as in production: tests kill processes and count rows.
		"-c", "max_connections=200",
		"-c", "shared_buffers=64MB",
		"-c", "max_wal_size=1GB",
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "log_timezone=UTC",
		// TLS and SCRAM only, as pg_hba.conf says.
		"-c", "ssl=on",
		"-c", "ssl_cert_file=" + filepath.Join(p.dir, serverCertName),
		"-c", "ssl_key_file=" + filepath.Join(p.dir, serverKeyName),
		"-c", "ssl_min_protocol_version=TLSv1.2",
		"-c", "password_encryption=scram-sha-256",
		"-c", "hba_file=" + filepath.Join(p.dir, "pg_hba.conf"),
		// A failed statement is not logged: it may set a role's password
		// (pgaudit redacts those only in the statements that succeed).
		"-c", "log_min_error_statement=panic",
		// Every line of a session names who (role@database, client
		// host): a denied statement's ERROR and a refused login's
		// FATAL are the audit trail of the denial. Each login is
		// logged too, with its TLS.
		"-c", "log_line_prefix=%m [%p] %q%u@%d %h ",
		"-c", "log_connections=on",
	}
	if p.audit {
		// DDL and role changes, without the statements' parameters; the
		// extension need not be created for the audit to be logged.
		args = append(args,
			"-c", "shared_preload_libraries=pgaudit",
			"-c", "pgaudit.log=ddl, role",
			"-c", "pgaudit.log_parameter=off",
		)
	}
	// The socket lives in the data dir, unless its path is longer than a
	// Unix socket address allows; clients here use TCP anyway.
	if len(p.dir)+len("/.s.PGSQL.")+len(strconv.Itoa(p.port)) < 107 {
		args = append(args, "-c", "unix_socket_directories="+p.dir)
	} else {
		args = append(args, "-c", "unix_socket_directories=")
	}
	// Not bound to ctx: the server outlives the start.
	cmd := p.command(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = log, log
	began := time.Now()
	waited, err := spawn(cmd)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		<-waited
		close(exited)
	}()
	p.server, p.exited = cmd, exited

	// Probes end when the server exits, so that its error is reported at
	// once rather than a probe's.
	probeCtx, cancelProbes := context.WithCancel(ctx)
	defer cancelProbes()
	go func() {
		select {
		case <-exited:
			cancelProbes()
		case <-probeCtx.Done():
		}
	}()
	for {
		err := p.ensureDatabase(probeCtx)
		if err == nil {
			p.logf("postgres: ready on 127.0.0.1:%d in %v (log: %s)", p.port, time.Since(began).Round(time.Millisecond), logPath)
			return nil
		}
		select {
		case <-exited:
			p.server = nil
			tail := since()
			if strings.Contains(tail, "Address already in use") {
				return fmt.Errorf("postgres on 127.0.0.1:%d exited at start: %w:\n%s", p.port, errPortTaken, tail)
			}
			return fmt.Errorf("postgres on 127.0.0.1:%d exited at start (%s):\n%s", p.port, cmd.ProcessState, tail)
		case <-ctx.Done():
			_ = p.stop()
			return fmt.Errorf("postgres on 127.0.0.1:%d not ready: %w (last error: %v):\n%s", p.port, ctx.Err(), err, since())
		case <-time.After(readyPoll):
		}
	}
}

// ensureDatabase connects to the server and creates the datamill database
// when it is missing.
func (p *Postgres) ensureDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DatabaseURL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `select exists (select 1 from pg_database where datname = 'datamill')`).Scan(&exists); err != nil {
		return fmt.Errorf("look up database datamill: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `create database datamill`); err != nil {
			return fmt.Errorf("create database datamill: %w", err)
		}
	}
	return nil
}

// DatabaseURL is the connection URL of database db as the superuser
// datamill: its password in the URL, TLS verified against the cluster's
// CA. It holds the password: never log it.
func (p *Postgres) DatabaseURL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("datamill", p.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=verify-full&sslrootcert=" + queryPath(p.ca.CertFile()),
	}
	return u.String()
}

// PassFileURL is DatabaseURL without the password, which clients read
// from the cluster's pgpass file instead (the passfile parameter, which pgx
// and libpq know): a URL to print or to put in an environment.
func (p *Postgres) PassFileURL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("datamill"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=verify-full&sslrootcert=" + queryPath(p.ca.CertFile()) + "&passfile=" + queryPath(p.PassFile()),
	}
	return u.String()
}

// queryPath escapes a file's path as a URL query value, keeping its
// slashes readable.
func queryPath(path string) string {
	return strings.ReplaceAll(url.QueryEscape(path), "%2F", "/")
}

// URL is the connection URL of the datamill database (see DatabaseURL).
func (p *Postgres) URL() string { return p.DatabaseURL("datamill") }

// Password is the superuser datamill's password.
func (p *Postgres) Password() string { return p.password }

// PasswordFile is the file (0600) holding the superuser's password on its
// first line, in the data directory.
func (p *Postgres) PasswordFile() string { return filepath.Join(p.dir, passwordFileName) }

// PassFile is a pgpass file (0600) of the superuser's password, for
// clients such as psql (PGPASSFILE) and PassFileURL.
func (p *Postgres) PassFile() string { return filepath.Join(p.dir, passFileName) }

// CAFile is the certificate of the CA that signed the server's
// certificate, what clients verify it with (sslrootcert).
func (p *Postgres) CAFile() string { return p.ca.CertFile() }

// Audited reports whether pgaudit logs the cluster's DDL and role changes
// to its log.
func (p *Postgres) Audited() bool { return p.audit }

// Port is the port the server listens on, on 127.0.0.1.
func (p *Postgres) Port() int { return p.port }

// PID is the server's (the postmaster's) process id; 0 when it is not
// running.
func (p *Postgres) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server == nil || p.server.Process == nil {
		return 0
	}
	return p.server.Process.Pid
}

// Dir is the data directory.
func (p *Postgres) Dir() string { return p.dir }

// LogFile is the path of the server's log.
func (p *Postgres) LogFile() string { return filepath.Join(p.dir, "postgres.log") }

// Restart stops the server and starts it again on the same port and data,
// as an operator restarting the database would; connections are dropped.
func (p *Postgres) Restart(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.stop(); err != nil {
		return err
	}
	return p.start(ctx)
}

// Stop shuts the server down and removes the data directory if
// StartPostgres made it. It is safe to call more than once.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.stop()
	p.removeTemp()
	return err
}

// stop asks for a fast shutdown (SIGINT: roll back open transactions,
// checkpoint, exit) and kills the server when it takes too long.
func (p *Postgres) stop() error {
	if p.server == nil {
		return nil
	}
	server := p.server
	p.server = nil
	select {
	case <-p.exited:
		return fmt.Errorf("postgres on 127.0.0.1:%d had exited (%s): see %s", p.port, server.ProcessState, p.LogFile())
	default:
	}
	pid := server.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("postgres on 127.0.0.1:%d did not stop within %v of SIGINT and was killed", p.port, stopTimeout)
	}
}

func (p *Postgres) removeTemp() {
	if p.tempDir {
		_ = os.RemoveAll(p.dir)
	}
}

// logSince returns the last lines the server logged after offset.
func (p *Postgres) logSince(offset int64) string {
	f, err := os.Open(p.LogFile())
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, 1<<20))
	return lastLines(string(b), 20)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
