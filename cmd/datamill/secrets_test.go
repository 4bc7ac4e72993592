package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"maps"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
	"golang.org/x/crypto/bcrypt"
)

// runSecrets runs `datamill secrets --dir dir` and returns its output.
func runSecrets(t testing.TB, dir string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	if err := run(t.Context(), []string{"secrets", "--dir", dir}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("datamill secrets: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

// readSecrets reads every file of dir by name.
func readSecrets(t testing.TB, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

func TestSecretsMakesEveryFileWithoutPrintingOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	out := runSecrets(t, dir)
	files := readSecrets(t, dir)

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("the directory's mode is %v, want 0700", perm)
	}
	for name := range files {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm&0o022 != 0 {
			t.Errorf("%s is writable by others: %v", name, perm)
		}
	}
	if perm := statPerm(t, filepath.Join(dir, "ca-key.pem")); perm != 0o600 {
		t.Errorf("the CA's key has mode %v, want 0600: no container reads it", perm)
	}

	want := slices.Clone(certificateFiles)
	for _, f := range composeSecretFiles() {
		want = append(want, f.name)
	}
	if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("files %v, want %v", got, slices.Sorted(slices.Values(want)))
	}

	// Every password is its own, and none is printed.
	seen := map[string]string{}
	for name, v := range files {
		if v == "" {
			t.Errorf("%s is empty", name)
		}
		if strings.Contains(out, strings.TrimSpace(v)) {
			t.Errorf("the output prints the content of %s:\n%s", name, out)
		}
		if strings.HasSuffix(name, "_password") || strings.HasSuffix(name, "_key") || strings.HasSuffix(name, "_token") {
			if len(v) < 32 || strings.ContainsAny(v, " \n") {
				t.Errorf("%s: %d bytes, want a random secret of at least 32 on one line", name, len(v))
			}
			if other, ok := seen[v]; ok {
				t.Errorf("%s and %s hold the same secret", name, other)
			}
			seen[v] = name
		}
	}
	if !strings.Contains(out, "docker compose up -d") {
		t.Errorf("the output does not say how to start the stack:\n%s", out)
	}

	// Each role's URL: its role and password, TLS verified by the CA.
	for _, role := range composeRoles {
		raw := files["db_"+role+"_url"]
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("db_%s_url: %v", role, err)
		}
		pw, _ := u.User.Password()
		q := u.Query()
		if u.User.Username() != "datamill_"+role || pw != files["db_"+role+"_password"] || u.Host != "postgres:5432" ||
			q.Get("sslmode") != "verify-full" || q.Get("sslrootcert") != "/run/secrets/ca.pem" {
			t.Errorf("db_%s_url = %s, want datamill_%s with its password at postgres:5432, sslmode=verify-full, sslrootcert=/run/secrets/ca.pem",
				role, u.Redacted(), role)
		}
	}

	// Prometheus' web configuration checks the password of prometheus_password.
	var web struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal([]byte(files["prometheus_web.yml"]), &web); err != nil {
		t.Fatalf("prometheus_web.yml: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(web.Users["prometheus"]), []byte(files["prometheus_password"])); err != nil {
		t.Errorf("prometheus_web.yml: the hash of user prometheus does not match prometheus_password: %v", err)
	}

	// The extractor's tokens file holds the hash of the token.
	sum := sha256.Sum256([]byte(files["extractor_ingest_token"]))
	if line := "compose " + hex.EncodeToString(sum[:]); !slices.Contains(strings.Split(files["extractor_ingest_tokens"], "\n"), line) {
		t.Errorf("extractor_ingest_tokens = %q, want the line %q", files["extractor_ingest_tokens"], line)
	}

	// MinIO's KMS key: <name>:<base64 of 32 bytes>.
	name, key, _ := strings.Cut(files["minio_kms_key"], ":")
	if b, err := base64.StdEncoding.DecodeString(key); name == "" || err != nil || len(b) != 32 {
		t.Errorf("minio_kms_key is not <name>:<base64 of 32 bytes> (%d bytes, %v)", len(b), err)
	}

	// PostgreSQL's certificate: for the host postgres, signed by the CA,
	// with its key.
	cert, roots := postgresCert(t, files)
	for _, host := range []string{"postgres", "localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("postgres.pem for %s: %v", host, err)
		}
	}
	if _, err := tls.X509KeyPair([]byte(files["postgres.pem"]), []byte(files["postgres-key.pem"])); err != nil {
		t.Errorf("postgres-key.pem is not the key of postgres.pem: %v", err)
	}

	// Kafka's keystore: its key as PKCS#8, which Kafka's PEM keystore
	// reads, and its certificate, CN=kafka (the broker's principal on
	// its controller listener) for the compose service and the host.
	verifiesKafka(t, files, time.Now())
}

