package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// sseHeader is the response header in which an S3 server says how it
// encrypted an object at rest.
const sseHeader = "X-Amz-Server-Side-Encryption"

// contentType is what lake objects are stored as.
const contentType = "application/vnd.apache.parquet"

// Store is the lake's bucket.
type Store struct {
	cl       *minio.Client
	bucket   string
	endpoint string
	sse      bool
}

// OpenStore connects to the bucket of cfg; it does not create it, nor
// talk to the server (Ping does). It validates cfg (reading the *_FILE
// credentials) first. Every call of the Store makes one attempt: a
// transient error is the caller's to retry.
func OpenStore(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lake store: %w", err)
	}
	u, err := endpoint(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("lake store: %w", err)
	}
	secure := u.Scheme == "https"
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport for %s: %w", cfg.Endpoint, err)
	}
	if cfg.CAFile != "" {
		pool, err := caPool(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	cl, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
		// One attempt per call: callers retry transient errors through
		// pkg/retry, and an untrusted certificate fails at once.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", cfg.Endpoint, err)
	}
	return &Store{cl: cl, bucket: cfg.Bucket, endpoint: cfg.Endpoint, sse: cfg.SSE != "none"}, nil
}

// Bucket is the name of the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// Ping checks the bucket answers, for readiness.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.cl.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s at %s: %w", s.bucket, s.endpoint, err)
	}
	if !ok {
		return fmt.Errorf("bucket %s at %s does not exist", s.bucket, s.endpoint)
	}
	return nil
}

// PutNew stores body under key only if no object has it (If-None-Match: *),
// asking for cfg.SSE and returning ErrNotEncrypted when the server did not
// confirm it, ErrExists when the key is taken. size must be the length of
// body; the object is sent in one PUT.
//
// When the server stored the object but does not say it is encrypted at
// rest, PutNew removes it again (so that no plain copy lingers and a retry
// does not take it for done) and returns an error wrapping ErrNotEncrypted.
func (s *Store) PutNew(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) error {
	if size < 0 {
		return fmt.Errorf("put %s: size unknown", key)
	}
	opts := minio.PutObjectOptions{
		UserMetadata:     meta,
		ContentType:      contentType,
		DisableMultipart: true,
	}
	if s.sse {
		opts.ServerSideEncryption = encrypt.NewSSE()
	}
	opts.SetMatchETagExcept("*")
	if _, err := s.cl.PutObject(ctx, s.bucket, key, body, size, opts); err != nil {
		if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusPreconditionFailed || r.Code == "PreconditionFailed" {
			return fmt.Errorf("put %s: %w", key, ErrExists)
		}
		return fmt.Errorf("put %s in bucket %s: %w", key, s.bucket, err)
	}
	if !s.sse {
		return nil
	}
	// minio-go's UploadInfo does not carry the PUT's encryption header:
	// ask for it.
	info, err := s.cl.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return fmt.Errorf("check encryption of %s: %w", key, err)
	}
	if encrypted(info.Metadata) {
		return nil
	}
	err = fmt.Errorf("put %s: %w (%s: %q)", key, ErrNotEncrypted, sseHeader, info.Metadata.Get(sseHeader))
	if rerr := s.cl.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); rerr != nil {
		return errors.Join(err, fmt.Errorf("remove unencrypted %s: %w", key, rerr))
	}
	return err
}

// encrypted tells whether h says the object is encrypted at rest by the
// server (SSE-S3, or SSE-KMS).
func encrypted(h http.Header) bool {
	switch h.Get(sseHeader) {
	case "AES256", "aws:kms", "aws:kms:dsse":
		return true
	}
	return false
}

// Head describes the object at key; an error wrapping ErrNotFound when
// there is none.
func (s *Store) Head(ctx context.Context, key string) (Object, error) {
	info, err := s.cl.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, s.objectError("head", key, err)
	}
	o := Object{Key: info.Key, Size: info.Size, Encrypted: encrypted(info.Metadata), Meta: map[string]string{}}
	for name, vals := range info.Metadata {
		if len(vals) == 0 {
			continue
		}
		lower := strings.ToLower(name)
		if n, ok := strings.CutPrefix(lower, "x-amz-meta-"); ok {
			o.Meta[n] = vals[0]
		}
	}
	return o, nil
}

// objectError wraps err of op on key, as ErrNotFound when the object is
// missing.
func (s *Store) objectError(op, key string, err error) error {
	if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey" {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("%s %s in bucket %s: %w", op, key, s.bucket, err)
}

// Get opens the object at key for reading (ranges included, for Open),
// with its size; an error wrapping ErrNotFound when there is none. The
// reader is also an io.Closer: close it when done (or end ctx) to free its
// connection.
func (s *Store) Get(ctx context.Context, key string) (io.ReaderAt, int64, error) {
	obj, err := s.cl.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, s.objectError("get", key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		return nil, 0, s.objectError("get", key, err)
	}
	return obj, info.Size, nil
}

// List yields the objects under prefix in key order, with their keys and
// sizes (Encrypted and Meta need a Head); it stops at the first error.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops minio-go's listing goroutine when the caller stops early
		for info := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if info.Err != nil {
				yield(Object{}, fmt.Errorf("list %s in bucket %s: %w", prefix, s.bucket, info.Err))
				return
			}
			if !yield(Object{Key: info.Key, Size: info.Size}, nil) {
				return
			}
		}
	}
}
