package embedded

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// startS3 starts a server on dir (a temporary one when empty) closed at
// the end of the test.
func startS3(t testing.TB, dir string) *S3 {
	t.Helper()
	s, err := StartS3(S3Options{Dir: dir})
	if err != nil {
		t.Fatalf("StartS3(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// s3Client is a minio-go client of s with the given key pair.
func s3Client(t testing.TB, s *S3, accessKey, secretKey string) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(s.Endpoint(), "http://"), &minio.Options{
		Creds:  credentials.NewStaticV4(accessKey, secretKey, ""),
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatalf("minio client: %v", err)
	}
	return c
}

func putObject(t testing.TB, c *minio.Client, bucket, key string, body []byte, opts minio.PutObjectOptions) error {
	t.Helper()
	_, err := c.PutObject(t.Context(), bucket, key, bytes.NewReader(body), int64(len(body)), opts)
	return err
}

func getObject(t testing.TB, c *minio.Client, bucket, key string, opts minio.GetObjectOptions) ([]byte, error) {
	t.Helper()
	obj, err := c.GetObject(t.Context(), bucket, key, opts)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

// signedRequest is a request signed with s's key pair, as minio-go signs.
func signedRequest(t testing.TB, s *S3, method, path string, body []byte, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.Endpoint()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	return signer.SignV4(*req, s.AccessKey(), s.SecretKey(), "", "us-east-1")
}

func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

func TestS3PutGetListRange(t *testing.T) {
	s := startS3(t, "")
	c := s3Client(t, s, s.AccessKey(), s.SecretKey())
	objects := map[string][]byte{
		"raw/dataset=users/dt=2026-12-05/hour=11/raw.users-0-00000000000000000000.parquet": []byte("PAR1 first object of users PAR1"),
		"raw/dataset=users/dt=2026-12-05/hour=12/raw.users-0-00000000000000000042.parquet": bytes.Repeat([]byte("0123456789"), 100_000),
		"raw/dataset=jobs/dt=2026-12-05/hour=12/raw.jobs-3-00000000000000000007.parquet":   []byte("jobs"),
	}
	for key, body := range objects {
		opts := minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE(), UserMetadata: map[string]string{"start": "42"}}
		if err := putObject(t, c, s.Bucket(), key, body, opts); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}

	for key, want := range objects {
		got, err := getObject(t, c, s.Bucket(), key, minio.GetObjectOptions{})
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("get %s = %d bytes, %v; want the %d bytes put", key, len(got), err, len(want))
		}
		info, err := c.StatObject(t.Context(), s.Bucket(), key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("stat %s: %v", key, err)
		}
		if info.Size != int64(len(want)) || info.UserMetadata["Start"] != "42" || info.Metadata.Get("X-Amz-Server-Side-Encryption") != "AES256" {
			t.Errorf("stat %s = size %d, user metadata %v, sse %q; want size %d, Start 42, AES256",
				key, info.Size, info.UserMetadata, info.Metadata.Get("X-Amz-Server-Side-Encryption"), len(want))
		}
		if _, hidden := info.Metadata[metaPlainMD5]; hidden {
			t.Errorf("stat %s shows the internal %s header", key, metaPlainMD5)
		}
	}

	big := "raw/dataset=users/dt=2026-12-05/hour=12/raw.users-0-00000000000000000042.parquet"
	for _, r := range []struct{ start, end int64 }{{0, 9}, {123_455, 123_460}, {999_990, 999_999}} {
		opts := minio.GetObjectOptions{}
		if err := opts.SetRange(r.start, r.end); err != nil {
			t.Fatal(err)
		}
		got, err := getObject(t, c, s.Bucket(), big, opts)
		if want := objects[big][r.start : r.end+1]; err != nil || !bytes.Equal(got, want) {
			t.Errorf("get %s bytes %d-%d = %q, %v; want %q", big, r.start, r.end, got, err, want)
		}
	}

	var listed []string
	sizes := map[string]int64{}
	for obj := range c.ListObjects(t.Context(), s.Bucket(), minio.ListObjectsOptions{Prefix: "raw/dataset=users/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list: %v", obj.Err)
		}
		listed = append(listed, obj.Key)
		sizes[obj.Key] = obj.Size
	}
	wantListed := []string{
		"raw/dataset=users/dt=2026-12-05/hour=11/raw.users-0-00000000000000000000.parquet",
		"raw/dataset=users/dt=2026-12-05/hour=12/raw.users-0-00000000000000000042.parquet",
	}
	if diff := cmp.Diff(wantListed, listed); diff != "" {
		t.Errorf("list raw/dataset=users/ (-want +got):\n%s", diff)
	}
	for _, key := range wantListed {
		if sizes[key] != int64(len(objects[key])) {
			t.Errorf("list gives %s size %d, want %d", key, sizes[key], len(objects[key]))
		}
	}

	// What the server answers a PUT, a HEAD and a GET in headers.
	key := "/" + s.Bucket() + "/raw/dataset=users/headers"
	for _, method := range []string{http.MethodPut, http.MethodHead, http.MethodGet} {
		resp, _ := do(t, signedRequest(t, s, method, key, []byte("body"), nil))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Server-Side-Encryption") != "AES256" {
			t.Errorf("%s %s = %s, X-Amz-Server-Side-Encryption %q; want 200 OK, AES256",
				method, key, resp.Status, resp.Header.Get("X-Amz-Server-Side-Encryption"))
		}
	}
	for _, sse := range []http.Header{
		{"X-Amz-Server-Side-Encryption": {"aws:kms"}},
		{"X-Amz-Server-Side-Encryption-Customer-Algorithm": {"AES256"}},
	} {
		resp, body := do(t, signedRequest(t, s, http.MethodPut, key+"-other-sse", []byte("body"), sse))
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "NotImplemented") {
			t.Errorf("PUT asking for %v = %s %s; want 501 NotImplemented", sse, resp.Status, body)
		}
	}
	resp, _ := do(t, signedRequest(t, s, http.MethodGet, "/"+s.Bucket()+"/no/such/key", nil, nil))
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Amz-Server-Side-Encryption") != "" {
		t.Errorf("GET of a missing key = %s, X-Amz-Server-Side-Encryption %q; want 404 without it",
			resp.Status, resp.Header.Get("X-Amz-Server-Side-Encryption"))
	}
}

