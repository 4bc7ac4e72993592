package lake

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/datamill/datamill/schemas"
)

const testBucket = "lake-test"

// fakeS3 serves an in-memory S3 with testBucket on loopback for the test
// and returns the configuration that reaches it. gofakes3 does not encrypt
// (it echoes the X-Amz-Server-Side-Encryption header a PUT sent, as stored
// metadata). When encrypting, a middleware says it did (AES256 on every
// object PUT, HEAD and GET), as a server encrypting at rest does; when not,
// the header is removed from every answer, as a server that ignores SSE
// would.
func fakeS3(t testing.TB, encrypting bool) Config {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	next := gofakes3.New(backend).Server()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !encrypting {
			next.ServeHTTP(plainWriter{w}, r)
			w.Header().Del(sseHeader) // an answer without a body is sent after this
			return
		}
		switch r.Method {
		case http.MethodPut, http.MethodHead, http.MethodGet:
			w.Header().Set(sseHeader, "AES256")
		}
		next.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{
		Endpoint:  srv.URL,
		Bucket:    testBucket,
		Prefix:    "raw",
		Region:    "us-east-1",
		AccessKey: "sink",
		SecretKey: "sink-secret-value",
		SSE:       "s3",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate %+v: %v", cfg, err)
	}
	return cfg
}

// plainWriter drops the encryption header from an answer.
type plainWriter struct{ http.ResponseWriter }

func (w plainWriter) WriteHeader(code int) {
	w.Header().Del(sseHeader)
	w.ResponseWriter.WriteHeader(code)
}

func (w plainWriter) Write(b []byte) (int, error) {
	w.Header().Del(sseHeader)
	return w.ResponseWriter.Write(b)
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func put(t testing.TB, s *Store, key, body string, meta map[string]string) error {
	t.Helper()
	return s.PutNew(t.Context(), key, strings.NewReader(body), int64(len(body)), meta)
}

func get(t testing.TB, s *Store, key string) string {
	t.Helper()
	r, size, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer r.(io.Closer).Close()
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}

func TestPutNewOnce(t *testing.T) {
	s := openStore(t, fakeS3(t, true))
	const key = "raw/dataset=users/dt=2026-01-02/hour=03/raw.users-0-00000000000000000000.parquet"
	if err := put(t, s, key, "first", nil); err != nil {
		t.Fatalf("first put: %v", err)
	}
	err := put(t, s, key, "second", nil)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second put: got %v, want ErrExists", err)
	}
	if got := get(t, s, key); got != "first" {
		t.Errorf("body after second put: got %q, want %q", got, "first")
	}
}

func TestHeadMetadata(t *testing.T) {
	s := openStore(t, fakeS3(t, true))
	m := Meta{Dataset: "users", Topic: "raw.users", TopicID: "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7", Partition: 2, Start: 10, End: 42, Records: 30}
	const key = "raw/dataset=users/x.parquet"
	if err := put(t, s, key, "body", m.UserMetadata()); err != nil {
		t.Fatalf("put: %v", err)
	}
	o, err := s.Head(t.Context(), key)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	if o.Key != key || o.Size != 4 || !o.Encrypted {
		t.Errorf("head: got key %q size %d encrypted %t, want %q 4 true", o.Key, o.Size, o.Encrypted, key)
	}
	for name := range o.Meta {
		if name != strings.ToLower(name) || strings.HasPrefix(name, "x-amz-meta-") {
			t.Errorf("head meta name %q: want lower case without x-amz-meta-", name)
		}
	}
	got, err := ParseUserMetadata(o.Meta)
	if err != nil {
		t.Fatalf("parse %v: %v", o.Meta, err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("meta round trip (-want +got):\n%s", diff)
	}
}

func TestHeadGetMissing(t *testing.T) {
	s := openStore(t, fakeS3(t, true))
	if _, err := s.Head(t.Context(), "raw/none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("head of a missing key: got %v, want ErrNotFound", err)
	}
	if _, _, err := s.Get(t.Context(), "raw/none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get of a missing key: got %v, want ErrNotFound", err)
	}
}

func TestList(t *testing.T) {
	s := openStore(t, fakeS3(t, true))
	keys := []string{
		DatasetPrefix("raw", "users") + "dt=2026-01-02/hour=10/raw.users-1-00000000000000000100.parquet",
		DatasetPrefix("raw", "users") + "dt=2026-01-01/hour=23/raw.users-0-00000000000000000000.parquet",
		DatasetPrefix("raw", "jobs") + "dt=2026-01-01/hour=00/raw.jobs-0-00000000000000000000.parquet",
		DatasetPrefix("raw", "users") + "dt=2026-01-02/hour=09/raw.users-0-00000000000000000007.parquet",
	}
	for i, k := range keys {
		if err := put(t, s, k, strings.Repeat("x", i+1), nil); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	var got []string
	sizes := map[string]int64{}
	for o, err := range s.List(t.Context(), DatasetPrefix("raw", "users")) {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		got = append(got, o.Key)
		sizes[o.Key] = o.Size
	}
	want := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return strings.Contains(k, "jobs") })
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if sizes[keys[3]] != 4 {
		t.Errorf("size of %s: got %d, want 4", keys[3], sizes[keys[3]])
	}
	n := 0
	for range s.List(t.Context(), "raw/") {
		n++
		break
	}
	if n != 1 {
		t.Errorf("list stopped after the first: got %d objects, want 1", n)
	}
}

