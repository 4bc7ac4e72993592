package testkit_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/parquet-go/parquet-go"

	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/testkit"
)

// testTime is when the tests' objects' first records were.
var testTime = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// testTopicID is the Kafka topic id of the objects the tests write.
const testTopicID = "7f3a09c1e24b4d0e9a55c3b1d0f2e6a7"

// minioStore opens the lake's store on m's bucket with credentials c,
// through TLS trusting m's CA only.
func minioStore(t testing.TB, m *testkit.MinIOServer, c testkit.Credentials) *lake.Store {
	t.Helper()
	cfg := lake.Config{
		Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: "raw", Region: "us-east-1",
		AccessKey: c.AccessKey, SecretKey: c.SecretKey, CAFile: m.CAFile, SSE: "s3",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate the lake configuration of %s: %v", m.Endpoint, err)
	}
	s, err := lake.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open the lake store: %v", err)
	}
	return s
}

// plainParquet is an uncompressed Parquet file whose rows hold marker, so
// that both its magic bytes and its values are there to be found in plain.
func plainParquet(t testing.TB, marker string) []byte {
	t.Helper()
	type row struct {
		EventID string `parquet:"event_id"`
		Email   string `parquet:"email"`
		Offset  int64  `parquet:"_offset"`
	}
	rows := make([]row, 50)
	for i := range rows {
		rows[i] = row{EventID: marker + "-event", Email: marker + "@example.com", Offset: int64(i)}
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows, parquet.Compression(&parquet.Uncompressed)); err != nil {
		t.Fatalf("write parquet: %v", err)
	}
	b := buf.Bytes()
	if !bytes.HasPrefix(b, []byte("PAR1")) || !bytes.Contains(b, []byte(marker)) {
		t.Fatalf("the test's parquet does not hold PAR1 and %q in plain", marker)
	}
	return b
}

