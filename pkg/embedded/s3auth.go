package embedded

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// sigV4 checks that a request is signed with AWS Signature Version 4 by
// the one key pair it knows, signed in headers as S3 clients (minio-go, the
// AWS SDKs) sign them: the canonical request, the string to sign, the HMAC
// chain of date, region and service. The payload's hash is the value of
// X-Amz-Content-Sha256 as signed (a hex SHA-256, UNSIGNED-PAYLOAD or a
// STREAMING-* mode); a body read under a hex SHA-256 must hash to it (else
// 400 BadDigest and nothing stored), while the chunk signatures of a
// streamed body are not checked. Presigned URLs (query-string signatures)
// are refused.
type sigV4 struct {
	accessKey string
	secretKey string
	// maxSkew is how far X-Amz-Date may lie from now.
	maxSkew time.Duration
	now     func() time.Time
}

const sigV4Algorithm = "AWS4-HMAC-SHA256"

var errDenied = errors.New("access denied")

// verify returns nil when r carries a valid signature of the known key.
func (s sigV4) verify(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return fmt.Errorf("%w: anonymous request", errDenied)
	}
	cred, signed, sig, err := parseSigV4(auth)
	if err != nil {
		return err
	}
	// Credential=<key id>/<yyyymmdd>/<region>/s3/aws4_request
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[3] != "s3" || scope[4] != "aws4_request" {
		return fmt.Errorf("%w: malformed credential scope", errDenied)
	}
	if !hmac.Equal([]byte(scope[0]), []byte(s.accessKey)) {
		return fmt.Errorf("%w: unknown access key id", errDenied)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return fmt.Errorf("%w: missing or malformed X-Amz-Date", errDenied)
	}
	if d := s.now().Sub(at); d > s.maxSkew || d < -s.maxSkew {
		return fmt.Errorf("%w: X-Amz-Date %s too far from now", errDenied, amzDate)
	}
	if scope[1] != amzDate[:8] {
		return fmt.Errorf("%w: credential date differs from X-Amz-Date", errDenied)
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return fmt.Errorf("%w: missing X-Amz-Content-Sha256", errDenied)
	}
	if !slices.Contains(signed, "host") {
		return fmt.Errorf("%w: host not signed", errDenied)
	}
	if !slices.Contains(signed, "x-amz-content-sha256") {
		return fmt.Errorf("%w: x-amz-content-sha256 not signed", errDenied)
	}
	canonical := strings.Join([]string{
		r.Method,
		s3EncodePath(r.URL.Path),
		strings.ReplaceAll(r.URL.Query().Encode(), "+", "%20"),
		canonicalHeaders(r, signed),
		strings.Join(signed, ";"),
		payload,
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{
		sigV4Algorithm, amzDate, strings.Join(scope[1:], "/"), hex.EncodeToString(sum[:]),
	}, "\n")
	key := []byte("AWS4" + s.secretKey)
	for _, part := range scope[1:] {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("%w: signature does not match", errDenied)
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// parseSigV4 splits "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…".
func parseSigV4(auth string) (cred string, signed []string, sig string, err error) {
	rest, ok := strings.CutPrefix(auth, sigV4Algorithm+" ")
	if !ok {
		return "", nil, "", fmt.Errorf("%w: not an %s signature", errDenied, sigV4Algorithm)
	}
	for field := range strings.SplitSeq(rest, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch name {
		case "Credential":
			cred = value
		case "SignedHeaders":
			signed = strings.Split(value, ";")
		case "Signature":
			sig = value
		}
	}
	if cred == "" || len(signed) == 0 || sig == "" {
		return "", nil, "", fmt.Errorf("%w: incomplete authorization header", errDenied)
	}
	if !slices.IsSorted(signed) {
		return "", nil, "", fmt.Errorf("%w: signed headers not sorted", errDenied)
	}
	return cred, signed, sig, nil
}

// canonicalHeaders is "name:value\n" for each signed header, values
// trimmed with inner runs of spaces collapsed, repeated ones joined by
// commas.
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values(name)
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			values = r.TransferEncoding
		default:
			values = r.Header.Values(name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(v), " "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// s3EncodePath percent-encodes every byte of p but the unreserved
// characters and '/', as S3 canonicalises a path (no double encoding).
func s3EncodePath(p string) string {
	var b strings.Builder
	for i := range len(p) {
		c := p[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// s3Error is an S3 error answer's body.
type s3Error struct {
	XMLName  xml.Name `xml:"Error"`
	Code     string   `xml:"Code"`
	Message  string   `xml:"Message"`
	Resource string   `xml:"Resource"`
}

// deny answers 403 AccessDenied with S3's XML error body.
func deny(w http.ResponseWriter, r *http.Request, err error) {
	s3Fail(w, r, http.StatusForbidden, "AccessDenied", err.Error())
}

// s3Fail answers status with S3's XML error body of code.
func s3Fail(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	body, _ := xml.Marshal(s3Error{Code: code, Message: message, Resource: r.URL.Path})
	_, _ = w.Write([]byte(xml.Header)) // the client's connection: nothing to do if it is gone
	_, _ = w.Write(body)
}

// unsupportedEncryption names the server-side encryption r asks for that
// this server cannot give (anything but SSE-S3's AES256), or "".
func unsupportedEncryption(r *http.Request) string {
	if v := r.Header.Get("X-Amz-Server-Side-Encryption"); v != "" && v != "AES256" {
		return v
	}
	if r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != "" {
		return "SSE-C"
	}
	return ""
}

// sseWriter adds X-Amz-Server-Side-Encryption: AES256 to a successful
// answer about an object: every object body is encrypted at rest.
type sseWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *sseWriter) WriteHeader(code int) {
	if !w.wrote && code >= 300 {
		w.Header().Del("X-Amz-Server-Side-Encryption")
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *sseWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// isObjectPath reports whether a path-style URL names an object
// (/bucket/key), not a bucket or the service.
func isObjectPath(p string) bool {
	_, key, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return key != ""
}

// guard lets through only requests signed by s, and marks the successful
// answers about objects as encrypted at rest.
func (s sigV4) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.verify(r); err != nil {
			deny(w, r, err)
			return
		}
		if sse := unsupportedEncryption(r); sse != "" {
			// Storing it would echo the header back on reads: a claim of
			// an encryption that was not applied.
			s3Fail(w, r, http.StatusNotImplemented, "NotImplemented",
				"server-side encryption "+sse+" is not supported here: every object is stored with AES256 (SSE-S3)")
			return
		}
		if sum, err := hex.DecodeString(r.Header.Get("X-Amz-Content-Sha256")); err == nil && len(sum) == sha256.Size {
			r.Body = &payloadCheck{body: r.Body, hash: sha256.New(), want: sum}
		}
		if isObjectPath(r.URL.Path) {
			switch r.Method {
			case http.MethodGet, http.MethodHead, http.MethodPut:
				w.Header().Set("X-Amz-Server-Side-Encryption", "AES256")
				w = &sseWriter{ResponseWriter: w}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// payloadCheck reads a request body and fails its end when the body does
// not hash to the signed X-Amz-Content-Sha256.
type payloadCheck struct {
	body io.ReadCloser
	hash hash.Hash
	want []byte
}

func (p *payloadCheck) Read(b []byte) (int, error) {
	n, err := p.body.Read(b)
	p.hash.Write(b[:n])
	if errors.Is(err, io.EOF) && !hmac.Equal(p.hash.Sum(nil), p.want) {
		return n, gofakes3.ErrorMessage(gofakes3.ErrBadDigest, "the body does not hash to the signed X-Amz-Content-Sha256")
	}
	return n, err
}

func (p *payloadCheck) Close() error { return p.body.Close() }