func TestPing(t *testing.T) {
	cfg := fakeS3(t, true)
	if err := openStore(t, cfg).Ping(t.Context()); err != nil {
		t.Fatalf("ping of an existing bucket: %v", err)
	}
	cfg.Bucket = "no-such-bucket"
	err := openStore(t, cfg).Ping(t.Context())
	if err == nil {
		t.Fatal("ping of a missing bucket: got nil error")
	}
	for _, want := range []string{"no-such-bucket", cfg.Endpoint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ping error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), cfg.SecretKey) {
		t.Errorf("ping error %q holds the secret key", err)
	}
}

func TestPutNewEncryption(t *testing.T) {
	tests := []struct {
		name       string
		encrypting bool
		sse        string
		wantErr    error
	}{
		{name: "confirmed", encrypting: true, sse: "s3"},
		{name: "not confirmed fails closed", encrypting: false, sse: "s3", wantErr: ErrNotEncrypted},
		{name: "none asked", encrypting: false, sse: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fakeS3(t, tt.encrypting)
			cfg.SSE = tt.sse
			s := openStore(t, cfg)
			err := put(t, s, "raw/k.parquet", "body", nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("put with SSE %s (server encrypting: %t): got %v, want %v", tt.sse, tt.encrypting, err, tt.wantErr)
			}
			_, herr := s.Head(t.Context(), "raw/k.parquet")
			if tt.wantErr != nil && !errors.Is(herr, ErrNotFound) {
				t.Errorf("unencrypted object left behind: head got %v, want ErrNotFound", herr)
			}
			if tt.wantErr == nil && herr != nil {
				t.Errorf("head after put: %v", herr)
			}
		})
	}
}

func TestPutNewLargeBody(t *testing.T) {
	s := openStore(t, fakeS3(t, true))
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<20+3) // above minio-go's multipart threshold
	if err := s.PutNew(t.Context(), "raw/big", bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatalf("put %d bytes: %v", len(body), err)
	}
	if err := s.PutNew(t.Context(), "raw/big", bytes.NewReader(body), int64(len(body)), nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second put of %d bytes: got %v, want ErrExists", len(body), err)
	}
	if got := get(t, s, "raw/big"); got != string(body) {
		t.Errorf("body of %d bytes read back as %d bytes, different", len(body), len(got))
	}
}

// TestTLS checks the store trusts the CA of S3_CA_FILE, and no other.
func TestTLS(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	srv := httptest.NewTLSServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg := Config{
		Endpoint: srv.URL, Bucket: testBucket, Prefix: "raw", Region: "us-east-1",
		AccessKey: "sink", SecretKey: "sink-secret-value", SSE: "none",
		CAFile: writeFile(t, "ca.pem", string(ca)),
	}
	if !strings.HasPrefix(cfg.Endpoint, "https://") {
		t.Fatalf("test server %s is not https", cfg.Endpoint)
	}
	if err := openStore(t, cfg).Ping(t.Context()); err != nil {
		t.Fatalf("ping over TLS with the server's CA: %v", err)
	}
	cfg.CAFile = ""
	if err := openStore(t, cfg).Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("ping over TLS without the server's CA: got %v, want a certificate error", err)
	}
}

// TestObjectThroughStore writes a lake object, stores it, and reads it back
// through Get and Open, as replay does.
func TestObjectThroughStore(t *testing.T) {
	s := openStore(t, fakeS3(t, true))
	d, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		t.Fatalf("dataset users: %v", err)
	}
	in := samples(t, d.Raw, 50, 9)
	b, m := writeObject(t, d.Raw, in, 0)
	key := Key("raw", m.Dataset, m.Topic, m.TopicID, m.Partition, m.Start, in[0].rec["ingested_at"].(time.Time))
	if err := s.PutNew(t.Context(), key, bytes.NewReader(b), int64(len(b)), m.UserMetadata()); err != nil {
		t.Fatalf("put: %v", err)
	}
	r, size, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer r.(io.Closer).Close()
	if size != int64(len(b)) {
		t.Errorf("size: got %d, want %d", size, len(b))
	}
	f, err := Open(r, size)
	if err != nil {
		t.Fatalf("open stored object: %v", err)
	}
	if f.Meta.Records != int64(len(in)) || f.Meta.End != m.End {
		t.Errorf("meta: got %+v, want records %d end %d", f.Meta, len(in), m.End)
	}
	var rows []Row
	for row, err := range f.Rows() {
		if err != nil {
			t.Fatalf("row %d: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
	checkRoundTrip(t, d.Raw, in, rows, true)
}
