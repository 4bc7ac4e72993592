package lake

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/config"
)

func writeFile(t testing.TB, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

func TestValidate(t *testing.T) {
	notPEM := writeFile(t, "ca.pem", "not a certificate\n")
	valid := func(mod func(*Config)) Config {
		c := Config{Endpoint: "http://127.0.0.1:9000", Bucket: "datamill-lake", Prefix: "raw", Region: "us-east-1", AccessKey: "a", SecretKey: "s", SSE: "s3"}
		mod(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // a part of the error; empty for none
		wantAK  string
		wantSK  string
	}{
		{name: "disabled", cfg: Config{Bucket: "datamill-lake", SSE: "s3"}},
		{name: "valid", cfg: valid(func(*Config) {}), wantAK: "a", wantSK: "s"},
		{name: "https", cfg: valid(func(c *Config) { c.Endpoint = "https://s3.example:443/" }), wantAK: "a", wantSK: "s"},
		{name: "sse none", cfg: valid(func(c *Config) { c.SSE = "none" }), wantAK: "a", wantSK: "s"},
		{name: "sse unknown", cfg: valid(func(c *Config) { c.SSE = "kms" }), wantErr: "S3_SSE"},
		{name: "endpoint without scheme", cfg: valid(func(c *Config) { c.Endpoint = "127.0.0.1:9000" }), wantErr: "S3_ENDPOINT"},
		{name: "endpoint ftp", cfg: valid(func(c *Config) { c.Endpoint = "ftp://h" }), wantErr: "S3_ENDPOINT"},
		{name: "endpoint with path", cfg: valid(func(c *Config) { c.Endpoint = "http://h:9000/bucket" }), wantErr: "S3_ENDPOINT"},
		{name: "endpoint with credentials", cfg: valid(func(c *Config) { c.Endpoint = "http://u:p@h:9000" }), wantErr: "S3_ENDPOINT"},
		{name: "bad bucket", cfg: valid(func(c *Config) { c.Bucket = "Lake_Bucket" }), wantErr: "S3_BUCKET"},
		{name: "prefix slash", cfg: valid(func(c *Config) { c.Prefix = "raw/" }), wantErr: "S3_PREFIX"},
		{name: "no credentials", cfg: valid(func(c *Config) { c.AccessKey, c.SecretKey = "", "" }), wantErr: "S3_ACCESS_KEY and S3_SECRET_KEY"},
		{name: "ca with http", cfg: valid(func(c *Config) { c.CAFile = notPEM }), wantErr: "not https"},
		{name: "ca not pem", cfg: valid(func(c *Config) { c.Endpoint, c.CAFile = "https://h", notPEM }), wantErr: "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate %+v: %v", tt.cfg, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("validate %+v: got %v, want an error with %q", tt.cfg, err, tt.wantErr)
			case err == nil && (c.AccessKey != tt.wantAK || c.SecretKey != tt.wantSK):
				t.Errorf("validate %+v: credentials %q/%q, want %q/%q", tt.cfg, c.AccessKey, c.SecretKey, tt.wantAK, tt.wantSK)
			}
		})
	}
}

// TestConfigParsed checks the block parses from an empty environment (the
// lake is off by default) and that the credentials are redacted from the
// logged configuration, also when read from files.
func TestConfigParsed(t *testing.T) {
	cfg, err := config.Parse[Config](nil)
	if err != nil {
		t.Fatalf("parse of an empty environment: %v", err)
	}
	if cfg.Enabled() || cfg.Bucket != "datamill-lake" || cfg.Prefix != "raw" || cfg.SSE != "s3" {
		t.Errorf("defaults: got %+v", cfg)
	}
	for _, environ := range [][]string{
		{"S3_ENDPOINT=http://127.0.0.1:9000", "S3_ACCESS_KEY=AKIAEXAMPLEKEY", "S3_SECRET_KEY=very-secret-value"},
		{"S3_ENDPOINT=http://127.0.0.1:9000", "S3_ACCESS_KEY_FILE=" + writeFile(t, "ak", "AKIAEXAMPLEKEY\n"), "S3_SECRET_KEY_FILE=" + writeFile(t, "sk", "very-secret-value\n")},
	} {
		cfg, err := config.Parse[Config](environ)
		if err != nil {
			t.Fatalf("parse %v: %v", environ, err)
		}
		if cfg.AccessKey != "AKIAEXAMPLEKEY" || cfg.SecretKey != "very-secret-value" {
			t.Errorf("parse %v: credentials %q/%q", environ, cfg.AccessKey, cfg.SecretKey)
		}
		logged := fmt.Sprint(config.Redacted(cfg))
		for _, secret := range []string{"AKIAEXAMPLEKEY", "very-secret-value"} {
			if strings.Contains(logged, secret) {
				t.Errorf("logged configuration %s holds %q", logged, secret)
			}
		}
		if r := config.Redacted(cfg); r["S3_ACCESS_KEY"] != "[redacted]" || r["S3_SECRET_KEY"] != "[redacted]" {
			t.Errorf("logged credentials: got %v/%v, want [redacted]", r["S3_ACCESS_KEY"], r["S3_SECRET_KEY"])
		}
	}
}