// verifiesKafka checks kafka-keystore.pem of files under ca.pem at now.
func verifiesKafka(t testing.TB, files map[string]string, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(files["ca.pem"])) {
		t.Fatal("ca.pem holds no certificate")
	}
	keyBlock, rest := pem.Decode([]byte(files["kafka-keystore.pem"]))
	certBlock, _ := pem.Decode(rest)
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" || certBlock == nil || certBlock.Type != "CERTIFICATE" {
		t.Fatalf("kafka-keystore.pem is not a PKCS#8 key then a certificate:\n%s", files["kafka-keystore.pem"])
	}
	if _, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes); err != nil {
		t.Errorf("kafka-keystore.pem: its key: %v", err)
	}
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(certBlock), pem.EncodeToMemory(keyBlock)); err != nil {
		t.Errorf("kafka-keystore.pem: the key is not the certificate's: %v", err)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.String() != "CN=kafka" {
		t.Errorf("kafka-keystore.pem: subject %q, want CN=kafka", cert.Subject)
	}
	for _, host := range []string{"kafka", "localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, CurrentTime: now}); err != nil {
			t.Errorf("kafka-keystore.pem for %s: %v", host, err)
		}
	}
}

func statPerm(t testing.TB, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestSecretsKeepsWhatIsThereAndRotatesWhatIsDeleted(t *testing.T) {
	dir := t.TempDir()
	runSecrets(t, dir)
	first := readSecrets(t, dir)

	out := runSecrets(t, dir)
	if again := readSecrets(t, dir); !maps.Equal(again, first) {
		for name := range first {
			if again[name] != first[name] {
				t.Errorf("a second run changed %s", name)
			}
		}
	}
	if !strings.Contains(out, " 0 made") {
		t.Errorf("a second run reports files made:\n%s", out)
	}

	// Rotating the loader's password: its URL follows, nothing else moves.
	if err := os.Remove(filepath.Join(dir, "db_loader_password")); err != nil {
		t.Fatal(err)
	}
	runSecrets(t, dir)
	rotated := readSecrets(t, dir)
	for name := range first {
		changed := rotated[name] != first[name]
		if want := name == "db_loader_password" || name == "db_loader_url"; changed != want {
			t.Errorf("after deleting db_loader_password, %s changed: %v, want %v", name, changed, want)
		}
	}
	if !strings.Contains(rotated["db_loader_url"], ":"+rotated["db_loader_password"]+"@") {
		t.Errorf("db_loader_url does not hold the new password")
	}

	// A new CA gets PostgreSQL a certificate of its own.
	for _, f := range []string{"ca.pem", "ca-key.pem"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	runSecrets(t, dir)
	renewed := readSecrets(t, dir)
	for _, f := range []string{"ca.pem", "postgres.pem", "postgres-key.pem", "kafka-keystore.pem"} {
		if renewed[f] == rotated[f] {
			t.Errorf("after a new CA, %s is the old one", f)
		}
	}
}

// writeShortLived replaces certFile (and keyFile) with a self-signed
// certificate valid one more day, as a CA when isCA.
func writeShortLived(t testing.TB, certFile, keyFile string, isCA bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "short-lived"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"postgres"}, IsCA: isCA, BasicConstraintsValid: isCA,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// postgresCert parses postgres.pem of files and a pool of ca.pem.
func postgresCert(t testing.TB, files map[string]string) (*x509.Certificate, *x509.CertPool) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(files["ca.pem"])) {
		t.Fatal("ca.pem holds no certificate")
	}
	block, _ := pem.Decode([]byte(files["postgres.pem"]))
	if block == nil {
		t.Fatal("postgres.pem holds no certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, roots
}

// verifiesPostgres checks that postgres.pem of dir is valid for the host
// postgres under ca.pem of dir for more than two weeks.
func verifiesPostgres(t testing.TB, dir string) {
	t.Helper()
	files := readSecrets(t, dir)
	cert, roots := postgresCert(t, files)
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "postgres", Roots: roots, CurrentTime: time.Now().Add(15 * 24 * time.Hour)}); err != nil {
		t.Errorf("postgres.pem in 15 days: %v", err)
	}
}

