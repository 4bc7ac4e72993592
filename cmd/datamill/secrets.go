package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
)

// The PostgreSQL roles of a deployment, as pkg/pg declares them: the
// migration owner, one role per service that writes, and the read-only
// role of Grafana and the report. docker-compose.yml gives each service the
// URL of its own role (secrets/db_<role>_url).
var composeRoles = []string{"owner", "loader", "scorer", "ecometer", "lake", "reader"}

// secretFile is one file of a compose secrets directory: made when it is
// missing, or, for a file derived from others, when one of those was made
// in the same run (a rotated password gets its URL anew).
type secretFile struct {
	name string
	// from lists the files this one is computed from.
	from []string
	make func(read func(name string) string) ([]byte, error)
}

// composeSecretFiles lists the files of the directory, each after those it
// is made from. The CA's and the servers' certificates (certificateFiles)
// are made apart.
func composeSecretFiles() []secretFile {
	password := func(func(string) string) ([]byte, error) { return randomSecret() }
	files := []secretFile{
		// The superuser: the postgres container alone reads it.
		{name: "postgres_password", make: password},
	}
	for _, role := range composeRoles {
		pw := "db_" + role + "_password"
		files = append(files,
			secretFile{name: pw, make: password},
			secretFile{name: "db_" + role + "_url", from: []string{pw}, make: func(read func(string) string) ([]byte, error) {
				return []byte(composeDatabaseURL("datamill_"+role, read(pw))), nil
			}},
		)
	}
	// Kafka's SCRAM users: the admin, whose credential the broker is
	// formatted with, and each principal, which the init job creates.
	for _, p := range append([]string{kafka.Admin}, kafka.Principals()...) {
		files = append(files, secretFile{name: kafkaPasswordFile(p), make: password})
	}
	// The Kafka UI's SASL login, a client property its config tree reads.
	uiPassword := kafkaPasswordFile(kafka.UI)
	files = append(files, secretFile{name: "kafka_user_ui_jaas", from: []string{uiPassword}, make: func(read func(string) string) ([]byte, error) {
		return []byte(scramLogin(kafka.UI, read(uiPassword))), nil
	}})
	return append(files,
		secretFile{name: "grafana_admin_password", make: password},
		// The schema registry's HTTP login, the one user the services and
		// the Kafka UI share, and its realm's users file.
		secretFile{name: "schema_registry_password", make: password},
		secretFile{name: "schema_registry_users", from: []string{"schema_registry_password"}, make: func(read func(string) string) ([]byte, error) {
			return fmt.Appendf(nil, "%s: %s,%s\n", registryUser, read("schema_registry_password"), registryUser), nil
		}},
		secretFile{name: "pgadmin_password", make: password},
		secretFile{name: "kafka_ui_password", make: password},
		secretFile{name: "prometheus_password", make: password},
		secretFile{name: "prometheus_web.yml", from: []string{"prometheus_password"}, make: func(read func(string) string) ([]byte, error) {
			hash, err := bcrypt.GenerateFromPassword([]byte(read("prometheus_password")), bcrypt.DefaultCost)
			if err != nil {
				return nil, fmt.Errorf("bcrypt: %w", err)
			}
			return fmt.Appendf(nil, "# Prometheus' web configuration (--web.config.file): basic auth for\n"+
				"# user %s, with the password of prometheus_password.\nbasic_auth_users:\n  %s: %s\n",
				prometheusUser, prometheusUser, hash), nil
		}},
		secretFile{name: "minio_root_password", make: password},
		secretFile{name: "minio_kms_key", make: func(func(string) string) ([]byte, error) {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, fmt.Errorf("random key: %w", err)
			}
			return []byte("datamill-lake:" + base64.StdEncoding.EncodeToString(key)), nil
		}},
		secretFile{name: "lake_sink_secret_key", make: password},
		secretFile{name: "lake_reader_secret_key", make: password},
		secretFile{name: "lake_audit_token", make: password},
		secretFile{name: "extractor_ingest_token", make: password},
		secretFile{name: "extractor_ingest_tokens", from: []string{"extractor_ingest_token"}, make: func(read func(string) string) ([]byte, error) {
			sum := sha256.Sum256([]byte(read("extractor_ingest_token")))
			return fmt.Appendf(nil, "# <producer id> <sha256 hex of its token>, one a line\n%s %s\n",
				ingestProducer, hex.EncodeToString(sum[:])), nil
		}},
	)
}

