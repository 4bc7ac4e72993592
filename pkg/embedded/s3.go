package embedded

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"
)

// S3Options configures StartS3.
type S3Options struct {
	// Dir holds the objects, the credentials and the encryption key. One
	// used before is reused: its objects and credentials survive. Empty
	// means a new temporary directory, removed by Close.
	Dir string
	// Port on 127.0.0.1; 0 lets the kernel pick a free one.
	Port int
	// Bucket is created at start when missing; empty means datamill-lake.
	Bucket string
}

// DefaultS3Bucket is the bucket StartS3 creates when S3Options names none
// (lake.Config's default too).
const DefaultS3Bucket = "datamill-lake"

// Files of an S3 directory.
const (
	s3DataFile      = "objects.db" // the bolt database of buckets and objects
	s3AccessKeyFile = "access_key" // the access key id, 0600
	s3SecretKeyFile = "secret_key" // its secret, 0600
	s3KeyFile       = "sse.key"    // the 32-byte AES-256 key of the bodies, 0600
)

// s3BoltTimeout bounds the wait for the data file's lock: another process
// serving the same directory holds it.
const s3BoltTimeout = 2 * time.Second

// S3 is an in-process S3-compatible server (github.com/johannesboyne/gofakes3)
// listening on 127.0.0.1 only, with one bucket, secure by default:
//
//   - every request must be signed (AWS Signature Version 4 in headers) with
//     the server's access key pair, random at the first start in a
//     directory and kept there (0600); anonymous requests, other keys and
//     bad signatures get 403 AccessDenied. See sigV4 for what is checked.
//   - object bodies are stored AES-256-GCM encrypted under a random key kept
//     in the directory (0600), so answers about objects carry
//     X-Amz-Server-Side-Encryption: AES256, as SSE-S3 does; a request for
//     another encryption (SSE-KMS, SSE-C) is answered 501 NotImplemented.
//   - a PUT with If-None-Match: * of a key that exists is answered 412.
//
// The objects live in one bbolt file (gofakes3's s3bolt backend): a PUT is
// one transaction, so a crash never leaves half an object that a
// conditional PUT would take for a whole one, and the file's lock keeps a
// second server off the same directory. Objects are held whole in memory
// while read or written (at most 1 GiB each).
type S3 struct {
	dir     string
	tempDir bool
	bucket  string
	creds   s3Credentials
	addr    string
	db      *bolt.DB
	srv     *http.Server
	served  chan error

	closeOnce sync.Once
	closeErr  error
}

type s3Credentials struct{ AccessKey, SecretKey string }