func TestKey(t *testing.T) {
	const id = "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7"
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name      string
		prefix    string
		partition int32
		start     int64
		t         time.Time
		want      string
	}{
		{
			name: "utc", prefix: "raw", partition: 0, start: 0, t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			want: "raw/dataset=users/dt=2026-01-02/hour=03/raw.users-7f3a09c1-0-00000000000000000000.parquet",
		},
		{
			name: "other zone is made utc", prefix: "raw", partition: 11, start: 123456789, t: time.Date(2026, 1, 1, 0, 30, 0, 0, paris),
			want: "raw/dataset=users/dt=2025-12-31/hour=23/raw.users-7f3a09c1-11-00000000000123456789.parquet",
		},
		{
			name: "largest offset", prefix: "lake/raw", partition: 2, start: math.MaxInt64, t: time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC),
			want: "lake/raw/dataset=users/dt=2026-12-31/hour=23/raw.users-7f3a09c1-2-09223372036854775807.parquet",
		},
		{
			name: "no prefix", prefix: "", partition: 1, start: 5, t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
			want: "dataset=users/dt=2026-06-01/hour=12/raw.users-7f3a09c1-1-00000000000000000005.parquet",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Key(tt.prefix, "users", "raw.users", id, tt.partition, tt.start, tt.t)
			if got != tt.want {
				t.Errorf("Key(%q, users, raw.users, id, %d, %d, %v) = %q, want %q", tt.prefix, tt.partition, tt.start, tt.t, got, tt.want)
			}
			if p := DatasetPrefix(tt.prefix, "users"); !strings.HasPrefix(got, p) {
				t.Errorf("key %q does not start with DatasetPrefix %q", got, p)
			}
		})
	}
	if a, b := DatasetPrefix("raw", "user"), Key("raw", "users", "raw.users", id, 0, 0, time.Now()); strings.HasPrefix(b, a) {
		t.Errorf("DatasetPrefix(raw, user) = %q prefixes a key of dataset users %q", a, b)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if a, b := Key("raw", "users", "raw.users", id, 0, 0, at), Key("raw", "users", "raw.users", "0b5e7d2a"+id[8:], 0, 0, at); a == b {
		t.Errorf("two topics of the same name, partition and start share the key %q", a)
	}
}

func TestParseUserMetadata(t *testing.T) {
	m := Meta{Dataset: "jobs", Topic: "raw.jobs", TopicID: "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7", Partition: 7, Start: 100, End: 250, Records: 120}
	upper := map[string]string{}
	for k, v := range m.UserMetadata() {
		upper["X-Amz-Meta-"+strings.ToUpper(k[:1])+k[1:]] = v
	}
	for _, user := range []map[string]string{m.UserMetadata(), upper} {
		got, err := ParseUserMetadata(user)
		if err != nil {
			t.Fatalf("parse %v: %v", user, err)
		}
		if got != m {
			t.Errorf("parse %v: got %+v, want %+v", user, got, m)
		}
	}
	tests := []struct {
		name    string
		mod     func(map[string]string)
		wantErr string
	}{
		{name: "missing", mod: func(u map[string]string) { delete(u, userEnd) }, wantErr: userEnd + " missing"},
		{name: "no topic id", mod: func(u map[string]string) { delete(u, userTopicID) }, wantErr: userTopicID + " missing"},
		{name: "not a number", mod: func(u map[string]string) { u[userRecords] = "many" }, wantErr: userRecords},
		{name: "partition too big", mod: func(u map[string]string) { u[userPartition] = "4294967296" }, wantErr: userPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := m.UserMetadata()
			tt.mod(user)
			_, err := ParseUserMetadata(user)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parse %v: got %v, want an error with %q", user, err, tt.wantErr)
			}
		})
	}
}
