package embedded

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is the certificate authority of one local stack: it signs the server
// certificates of the in-process broker, PostgreSQL and whatever else a
// stack serves over TLS, and its certificate is the one file a client needs
// to verify them. Its key never leaves its directory (0600).
type CA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Files of a CA's directory.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
)

// caValidity is how long a stack's certificates are valid: a stack is
// remade long before, and a leaked key is worth little after.
const caValidity = 90 * 24 * time.Hour

// NewCA returns the CA kept in dir, making it (and dir, 0700) when dir holds
// none yet, so that a restarted stack keeps the CA its clients trust.
func NewCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("CA directory: %w", err)
	}
	ca := &CA{dir: dir}
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile)) // #nosec G304 -- the stack's own directory
	switch {
	case err == nil:
		return ca, ca.load(certPEM)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read the CA certificate: %w", err)
	}
	if ca.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "datamill local CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if ca.cert, err = x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if err := writePair(dir, caCertFile, caKeyFile, der, ca.key); err != nil {
		return nil, err
	}
	return ca, nil
}

func (c *CA) load(certPEM []byte) error {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return fmt.Errorf("%s: no PEM certificate", filepath.Join(c.dir, caCertFile))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(c.dir, caCertFile), err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(c.dir, caKeyFile)) // #nosec G304 -- the stack's own directory
	if err != nil {
		return fmt.Errorf("read the CA key: %w", err)
	}
	block, _ = pem.Decode(keyPEM)
	if block == nil {
		return fmt.Errorf("%s: no PEM key", filepath.Join(c.dir, caKeyFile))
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(c.dir, caKeyFile), err)
	}
	c.cert, c.key = cert, key
	return nil
}

// CertFile is the path of the CA's certificate (PEM), what clients verify
// the stack's servers with (KAFKA_TLS_CA_FILE, sslrootcert, S3_CA_FILE).
func (c *CA) CertFile() string { return filepath.Join(c.dir, caCertFile) }

// Pool is a certificate pool holding the CA alone.
func (c *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.cert)
	return pool
}

// Issue signs a certificate for name, valid for hosts (IP addresses or DNS
// names; none means 127.0.0.1 and localhost) as a server and as a client,
// and writes it and its key to <dir>/<name>.pem and <dir>/<name>-key.pem
// (0600), replacing earlier ones. It returns both paths.
func (c *CA) Issue(name string, hosts ...string) (certFile, keyFile string, err error) {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("key of %s: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     c.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return "", "", fmt.Errorf("certificate of %s: %w", name, err)
	}
	if err := writePair(c.dir, name+".pem", name+"-key.pem", der, key); err != nil {
		return "", "", err
	}
	return filepath.Join(c.dir, name+".pem"), filepath.Join(c.dir, name+"-key.pem"), nil
}

// ServerTLS issues a certificate for name and hosts and returns a server
// configuration presenting it (TLS 1.2 at least).
func (c *CA) ServerTLS(name string, hosts ...string) (*tls.Config, error) {
	certFile, keyFile, err := c.Issue(name, hosts...)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %w", name, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ClientTLS returns a client configuration that trusts the CA alone.
func (c *CA) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: c.Pool(), MinVersion: tls.VersionTLS12}
}

// writePair writes a certificate (0644) and its key (0600) into dir.
func writePair(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key %s: %w", keyName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	// #nosec G306 -- a certificate is public; servers running as another user read it
	if err := os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	return nil
}

// serial is a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the system's randomness is gone
	}
	return n
}