const (
	// registryUser is the user of the schema registry's basic auth in
	// compose, and the role its realm requires.
	registryUser = "datamill"
	// prometheusUser is the user of Prometheus' basic auth in compose.
	prometheusUser = "prometheus"
	// ingestProducer is the id of the ingest token secrets makes.
	ingestProducer = "compose"
	// composeCAFile is where compose mounts the CA's certificate.
	composeCAFile = "/run/secrets/ca.pem"
)

// kafkaPasswordFile is the name of the file of a Kafka principal's
// password in the secrets directory, which the init job reads from
// KAFKA_PRINCIPALS_DIR.
// (kafka_ui_password is the Kafka UI's login.)
func kafkaPasswordFile(principal string) string { return "kafka_user_" + principal + "_password" }

// scramLogin is a Kafka client's sasl.jaas.config for user with
// SCRAM-SHA-512. The passwords `datamill secrets` makes need no quoting.
func scramLogin(user, password string) string {
	return fmt.Sprintf("org.apache.kafka.common.security.scram.ScramLoginModule required username=%q password=%q;", user, password)
}

// composeDatabaseURL is the URL a compose service connects with as role:
// to the postgres service over TLS, its certificate checked against the
// stack's CA.
func composeDatabaseURL(role, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(role, password),
		Host:     "postgres:5432",
		Path:     "/datamill",
		RawQuery: "sslmode=verify-full&sslrootcert=" + composeCAFile,
	}
	return u.String()
}

// randomSecret is 32 random bytes as unpadded URL-safe base64: 43 letters,
// digits, '-' and '_', safe in URLs and configuration files as they are.
// It never starts with '-': a command given it as an argument would take it
// for an option, refuse it and print it (compose's minio-init did, with
// MinIO's root password, one start in 64).
func randomSecret() ([]byte, error) {
	b := make([]byte, 32)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("random secret: %w", err)
		}
		if s := base64.RawURLEncoding.EncodeToString(b); s[0] != '-' {
			return []byte(s), nil
		}
	}
}

// secretsResult tells which files a run made and which it kept.
type secretsResult struct {
	made, kept []string
}

// makeSecrets fills dir with the secrets of docker-compose.yml: the files
// it lacks are made, the others kept, so that running it again changes
// nothing and deleting a file rotates it (with the files made from it).
//
// The directory is 0700, which keeps the files from every other user of
// the host. The files themselves are 0644 but for the CA's key: compose
// bind-mounts a file secret as it is on the host, owner and mode included,
// and the containers run as users of their own (65532, grafana's 472,
// postgres' 999, …), which could not read a file of the host's user with
// mode 0600.
func makeSecrets(dir string) (secretsResult, error) {
	var res secretsResult
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, fmt.Errorf("secrets directory: %w", err)
	}
	// A directory made earlier with a looser mode is closed too.
	if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- a directory: 0700 lets its owner alone in
		return res, fmt.Errorf("secrets directory: %w", err)
	}
	values := map[string]string{}
	read := func(name string) string { return values[name] }
	made := map[string]bool{}
	for _, f := range composeSecretFiles() {
		path := filepath.Join(dir, f.name)
		data, err := os.ReadFile(path) // #nosec G304 -- a file of the secrets directory the operator names
		switch {
		case err == nil && !slices.ContainsFunc(f.from, func(n string) bool { return made[n] }):
			// A file edited by hand may end in a newline, which the
			// containers drop too.
			values[f.name] = strings.TrimRight(string(data), "\r\n")
			res.kept = append(res.kept, f.name)
			continue
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return res, fmt.Errorf("read %s: %w", path, err)
		}
		if data, err = f.make(read); err != nil {
			return res, fmt.Errorf("make %s: %w", f.name, err)
		}
		if err := writeSecret(path, data); err != nil {
			return res, err
		}
		values[f.name], made[f.name] = string(data), true
		res.made = append(res.made, f.name)
	}
	caMade, err := makeCertificates(dir)
	if err != nil {
		return res, err
	}
	for _, name := range certificateFiles {
		if slices.Contains(caMade, name) {
			res.made = append(res.made, name)
		} else {
			res.kept = append(res.kept, name)
		}
	}
	return res, nil
}