func TestS3PutIfNoneMatchRefusesAnExistingKey(t *testing.T) {
	s := startS3(t, "")
	c := s3Client(t, s, s.AccessKey(), s.SecretKey())
	const key = "raw/dataset=users/dt=2026-12-05/hour=11/raw.users-1-00000000000000000010.parquet"
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	if err := putObject(t, c, s.Bucket(), key, []byte("first"), opts); err != nil {
		t.Fatalf("first conditional put of %s: %v", key, err)
	}
	err := putObject(t, c, s.Bucket(), key, []byte("second"), opts)
	if code := minio.ToErrorResponse(err).StatusCode; code != http.StatusPreconditionFailed {
		t.Errorf("second conditional put of %s = %v (status %d), want 412 Precondition Failed", key, err, code)
	}
	got, err := getObject(t, c, s.Bucket(), key, minio.GetObjectOptions{})
	if err != nil || string(got) != "first" {
		t.Errorf("get %s = %q, %v; want the first body", key, got, err)
	}
	if err := putObject(t, c, s.Bucket(), key+".other", []byte("other"), opts); err != nil {
		t.Errorf("conditional put of a new key: %v", err)
	}
}

func TestS3DeniesUnsignedAndWrongCredentials(t *testing.T) {
	s := startS3(t, "")
	good := s3Client(t, s, s.AccessKey(), s.SecretKey())
	const key = "raw/dataset=users/secret.parquet"
	if err := putObject(t, good, s.Bucket(), key, []byte("PAR1 secret rows"), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}

	type attempt func(t *testing.T) (status int, body []byte)
	viaClient := func(accessKey, secretKey string, put bool) attempt {
		return func(t *testing.T) (int, []byte) {
			c := s3Client(t, s, accessKey, secretKey)
			var err error
			if put {
				err = putObject(t, c, s.Bucket(), key, []byte("overwritten"), minio.PutObjectOptions{})
			} else {
				_, err = getObject(t, c, s.Bucket(), key, minio.GetObjectOptions{})
			}
			resp := minio.ToErrorResponse(err)
			return resp.StatusCode, []byte("<Error><Code>" + resp.Code + "</Code></Error>")
		}
	}
	viaHTTP := func(req func(t *testing.T) *http.Request) attempt {
		return func(t *testing.T) (int, []byte) {
			resp, body := do(t, req(t))
			return resp.StatusCode, body
		}
	}
	tests := map[string]attempt{
		"anonymous get": viaHTTP(func(t *testing.T) *http.Request {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.Endpoint()+"/"+s.Bucket()+"/"+key, nil)
			return req
		}),
		"anonymous list": viaHTTP(func(t *testing.T) *http.Request {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.Endpoint()+"/"+s.Bucket()+"?list-type=2", nil)
			return req
		}),
		"other access key get": viaClient("AKIAOTHERKEY00000000", s.SecretKey(), false),
		"wrong secret get":     viaClient(s.AccessKey(), s.SecretKey()+"x", false),
		"wrong secret put":     viaClient(s.AccessKey(), "not-the-secret", true),
		"other access key put": viaClient("AKIAOTHERKEY00000000", s.SecretKey(), true),
		"signed for another key": viaHTTP(func(t *testing.T) *http.Request {
			req := signedRequest(t, s, http.MethodGet, "/"+s.Bucket()+"/raw/dataset=users/other", nil, nil)
			req.URL.Path = "/" + s.Bucket() + "/" + key // the signature was for another path
			return req
		}),
		"unsigned header added": viaHTTP(func(t *testing.T) *http.Request {
			req := signedRequest(t, s, http.MethodGet, "/"+s.Bucket()+"/"+key, nil, nil)
			req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") // signed as UNSIGNED-PAYLOAD
			return req
		}),
	}
	for name, try := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := try(t)
			var e s3Error
			if err := xml.Unmarshal(body, &e); err != nil || status != http.StatusForbidden || e.Code != "AccessDenied" {
				t.Errorf("got %d %q, want 403 with code AccessDenied", status, body)
			}
		})
	}
	got, err := getObject(t, good, s.Bucket(), key, minio.GetObjectOptions{})
	if err != nil || string(got) != "PAR1 secret rows" {
		t.Errorf("after the denied puts, get %s = %q, %v; want it unchanged", key, got, err)
	}
}

