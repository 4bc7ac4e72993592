package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/datamill/datamill/pkg/lake"
)

// sseHeader is the answer header by which an S3 server confirms it
// encrypts an object at rest.
const sseHeader = "X-Amz-Server-Side-Encryption"

// startS3 serves an in-process S3 (gofakes3, in memory) with the lake's
// bucket for the test and returns the lake configuration that reaches it.
// gofakes3 encrypts nothing, and echoes the encryption header of a PUT as
// the object's metadata. With encrypted, every answer carries the header
// by which a server confirms SSE-S3, as a server with a KMS does; without,
// no answer does, as with a server that ignores SSE. To be swapped for
// embedded.StartS3 once it exists.
func startS3(t testing.TB, encrypted bool) lake.Config {
	t.Helper()
	backend := s3mem.New()
	const bucket = "datamill-lake"
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	h := gofakes3.New(backend).Server()
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if encrypted {
			w.Header().Set(sseHeader, "AES256")
			inner.ServeHTTP(w, r)
			return
		}
		inner.ServeHTTP(unconfirmed{w}, r)
		w.Header().Del(sseHeader) // for an answer without a body, sent after this
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := lake.Config{
		Endpoint: srv.URL, Bucket: bucket, Prefix: "raw", Region: "us-east-1",
		AccessKey: "test", SecretKey: "test-secret", SSE: "s3",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("lake config: %v", err)
	}
	return cfg
}

// unconfirmed removes the encryption header from an answer before it is
// sent.
type unconfirmed struct{ http.ResponseWriter }

func (w unconfirmed) WriteHeader(code int) {
	w.Header().Del(sseHeader)
	w.ResponseWriter.WriteHeader(code)
}

func (w unconfirmed) Write(b []byte) (int, error) {
	w.Header().Del(sseHeader)
	return w.ResponseWriter.Write(b)
}