func TestSecretsRenewCertificatesAboutToExpire(t *testing.T) {
	dir := t.TempDir()
	runSecrets(t, dir)
	first := readSecrets(t, dir)

	// PostgreSQL's certificate expiring tomorrow is issued anew by the CA.
	writeShortLived(t, filepath.Join(dir, "postgres.pem"), filepath.Join(dir, "postgres-key.pem"), false)
	runSecrets(t, dir)
	renewed := readSecrets(t, dir)
	if renewed["ca.pem"] != first["ca.pem"] {
		t.Error("renewing PostgreSQL's certificate changed the CA")
	}
	verifiesPostgres(t, dir)

	// Kafka's keystore too: its certificate is found behind its key.
	key := filepath.Join(t.TempDir(), "key.pem")
	keystore := filepath.Join(dir, "kafka-keystore.pem")
	writeShortLived(t, keystore, key, false)
	short, err := os.ReadFile(keystore)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keystore, append(keyPEM, short...), 0o600); err != nil {
		t.Fatal(err)
	}
	runSecrets(t, dir)
	verifiesKafka(t, readSecrets(t, dir), time.Now().Add(15*24*time.Hour))

	// A CA expiring tomorrow is made anew, and the certificate with it.
	writeShortLived(t, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), true)
	runSecrets(t, dir)
	if readSecrets(t, dir)["postgres.pem"] == renewed["postgres.pem"] {
		t.Error("after a new CA, postgres.pem is the old one")
	}
	verifiesPostgres(t, dir)
	verifiesKafka(t, readSecrets(t, dir), time.Now().Add(15*24*time.Hour))
}

func TestSecretsUsage(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"help", "secrets"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "-dir") {
		t.Errorf("help secrets = %v, %q; want its flags", err, out.String())
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := run(t.Context(), []string{"secrets", "--dir", dir, "extra"}, nil, io.Discard, io.Discard); err != errUsage {
		t.Errorf("secrets extra = %v, want a usage error", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("secrets with a usage error made %s", dir)
	}
}

// A password edited by hand, ending in a newline, makes a URL without it.
func TestSecretsTrimTheNewlineOfAnEditedPassword(t *testing.T) {
	dir := t.TempDir()
	runSecrets(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "db_scorer_password"), []byte("chosen-by-hand\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "db_scorer_url")); err != nil {
		t.Fatal(err)
	}
	runSecrets(t, dir)
	u, err := url.Parse(readSecrets(t, dir)["db_scorer_url"])
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); pw != "chosen-by-hand" {
		t.Errorf("db_scorer_url holds the password %q, want %q", pw, "chosen-by-hand")
	}
}

// TestRandomSecretsNeverStartWithADash: compose hands secrets to commands
// as arguments (minio-init's mc), which took one starting with '-' for an
// option, refused it and printed it. Of 10,000 base64 strings, about 156
// would start with '-'.
func TestRandomSecretsNeverStartWithADash(t *testing.T) {
	for range 10_000 {
		s, err := randomSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 43 || s[0] == '-' {
			t.Fatalf("randomSecret() = %q, want 43 characters not starting with '-'", s)
		}
	}
}