func TestS3EncryptsBodiesAtRest(t *testing.T) {
	dir := t.TempDir()
	s := startS3(t, dir)
	c := s3Client(t, s, s.AccessKey(), s.SecretKey())
	plain := []byte("PAR1\x15\x00 user alice@example.com earns 123456 a year PAR1")
	const key = "raw/dataset=users/plain.parquet"
	if err := putObject(t, c, s.Bucket(), key, plain, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	var files int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", path, perm)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, needle := range []string{"PAR1", "alice@example.com", "123456 a year"} {
			if bytes.Contains(b, []byte(needle)) {
				t.Errorf("%s holds %q in plaintext", path, needle)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walk %s: %d files, %v", dir, files, err)
	}

	s = startS3(t, dir)
	c = s3Client(t, s, s.AccessKey(), s.SecretKey())
	got, err := getObject(t, c, s.Bucket(), key, minio.GetObjectOptions{})
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("get %s after a restart = %q, %v; want %q", key, got, err, plain)
	}
}

func TestS3RestartKeepsObjectsAndCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s3")
	first, err := StartS3(S3Options{Dir: dir, Bucket: "lake"})
	if err != nil {
		t.Fatal(err)
	}
	c := s3Client(t, first, first.AccessKey(), first.SecretKey())
	if err := putObject(t, c, "lake", "a/b", []byte("kept"), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	if _, err := StartS3(S3Options{Dir: dir, Bucket: "lake"}); err == nil {
		t.Errorf("a second server on %s started while the first serves it", dir)
	}
	ak, sk := first.AccessKey(), first.SecretKey()
	if err := first.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	second, err := StartS3(S3Options{Dir: dir, Bucket: "lake"})
	if err != nil {
		t.Fatalf("restart on %s: %v", dir, err)
	}
	t.Cleanup(func() { second.Close() })
	if second.AccessKey() != ak || second.SecretKey() != sk {
		t.Errorf("restart changed the credentials")
	}
	if b, err := os.ReadFile(second.SecretKeyFile()); err != nil || string(b) != sk {
		t.Errorf("SecretKeyFile holds %q, %v; want the secret key", b, err)
	}
	got, err := getObject(t, s3Client(t, second, ak, sk), "lake", "a/b", minio.GetObjectOptions{})
	if err != nil || string(got) != "kept" {
		t.Errorf("get a/b after restart = %q, %v; want kept", got, err)
	}
	want := []string{
		"S3_ENDPOINT=" + second.Endpoint(), "S3_BUCKET=lake", "S3_ACCESS_KEY=" + ak, "S3_SECRET_KEY=" + sk,
	}
	if diff := cmp.Diff(want, second.Env()); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}

	other := startS3(t, "")
	if other.AccessKey() == ak || other.SecretKey() == sk {
		t.Errorf("a server in another directory got the same credentials")
	}
	if _, err := getObject(t, s3Client(t, other, ak, sk), other.Bucket(), "a/b", minio.GetObjectOptions{}); minio.ToErrorResponse(err).StatusCode != http.StatusForbidden {
		t.Errorf("get with another server's credentials = %v, want 403", err)
	}
}

func TestS3CloseRemovesItsTemporaryDir(t *testing.T) {
	s, err := StartS3(S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat %s after Close = %v, want it gone", dir, err)
	}
}

func TestS3ListensOnLoopbackOnly(t *testing.T) {
	s := startS3(t, "")
	if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("endpoint %s, want http://127.0.0.1:<port>", s.Endpoint())
	}
}
