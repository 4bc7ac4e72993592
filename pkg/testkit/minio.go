package testkit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// minioStartTimeout bounds a MinIO start and its provisioning on a busy
// machine.
const minioStartTimeout = 2 * time.Minute

// MinIOServer is a running MinIO server of a test, provisioned by
// scripts/minio/minio.sh: TLS with its own CA, SSE-S3 by default on the
// bucket through MinIO's KMS, and the lake's users.
type MinIOServer struct {
	// Dir holds the server's files; its objects are under DataDir.
	Dir     string
	DataDir string
	// Endpoint is https://127.0.0.1:<port>.
	Endpoint string
	// CAFile is the PEM of the CA that signed the server's certificate.
	CAFile string
	Bucket string
	// Root is the administrator; Sink may only write and read under raw/,
	// Reader only read.
	Root, Sink, Reader Credentials
}

// Credentials are an S3 access key and its secret.
type Credentials struct {
	AccessKey, SecretKey string
}

// MinIOOptions configures MinIOWith.
type MinIOOptions struct {
	// AuditEndpoint, when set, is where MinIO posts its audit entries,
	// with Authorization: Bearer AuditToken.
	AuditEndpoint string
	AuditToken    string
	// WithoutKMS starts a server that cannot encrypt at rest, and leaves
	// the bucket without default encryption.
	WithoutKMS bool
	// RetentionDays, when positive, makes the bucket with Object Lock:
	// every object version is kept that many days in compliance mode.
	RetentionDays int
}

// Env is the S3_* configuration (pkg/lake's Config) of the server's bucket
// with credentials c, as KEY=value lines for an environ.
func (m *MinIOServer) Env(c Credentials) []string {
	return []string{
		"S3_ENDPOINT=" + m.Endpoint,
		"S3_BUCKET=" + m.Bucket,
		"S3_ACCESS_KEY=" + c.AccessKey,
		"S3_SECRET_KEY=" + c.SecretKey,
		"S3_CA_FILE=" + m.CAFile,
	}
}

// TLSConfig trusts the server's CA only.
func (m *MinIOServer) TLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(m.CAFile)
	if err != nil {
		t.Fatalf("read the MinIO CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", m.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// MinIO starts a provisioned MinIO server for the test in a temporary
// directory and stops it in t.Cleanup. Without the binaries (make minio
// builds them) the test is skipped locally and fails in CI.
func MinIO(t testing.TB) *MinIOServer {
	t.Helper()
	return MinIOWith(t, MinIOOptions{})
}

// MinIOWith is MinIO with options.
func MinIOWith(t testing.TB, opt MinIOOptions) *MinIOServer {
	t.Helper()
	script := minioScript()
	for _, tool := range []string{"bash", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			Unavailable(t, fmt.Sprintf("MinIO needs %s on PATH", tool))
		}
	}
	if err := exec.Command(script, "bin").Run(); err != nil { // #nosec G204 -- the repository's scripts/minio/minio.sh
		Unavailable(t, "MinIO and mc are not built: run make minio ("+script+" fetch)")
	}

	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatalf("find a port for MinIO: %v", err)
	}
	args := []string{"run", "--dir", dir, "--port", strconv.Itoa(port)}
	if opt.AuditEndpoint != "" {
		tokenFile := filepath.Join(dir, "audit.token")
		if err := os.WriteFile(tokenFile, []byte(opt.AuditToken), 0o600); err != nil {
			t.Fatalf("write the audit token: %v", err)
		}
		args = append(args, "--audit-endpoint", opt.AuditEndpoint, "--audit-token-file", tokenFile)
	}
	if opt.WithoutKMS {
		args = append(args, "--kms", "off")
	}
	cmd := exec.Command(script, args...) // #nosec G204 -- the repository's scripts/minio/minio.sh
	log := &lineLog{t: t}
	cmd.Stdout, cmd.Stderr = log, log
	// The server dies with the test binary, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		log.stop()
	})

	m := &MinIOServer{
		Dir:      dir,
		DataDir:  filepath.Join(dir, "data"),
		Endpoint: "https://127.0.0.1:" + strconv.Itoa(port),
		CAFile:   filepath.Join(dir, "ca.crt"),
	}
	ctx, cancel := context.WithTimeout(t.Context(), minioStartTimeout)
	defer cancel()
	if err := waitMinIOReady(ctx, m, exited); err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	out, err := exec.CommandContext(ctx, script, "provision", "--dir", dir, // #nosec G204 -- the repository's scripts/minio/minio.sh
		"--retention-days", strconv.Itoa(opt.RetentionDays)).CombinedOutput()
	if err != nil {
		t.Fatalf("provision MinIO: %v: %s", err, out)
	}
	root, err := readEnvFile(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := readEnvFile(filepath.Join(dir, "sink.env"))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := readEnvFile(filepath.Join(dir, "reader.env"))
	if err != nil {
		t.Fatal(err)
	}
	m.Bucket = sink["S3_BUCKET"]
	m.Root = Credentials{root["MINIO_ROOT_USER"], root["MINIO_ROOT_PASSWORD"]}
	m.Sink = Credentials{sink["S3_ACCESS_KEY"], sink["S3_SECRET_KEY"]}
	m.Reader = Credentials{reader["S3_ACCESS_KEY"], reader["S3_SECRET_KEY"]}
	return m
}

// waitMinIOReady polls the server's readiness until it answers 200, the
// server exits or ctx ends.
func waitMinIOReady(ctx context.Context, m *MinIOServer, exited <-chan error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var client *http.Client
	var last error
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("server exited while starting: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready (%v): %w", last, ctx.Err())
		case <-tick.C:
		}
		if client == nil {
			// The CA is written by the script before the server starts.
			pool, err := caPool(m.CAFile)
			if err != nil {
				last = err
				continue
			}
			client = &http.Client{
				Timeout:   5 * time.Second,
				Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
			}
			defer client.CloseIdleConnections()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/minio/health/ready", nil)
		if err != nil {
			return fmt.Errorf("readiness request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("readiness answered %s", resp.Status)
	}
}

func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file) // #nosec G304 -- a file minio.sh wrote into the test's directory
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", file)
	}
	return pool, nil
}

// minioScript is scripts/minio/minio.sh of this checkout.
func minioScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "minio", "minio.sh")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readEnvFile reads KEY=value lines.
func readEnvFile(file string) (map[string]string, error) {
	b, err := os.ReadFile(file) // #nosec G304 -- a file minio.sh wrote into the test's directory
	if err != nil {
		return nil, fmt.Errorf("read MinIO's %s: %w", filepath.Base(file), err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil, errors.New("empty " + file)
	}
	return env, nil
}

// lineLog sends what the server writes to the test's log, line by line,
// until the test ends.
type lineLog struct {
	t       testing.TB
	mu      sync.Mutex
	partial []byte
	done    bool
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(p), nil
	}
	l.partial = append(l.partial, p...)
	for {
		line, rest, ok := bytes.Cut(l.partial, []byte{'\n'})
		if !ok {
			break
		}
		l.t.Logf("minio: %s", line)
		l.partial = rest
	}
	return len(p), nil
}

func (l *lineLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
}