// writeSecret writes a file readable by the containers (see makeSecrets),
// replacing one that was there.
func writeSecret(path string, data []byte) error {
	// #nosec G306 G703 -- a file of the secrets directory the operator names, 0700; containers running as their own users read it through a bind mount
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	return nil
}

// renewBefore is how long before a certificate expires `datamill secrets`
// replaces it: the stack's CA and its certificates are valid 90 days.
const renewBefore = 14 * 24 * time.Hour

// expiresSoon tells whether the certificate of a PEM file expires within
// renewBefore; a missing file does not.
func expiresSoon(file string, now time.Time) (bool, error) {
	data, err := os.ReadFile(file) // #nosec G304 -- a file of the secrets directory the operator names
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read certificate: %w", err)
	}
	// The first certificate: a keystore begins with its key.
	var block *pem.Block
	for {
		block, data = pem.Decode(data)
		if block == nil || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		return false, fmt.Errorf("%s: no PEM certificate", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false, fmt.Errorf("%s: %w", file, err)
	}
	return now.Add(renewBefore).After(cert.NotAfter), nil
}

// certificateFiles are the files of the CA and of the servers'
// certificates in a secrets directory.
var certificateFiles = []string{"ca.pem", "ca-key.pem", "postgres.pem", "postgres-key.pem", kafkaKeystore}

// kafkaKeystore is the Kafka broker's PEM keystore (ssl.keystore.type=PEM):
// its key as PKCS#8, which Kafka reads, then its certificate.
const kafkaKeystore = "kafka-keystore.pem"

// makeCertificates keeps the stack's CA in dir (made when missing or about
// to expire) and the servers' certificates and keys signed by it (issued
// when missing, about to expire, or when the CA is new): PostgreSQL's,
// and Kafka's as a keystore, and lists the files it made.
func makeCertificates(dir string) ([]string, error) {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	now := time.Now()
	old, err := expiresSoon(filepath.Join(dir, "ca.pem"), now)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	if old {
		for _, f := range []string{"ca.pem", "ca-key.pem"} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("renew the CA: %w", err)
			}
		}
	}
	newCA := !exists("ca.pem")
	ca, err := embedded.NewCA(dir)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	var made []string
	if newCA {
		made = append(made, "ca.pem", "ca-key.pem")
	}
	// stale tells whether a certificate's files are to be made.
	stale := func(cert string, files ...string) (bool, error) {
		old, err := expiresSoon(filepath.Join(dir, cert), now)
		if err != nil {
			return false, err
		}
		missing := slices.ContainsFunc(files, func(f string) bool { return !exists(f) })
		return newCA || old || missing, nil
	}

	renew, err := stale("postgres.pem", "postgres.pem", "postgres-key.pem")
	if err != nil {
		return nil, fmt.Errorf("postgres certificate: %w", err)
	}
	if renew {
		_, keyFile, err := ca.Issue("postgres", "postgres", "localhost", "127.0.0.1")
		if err != nil {
			return nil, fmt.Errorf("postgres certificate: %w", err)
		}
		// The postgres container copies the key to a 0600 file of its
		// own before the server reads it (deploy/postgres/entrypoint.sh).
		// #nosec G302 -- in a 0700 directory, read by the container's postgres user through a bind mount
		if err := os.Chmod(keyFile, 0o644); err != nil {
			return nil, fmt.Errorf("postgres key: %w", err)
		}
		made = append(made, "postgres.pem", "postgres-key.pem")
	}

	renew, err = stale(kafkaKeystore, kafkaKeystore)
	if err != nil {
		return nil, fmt.Errorf("kafka keystore: %w", err)
	}
	if renew {
		if err := makeKafkaKeystore(ca, dir); err != nil {
			return nil, err
		}
		made = append(made, kafkaKeystore)
	}
	return made, nil
}