// StartS3 opens (or creates) the S3 directory, creates the bucket when
// missing and serves until Close.
func StartS3(opts S3Options) (_ *S3, err error) {
	s := &S3{dir: opts.Dir, bucket: opts.Bucket}
	if s.bucket == "" {
		s.bucket = DefaultS3Bucket
	}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "datamill-s3-"); err != nil {
			return nil, fmt.Errorf("s3 data dir: %w", err)
		}
		s.tempDir = true
	} else if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3 data dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.release() // undoing a failed start: its error is the one returned
		}
	}()
	if err := s.loadCredentials(); err != nil {
		return nil, err
	}
	key, err := loadOrCreateSecret(filepath.Join(s.dir, s3KeyFile), func() ([]byte, error) {
		return randomBytes(32)
	})
	if err != nil {
		return nil, fmt.Errorf("s3 encryption key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("s3 encryption key %s: %d bytes, want 32", filepath.Join(s.dir, s3KeyFile), len(key))
	}
	dataFile := filepath.Join(s.dir, s3DataFile)
	if s.db, err = bolt.Open(dataFile, 0o600, &bolt.Options{Timeout: s3BoltTimeout}); err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: another process serves this directory", dataFile)
		}
		return nil, fmt.Errorf("open %s: %w", dataFile, err)
	}
	backend, err := newSealedBackend(s3bolt.New(s.db), key)
	if err != nil {
		return nil, err
	}
	if ok, err := backend.BucketExists(s.bucket); err != nil {
		return nil, fmt.Errorf("look up bucket %s: %w", s.bucket, err)
	} else if !ok {
		if err := backend.CreateBucket(s.bucket); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", s.bucket, err)
		}
	}
	fake := gofakes3.New(backend, gofakes3.WithAutoBucket(false))
	guard := sigV4{accessKey: s.creds.AccessKey, secretKey: s.creds.SecretKey, maxSkew: 15 * time.Minute, now: time.Now}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port)))
	if err != nil {
		return nil, fmt.Errorf("s3 listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: guard.guard(fake.Server()), ReadHeaderTimeout: 10 * time.Second}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *S3) loadCredentials() error {
	id, err := loadOrCreateSecret(filepath.Join(s.dir, s3AccessKeyFile), func() ([]byte, error) {
		id, err := randomString(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
		return []byte(id), err
	})
	if err != nil {
		return fmt.Errorf("s3 access key: %w", err)
	}
	secret, err := loadOrCreateSecret(s.SecretKeyFile(), func() ([]byte, error) {
		secret, err := randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
		return []byte(secret), err
	})
	if err != nil {
		return fmt.Errorf("s3 secret key: %w", err)
	}
	s.creds = s3Credentials{AccessKey: strings.TrimSpace(string(id)), SecretKey: strings.TrimSpace(string(secret))}
	if s.creds.AccessKey == "" || s.creds.SecretKey == "" {
		return fmt.Errorf("s3 credentials in %s: access or secret key empty", s.dir)
	}
	return nil
}

// loadOrCreateSecret reads the file at path, or when there is none writes
// what create makes into it, readable by this user only.
func loadOrCreateSecret(path string, create func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the key file in the store's own directory
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if b, err = create(); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return b, nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random bytes: %w", err)
	}
	return b, nil
}

// randomString draws n characters of alphabet (of at most 256) uniformly.
func randomString(n int, alphabet string) (string, error) {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(alphabet) // drop the bytes that would bias the draw
	for len(out) < n {
		b, err := randomBytes(n)
		if err != nil {
			return "", err
		}
		for _, c := range b {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// Endpoint is the server's URL, http://127.0.0.1:<port>.
func (s *S3) Endpoint() string { return "http://" + s.addr }

// Bucket is the bucket created at start.
func (s *S3) Bucket() string { return s.bucket }

// AccessKey is the access key id every request must be signed with.
func (s *S3) AccessKey() string { return s.creds.AccessKey }

// SecretKey is the secret of AccessKey.
func (s *S3) SecretKey() string { return s.creds.SecretKey }

// SecretKeyFile is the file that holds SecretKey (readable by this user
// only), for S3_SECRET_KEY_FILE.
func (s *S3) SecretKeyFile() string { return filepath.Join(s.dir, s3SecretKeyFile) }

// Dir is the directory of the objects, credentials and key.
func (s *S3) Dir() string { return s.dir }

// Env is the server as lake.Config's variables: S3_ENDPOINT, S3_BUCKET,
// S3_ACCESS_KEY and S3_SECRET_KEY.
func (s *S3) Env() []string {
	return []string{
		"S3_ENDPOINT=" + s.Endpoint(),
		"S3_BUCKET=" + s.bucket,
		"S3_ACCESS_KEY=" + s.creds.AccessKey,
		"S3_SECRET_KEY=" + s.creds.SecretKey,
	}
}

// Close stops serving (waiting a few seconds for requests under way),
// closes the data file and removes a temporary directory. Calls after the
// first return its error.
func (s *S3) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *S3) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if err := s.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop s3 server: %w", err))
	}
	if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("s3 server: %w", err))
	}
	errs = append(errs, s.release())
	return errors.Join(errs...)
}

// release closes the data file and removes a temporary directory.
func (s *S3) release() error {
	var errs []error
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close s3 data: %w", err))
		}
		s.db = nil
	}
	if s.tempDir {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove s3 data dir: %w", err))
		}
	}
	return errors.Join(errs...)
}
