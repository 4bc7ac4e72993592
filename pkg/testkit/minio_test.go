package testkit_test

import (
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/testkit"
)

// TestMinIOServesTLSOnlyToItsCAAndDeniesAnonymousListing checks the
// server testkit starts: its certificate verifies only against its own
// CA, and the bucket exists but refuses an anonymous listing.
func TestMinIOServesTLSOnlyToItsCAAndDeniesAnonymousListing(t *testing.T) {
	m := testkit.MinIO(t)

	_, err := http.Get(m.Endpoint + "/minio/health/live")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("GET with the system roots: got %v, want an unknown authority error", err)
	}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: m.TLSConfig(t)}}
	resp, err := client.Get(m.Endpoint + "/" + m.Bucket + "?list-type=2")
	if err != nil {
		t.Fatalf("anonymous listing: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
		t.Errorf("anonymous listing of %s: got %s %s, want 403 AccessDenied", m.Bucket, resp.Status, body)
	}
	for name, c := range map[string]testkit.Credentials{"root": m.Root, "sink": m.Sink, "reader": m.Reader} {
		if c.AccessKey == "" || c.SecretKey == "" {
			t.Errorf("%s credentials are empty: %+v", name, c)
		}
	}
}
