package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type sample struct {
	Service
	Brokers  []string `env:"KAFKA_BROKERS" envSeparator:","`
	Password string   `env:"DB_PASSWORD" envDefault:""`
	Batch    int      `env:"SAMPLE_BATCH" envDefault:"100"`
}

func (s *sample) Validate() error {
	if s.Batch <= 0 {
		return errBatch
	}
	return nil
}

var errBatch = &batchError{}

type batchError struct{}

func (*batchError) Error() string { return "SAMPLE_BATCH must be positive" }

func TestParse(t *testing.T) {
	tests := map[string]struct {
		environ []string
		want    sample
		wantErr string
	}{
		"defaults and required": {
			environ: []string{"KAFKA_BROKERS=a:1,b:2"},
			want: sample{
				Service: Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:9090", Datasets: []string{"users"}, RunID: "default", EcoInterval: 5 * time.Second},
				Brokers: []string{"a:1", "b:2"},
				Batch:   100,
			},
		},
		"later pair wins": {
			environ: []string{"KAFKA_BROKERS=a:1", "SAMPLE_BATCH=5", "SAMPLE_BATCH=7", "DATASETS=users,jobs"},
			want: sample{
				Service: Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:9090", Datasets: []string{"users", "jobs"}, RunID: "default", EcoInterval: 5 * time.Second},
				Brokers: []string{"a:1"},
				Batch:   7,
			},
		},
		"missing required": {environ: nil, wantErr: "KAFKA_BROKERS"},
		"bad number":       {environ: []string{"KAFKA_BROKERS=a", "SAMPLE_BATCH=x"}, wantErr: "SAMPLE_BATCH"},
		"validate runs":    {environ: []string{"KAFKA_BROKERS=a", "SAMPLE_BATCH=0"}, wantErr: "must be positive"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse[sample](tc.environ)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want it to mention %q", tc.environ, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.environ, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.environ, diff)
			}
		})
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	cfg := sample{Brokers: []string{"k:9092"}, Password: "hunter2", Batch: 3}
	got := Redacted(cfg)
	if got["DB_PASSWORD"] != "[redacted]" {
		t.Errorf("DB_PASSWORD = %v, want [redacted]", got["DB_PASSWORD"])
	}
	if got["SAMPLE_BATCH"] != 3 {
		t.Errorf("SAMPLE_BATCH = %v, want 3", got["SAMPLE_BATCH"])
	}
	if _, ok := got["LOG_LEVEL"]; !ok {
		t.Errorf("embedded block not flattened: %v", got)
	}
}

// A URL's password is never logged, in any variable: a registry URL with
// credentials, a list of them.
func TestRedactedHidesThePasswordsOfURLs(t *testing.T) {
	type withURLs struct {
		Registry string   `env:"SCHEMA_REGISTRY_URL"`
		Mirrors  []string `env:"MIRRORS"`
		Plain    string   `env:"PLAIN"`
	}
	got := Redacted(withURLs{
		Registry: "https://datamill:s3cret@registry:8081/",
		Mirrors:  []string{"http://a:b@m1", "http://m2"},
		Plain:    "user@example.org",
	})
	if got["SCHEMA_REGISTRY_URL"] != "https://datamill:xxxxx@registry:8081/" {
		t.Errorf("SCHEMA_REGISTRY_URL = %v, want its password redacted", got["SCHEMA_REGISTRY_URL"])
	}
	if m, _ := got["MIRRORS"].([]string); len(m) != 2 || m[0] != "http://a:xxxxx@m1" || m[1] != "http://m2" {
		t.Errorf("MIRRORS = %v, want the password of the first redacted", got["MIRRORS"])
	}
	if got["PLAIN"] != "user@example.org" {
		t.Errorf("PLAIN = %v, want it as it is", got["PLAIN"])
	}
}

func TestVariables(t *testing.T) {
	vars := Variables(sample{})
	byName := map[string]Variable{}
	for _, v := range vars {
		byName[v.Name] = v
	}
	if !byName["KAFKA_BROKERS"].Required {
		t.Errorf("KAFKA_BROKERS should be required: %+v", byName["KAFKA_BROKERS"])
	}
	if v := byName["ADMIN_ADDR"]; v.Required || v.Default != "127.0.0.1:9090" {
		t.Errorf("ADMIN_ADDR = %+v, want optional with default 127.0.0.1:9090", v)
	}
	if v := byName["ADMIN_PPROF"]; v.Required || v.Default != "false" {
		t.Errorf("ADMIN_PPROF = %+v, want optional, false by default", v)
	}
	if _, ok := byName["HTTP_ADDR"]; ok {
		t.Error("HTTP_ADDR is in the shared block: only the extractor, which has an API, listens on it")
	}
	if len(vars) != 10 {
		t.Errorf("got %d variables, want 10: %+v", len(vars), vars)
	}
}