// lakeObject is a lake object as the sink writes it, of 50 rows holding
// marker.
func lakeObject(t testing.TB, marker string) []byte {
	t.Helper()
	schema := avro.MustParse(`{"type": "record", "name": "user", "fields": [{"name": "email", "type": "string"}]}`)
	var buf bytes.Buffer
	w, err := lake.NewWriter(&buf, schema)
	if err != nil {
		t.Fatalf("new lake writer: %v", err)
	}
	for i := range 50 {
		env := lake.Envelope{Topic: "raw.users", Partition: 0, Offset: 50 + int64(i), Timestamp: testTime, SchemaID: 1}
		if err := w.Write(map[string]any{"email": fmt.Sprintf("%s-%d@example.com", marker, i)}, env); err != nil {
			t.Fatalf("write row %d: %v", i, err)
		}
	}
	meta := lake.Meta{Dataset: "users", Topic: "raw.users", TopicID: testTopicID, Partition: 0, Start: 50, End: 100, Records: 50, Schema: schema}
	if err := w.Close(meta); err != nil {
		t.Fatalf("close the lake object: %v", err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("PAR1")) {
		t.Fatal("the lake object does not start with PAR1")
	}
	return buf.Bytes()
}

func put(t testing.TB, s *lake.Store, key string, body []byte) error {
	t.Helper()
	return s.PutNew(t.Context(), key, bytes.NewReader(body), int64(len(body)), map[string]string{"dataset": "users"})
}

// s3Code is the S3 error code an error carries, or "".
func s3Code(err error) string {
	var r minio.ErrorResponse
	if errors.As(err, &r) {
		return r.Code
	}
	return ""
}

func TestMinIOKeepsLakeObjectsEncryptedAtRest(t *testing.T) {
	m := testkit.MinIO(t)
	sink := minioStore(t, m, m.Sink)
	marker := "plain-" + strings.ToLower(rand.Text())
	body := plainParquet(t, marker)
	key := lake.Key("raw", "users", "raw.users", testTopicID, 0, 0, testTime)
	if err := put(t, sink, key, body); err != nil {
		t.Fatalf("PutNew %s: %v", key, err)
	}
	// And an object as the sink writes it (zstd: its values may not show
	// in plain, its magic does).
	lakeKey := lake.Key("raw", "users", "raw.users", testTopicID, 0, 50, testTime)
	if err := put(t, sink, lakeKey, lakeObject(t, marker)); err != nil {
		t.Fatalf("PutNew %s: %v", lakeKey, err)
	}

	head, err := sink.Head(t.Context(), key)
	if err != nil {
		t.Fatalf("head %s: %v", key, err)
	}
	if !head.Encrypted {
		t.Errorf("head %s: the server does not say it is encrypted at rest: %+v", key, head)
	}
	r, size, err := sink.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	got := make([]byte, size)
	if _, err := r.ReadAt(got, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %v", key, err)
	}
	if c, ok := r.(io.Closer); ok {
		_ = c.Close()
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("get %s: %d bytes differ from the %d put", key, len(got), len(body))
	}

	// MinIO keeps an object under <data>/<bucket>/<key>/ (xl.meta, with
	// small objects inline, and part files).
	objectDirs := []string{
		filepath.Join(m.DataDir, m.Bucket, filepath.FromSlash(key)) + string(filepath.Separator),
		filepath.Join(m.DataDir, m.Bucket, filepath.FromSlash(lakeKey)) + string(filepath.Separator),
	}
	files := map[string]int{}
	err = filepath.WalkDir(m.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ofObject := false
		for _, dir := range objectDirs {
			if strings.HasPrefix(path, dir) {
				files[dir]++
				ofObject = true
			}
		}
		if ofObject {
			if bytes.Contains(b, []byte("PAR1")) {
				t.Errorf("%s, a file of the object, holds Parquet's magic PAR1 in plain", path)
			}
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s holds the rows' values in plain", path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", m.DataDir, err)
	}
	for _, dir := range objectDirs {
		if files[dir] == 0 {
			t.Errorf("no file under %s: where does this MinIO keep objects?", dir)
		}
	}
}

func TestMinIODeniesAnonymousAndWrongCredentials(t *testing.T) {
	m := testkit.MinIO(t)
	sink := minioStore(t, m, m.Sink)
	key := lake.Key("raw", "users", "raw.users", testTopicID, 1, 42, testTime)
	if err := put(t, sink, key, plainParquet(t, "x")); err != nil {
		t.Fatalf("PutNew %s: %v", key, err)
	}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: m.TLSConfig(t)}}
	resp, err := client.Get(m.Endpoint + "/" + m.Bucket + "/" + key)
	if err != nil {
		t.Fatalf("anonymous GET: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(b, []byte("<Code>AccessDenied</Code>")) {
		t.Errorf("anonymous GET %s: got %s %s, want 403 AccessDenied", key, resp.Status, b)
	}

	tests := map[string]struct {
		creds testkit.Credentials
		want  string
	}{
		"the sink's key with a wrong secret": {testkit.Credentials{AccessKey: m.Sink.AccessKey, SecretKey: "wrong-secret-0123456789"}, "SignatureDoesNotMatch"},
		"an unknown key":                     {testkit.Credentials{AccessKey: "nobody", SecretKey: "wrong-secret-0123456789"}, "InvalidAccessKeyId"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := minioStore(t, m, tt.creds)
			_, _, err := s.Get(t.Context(), key)
			if code := s3Code(err); code != tt.want {
				t.Errorf("get %s: got %v (code %q), want %s", key, err, code, tt.want)
			}
			if err := put(t, s, "raw/other.parquet", []byte("x")); s3Code(err) != tt.want {
				t.Errorf("put: got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestMinIOConfinesTheSinkToRawAndTheReaderToReading(t *testing.T) {
	m := testkit.MinIO(t)
	root, sink, reader := minioStore(t, m, m.Root), minioStore(t, m, m.Sink), minioStore(t, m, m.Reader)
	body := plainParquet(t, "y")
	rawKey := lake.Key("raw", "users", "raw.users", testTopicID, 2, 7, testTime)
	if err := put(t, sink, rawKey, body); err != nil {
		t.Fatalf("the sink's PutNew under raw/: %v", err)
	}
	const outside = "curated/users/part-0.parquet"
	if err := put(t, root, outside, body); err != nil {
		t.Fatalf("root's PutNew of %s: %v", outside, err)
	}
	if err := sink.Ping(t.Context()); err != nil {
		t.Errorf("the sink's Ping: %v", err)
	}

	denied := func(t *testing.T, what string, err error) {
		t.Helper()
		if s3Code(err) != "AccessDenied" {
			t.Errorf("%s: got %v, want AccessDenied", what, err)
		}
	}
	allowed := func(t *testing.T, what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	list := func(s *lake.Store, prefix string) error {
		for _, err := range s.List(t.Context(), prefix) {
			if err != nil {
				return err
			}
		}
		return nil
	}
	get := func(s *lake.Store, key string) error {
		r, _, err := s.Get(t.Context(), key)
		if c, ok := r.(io.Closer); ok {
			_ = c.Close()
		}
		return err
	}
	t.Run("sink", func(t *testing.T) {
		denied(t, "put outside raw/", put(t, sink, "curated/x.parquet", body))
		denied(t, "put at the bucket's root", put(t, sink, "x.parquet", body))
		denied(t, "get outside raw/", get(sink, outside))
		denied(t, "list outside raw/", list(sink, "curated/"))
		denied(t, "list the whole bucket", list(sink, ""))
		allowed(t, "get under raw/", get(sink, rawKey))
		allowed(t, "list under raw/", list(sink, "raw/"))
	})
	t.Run("reader", func(t *testing.T) {
		denied(t, "put under raw/", put(t, reader, lake.Key("raw", "users", "raw.users", testTopicID, 2, 99, testTime), body))
		denied(t, "put outside raw/", put(t, reader, "curated/y.parquet", body))
		denied(t, "get outside raw/", get(reader, outside))
		allowed(t, "get under raw/", get(reader, rawKey))
		allowed(t, "list under raw/", list(reader, "raw/"))
	})
}

// TestMinIOWithoutKMSTakesNoLakeObject runs the lake against a MinIO that
// cannot encrypt at rest: the sink's write fails, and nothing is stored.
func TestMinIOWithoutKMSTakesNoLakeObject(t *testing.T) {
	m := testkit.MinIOWith(t, testkit.MinIOOptions{WithoutKMS: true})
	key := lake.Key("raw", "users", "raw.users", testTopicID, 0, 0, testTime)
	err := put(t, minioStore(t, m, m.Sink), key, plainParquet(t, "z"))
	if err == nil {
		t.Fatalf("PutNew %s on a server without KMS succeeded, want it refused", key)
	}
	if code := s3Code(err); code != "NotImplemented" {
		t.Errorf("PutNew %s without KMS: got %v (code %q), want the server's NotImplemented (no KMS)", key, err, code)
	}
	if _, err := minioStore(t, m, m.Root).Head(t.Context(), key); !errors.Is(err, lake.ErrNotFound) {
		t.Errorf("head %s after the refused put: got %v, want ErrNotFound", key, err)
	}
}

// TestMinIOObjectLockKeepsLakeObjects stores a lake object in a bucket
// with Object Lock: the sink's PutNew works there, and not even root can
// delete the object's version before its retention ends.
func TestMinIOObjectLockKeepsLakeObjects(t *testing.T) {
	m := testkit.MinIOWith(t, testkit.MinIOOptions{RetentionDays: 1})
	key := lake.Key("raw", "users", "raw.users", testTopicID, 0, 0, testTime)
	body := plainParquet(t, "locked")
	if err := put(t, minioStore(t, m, m.Sink), key, body); err != nil {
		t.Fatalf("PutNew %s in a locked bucket: %v", key, err)
	}
	if err := put(t, minioStore(t, m, m.Sink), key, body); !errors.Is(err, lake.ErrExists) {
		t.Errorf("a second PutNew of %s in a versioned bucket: got %v, want ErrExists", key, err)
	}

	root, err := minio.New(strings.TrimPrefix(m.Endpoint, "https://"), &minio.Options{
		Creds:     credentials.NewStaticV4(m.Root.AccessKey, m.Root.SecretKey, ""),
		Secure:    true,
		Transport: &http.Transport{TLSClientConfig: m.TLSConfig(t)},
		Region:    "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := root.StatObject(t.Context(), m.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	mode, until, err := root.GetObjectRetention(t.Context(), m.Bucket, key, info.VersionID)
	if err != nil {
		t.Fatalf("retention of %s: %v", key, err)
	}
	if info.VersionID == "" || mode == nil || *mode != minio.Compliance || until == nil || !until.After(time.Now().Add(23*time.Hour)) {
		t.Errorf("%s: version %q retained in mode %v until %v, want a version kept a day in compliance mode", key, info.VersionID, mode, until)
	}
	err = root.RemoveObject(t.Context(), m.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID})
	// MinIO says InvalidRequest, "Object is WORM protected".
	var refusal minio.ErrorResponse
	if !errors.As(err, &refusal) || refusal.Code != "InvalidRequest" || !strings.Contains(refusal.Message, "WORM") {
		t.Errorf("root's delete of version %s of %s: got %v, want the WORM protection's refusal", info.VersionID, key, err)
	}
	r, size, err := minioStore(t, m, m.Reader).Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s after the refused delete: %v", key, err)
	}
	defer r.(io.Closer).Close()
	if size != int64(len(body)) {
		t.Errorf("%s is %d bytes after the refused delete, want %d", key, size, len(body))
	}
}
