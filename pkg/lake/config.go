package lake

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// bucketName is what S3 accepts as a bucket name.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	switch c.SSE {
	case "s3", "none":
	default:
		errs = append(errs, fmt.Errorf("S3_SSE %q: want s3 or none", c.SSE))
	}
	if c.Endpoint == "" {
		return errors.Join(errs...)
	}
	u, err := endpoint(c.Endpoint)
	if err != nil {
		errs = append(errs, err)
	}
	if !bucketName.MatchString(c.Bucket) {
		errs = append(errs, fmt.Errorf("S3_BUCKET %q: want 3 to 63 lower-case letters, digits, dots and hyphens", c.Bucket))
	}
	if strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
		errs = append(errs, fmt.Errorf("S3_PREFIX %q: no leading or trailing slash", c.Prefix))
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		errs = append(errs, errors.New("S3_ACCESS_KEY and S3_SECRET_KEY (or their _FILE variants) are required with S3_ENDPOINT"))
	}
	if c.CAFile != "" {
		if u != nil && u.Scheme != "https" {
			errs = append(errs, fmt.Errorf("S3_CA_FILE is set but S3_ENDPOINT %s is not https", c.Endpoint))
		}
		if _, err := caPool(c.CAFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// endpoint parses S3_ENDPOINT: an http or https URL of a host, with no
// path, query or credentials.
func endpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("S3_ENDPOINT: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("S3_ENDPOINT %q: want an http:// or https:// URL", s)
	case u.Host == "":
		return nil, fmt.Errorf("S3_ENDPOINT %q: no host", s)
	case u.User != nil:
		return nil, errors.New("S3_ENDPOINT: credentials go in S3_ACCESS_KEY and S3_SECRET_KEY, not in the URL")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("S3_ENDPOINT %q: want scheme://host[:port] alone", s)
	}
	return u, nil
}

// caPool reads the PEM bundle at file.
func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file) // #nosec G304 -- a CA bundle path the operator configures
	if err != nil {
		return nil, fmt.Errorf("S3_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("S3_CA_FILE %s: no PEM certificate found", file)
	}
	return pool, nil
}