// TestAdminAddrDefaultsToLoopback checks that, unless told otherwise, a
// process serves its metrics, health and profiles on loopback only.
func TestAdminAddrDefaultsToLoopback(t *testing.T) {
	svc, err := Parse[Service](nil)
	if err != nil {
		t.Fatal(err)
	}
	if !Loopback(svc.AdminAddr) {
		t.Errorf("default ADMIN_ADDR %q is not loopback", svc.AdminAddr)
	}
	if svc.AdminPprof {
		t.Error("ADMIN_PPROF is on by default")
	}
}

func TestLoopback(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1:9090": true, "127.1.2.3:1": true, "[::1]:9090": true, "localhost:9090": true,
		":9090": false, "0.0.0.0:9090": false, "[::]:9090": false, "10.0.0.1:9090": false,
		"example.org:9090": false, "127.0.0.1": false,
	}
	for addr, want := range tests {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// secrets is a configuration with secrets: one required and tagged, one
// that SecretName marks, and one whose configuration reads its own _FILE.
type secrets struct {
	URL       string `env:"DATABASE_URL" secret:"true"`
	Password  string `env:"DB_PASSWORD" envDefault:""`
	Token     string `env:"AUDIT_TOKEN" envDefault:""`
	TokenFile string `env:"AUDIT_TOKEN_FILE" envDefault:""`
}

func TestParseReadsSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	url := file("url", "postgres://loader:s3cret@db/datamill\n")
	twoLines := file("two", "hunter2\n\n")
	crlf := file("crlf", "hunter2\r\n")
	bare := file("bare", "hunter2")
	tests := map[string]struct {
		environ []string
		want    secrets
		wantErr []string
	}{
		"one trailing newline trimmed": {
			environ: []string{"DATABASE_URL_FILE=" + url},
			want:    secrets{URL: "postgres://loader:s3cret@db/datamill"},
		},
		"only one newline trimmed": {
			environ: []string{"DATABASE_URL=u", "DB_PASSWORD_FILE=" + twoLines},
			want:    secrets{URL: "u", Password: "hunter2\n"},
		},
		"a CRLF is one newline": {
			environ: []string{"DATABASE_URL=u", "DB_PASSWORD_FILE=" + crlf},
			want:    secrets{URL: "u", Password: "hunter2"},
		},
		"no newline kept as is": {
			environ: []string{"DATABASE_URL=u", "DB_PASSWORD_FILE=" + bare},
			want:    secrets{URL: "u", Password: "hunter2"},
		},
		"a declared _FILE is left to its configuration": {
			environ: []string{"DATABASE_URL=u", "AUDIT_TOKEN_FILE=" + bare},
			want:    secrets{URL: "u", TokenFile: bare},
		},
		"empty counts as unset": {
			environ: []string{"DATABASE_URL=", "DATABASE_URL_FILE=" + url, "DB_PASSWORD_FILE="},
			want:    secrets{URL: "postgres://loader:s3cret@db/datamill"},
		},
		"both set": {
			environ: []string{"DATABASE_URL=u", "DATABASE_URL_FILE=" + url},
			wantErr: []string{"DATABASE_URL and DATABASE_URL_FILE are both set"},
		},
		"missing files, all named": {
			environ: []string{"DATABASE_URL_FILE=" + filepath.Join(dir, "nope"), "DB_PASSWORD_FILE=" + filepath.Join(dir, "none")},
			wantErr: []string{"DATABASE_URL_FILE: open " + filepath.Join(dir, "nope"), "DB_PASSWORD_FILE: open " + filepath.Join(dir, "none")},
		},
		"a required secret missing from both": {
			environ: nil,
			wantErr: []string{"DATABASE_URL"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse[secrets](tc.environ)
			if len(tc.wantErr) > 0 {
				for _, want := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("Parse(%q) error = %v, want it to mention %q", tc.environ, err, want)
					}
				}
				if err != nil && strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q holds a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.environ, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.environ, diff)
			}
			if r := Redacted(got); got.URL != "" && r["DATABASE_URL"] != "[redacted]" {
				t.Errorf("DATABASE_URL logged as %v, want it redacted", r["DATABASE_URL"])
			}
		})
	}
}