// makeKafkaKeystore issues the broker's certificate, for the compose
// service kafka and for the host's clients on localhost, and writes it
// with its key as the keystore the broker reads. Its subject, CN=kafka,
// is the principal of the broker on its controller listener.
func makeKafkaKeystore(ca *embedded.CA, dir string) error {
	certFile, keyFile, err := ca.Issue("kafka", "kafka", "localhost", "127.0.0.1")
	if err != nil {
		return fmt.Errorf("kafka certificate: %w", err)
	}
	defer os.Remove(certFile)
	defer os.Remove(keyFile)
	certPEM, err := os.ReadFile(certFile) // #nosec G304 -- the file the CA just wrote
	if err != nil {
		return fmt.Errorf("kafka certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile) // #nosec G304 -- the file the CA just wrote
	if err != nil {
		return fmt.Errorf("kafka key: %w", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return fmt.Errorf("kafka key: no PEM block in %s", keyFile)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("kafka key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("kafka key: %w", err)
	}
	keystore := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), certPEM...)
	// Read by the image's user (appuser) through a bind mount, as
	// postgres-key.pem is by postgres.
	if err := writeSecret(filepath.Join(dir, kafkaKeystore), keystore); err != nil {
		return fmt.Errorf("kafka keystore: %w", err)
	}
	return nil
}

// secretsCommand is `datamill secrets`.
func secretsCommand(_ context.Context, args, _ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "secrets", "the directory of the secrets, which docker-compose.yml reads as ./secrets")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: datamill secrets [--dir ./secrets]\n\n"+
			"Makes the secrets of docker-compose.yml, one file each in a 0700 directory:\n"+
			"random passwords for PostgreSQL's superuser, its roles (datamill_owner, _loader,\n"+
			"_scorer, _ecometer, _lake, _reader) and the UIs, each service's DATABASE_URL,\n"+
			"Prometheus' basic auth, MinIO's and the lake's keys, the extractor's ingest\n"+
			"token, the schema registry's login, Kafka's SCRAM passwords (the admin and\n"+
			"each principal), and a CA with PostgreSQL's server certificate and Kafka's\n"+
			"keystore. Files already there are kept, so running it again is safe; delete a\n"+
			"file and run it again to rotate it.\n"+
			"It never prints a secret.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	res, err := makeSecrets(*dir)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	fmt.Fprintf(stdout, "secrets in %s: %d made, %d kept\n", abs, len(res.made), len(res.kept))
	for _, name := range res.made {
		fmt.Fprintf(stdout, "  made %s\n", name)
	}
	fmt.Fprintf(stdout, "\nstart the stack with, beside docker-compose.yml, which reads ./secrets,\n  docker compose up -d --build\n"+
		"log in with the files of %[1]s (never commit them; .gitignore lists /secrets/):\n"+
		"  Grafana      admin / %[1]s/grafana_admin_password\n"+
		"  pgAdmin      PGADMIN_EMAIL / %[1]s/pgadmin_password\n"+
		"  Kafka UI     admin / %[1]s/kafka_ui_password\n"+
		"  Prometheus   %[2]s / %[1]s/prometheus_password\n"+
		"  MinIO        MINIO_ROOT_USER / %[1]s/minio_root_password\n"+
		"  PostgreSQL   localhost:5432 as datamill_reader / %[1]s/db_reader_password, sslmode=verify-full, sslrootcert=%[1]s/ca.pem\n"+
		"  HTTP ingest  Authorization: Bearer <%[1]s/extractor_ingest_token>\n"+
		"  registry     http://localhost:8081 as %[3]s / %[1]s/schema_registry_password\n"+
		"  Kafka        localhost:9094, SASL_SSL, SCRAM-SHA-512 as admin / %[1]s/kafka_user_admin_password, CA %[1]s/ca.pem\n",
		*dir, prometheusUser, registryUser)
	return nil
}
