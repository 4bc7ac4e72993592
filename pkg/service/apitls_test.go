package service

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/embedded"
)

// withTLSAPI is the configuration of a service whose API serves HTTPS.
type withTLSAPI struct {
	config.Service
	cert, key string
}

func (c withTLSAPI) API() API {
	return API{Addr: "127.0.0.1:0", TLSCertFile: c.cert, TLSKeyFile: c.key}
}

// TestAPIServesTLSWhenGivenACertificate checks that an API given a
// certificate speaks HTTPS alone: a client trusting the CA is served, a
// plaintext request is refused, and a client that does not trust the CA
// does not get through.
func TestAPIServesTLSWhenGivenACertificate(t *testing.T) {
	ca, err := embedded.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("ingest")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg := withTLSAPI{Service: config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, cert: cert, key: key}
	p, err := Start("tester", cfg.Service, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Handle("POST /v1/things", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))

	post := func(client *http.Client, url string) (int, error) {
		resp, err := client.Post(url, "application/json", strings.NewReader("{}"))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLS()}}
	if code, err := post(trusting, "https://"+p.APIAddr()+"/v1/things"); err != nil || code != http.StatusAccepted {
		t.Errorf("POST over TLS = %d, %v; want 202", code, err)
	}
	if code, err := post(http.DefaultClient, "http://"+p.APIAddr()+"/v1/things"); err == nil && code != http.StatusBadRequest {
		t.Errorf("POST in plaintext to the TLS API = %d; want it refused (400)", code)
	}
	other, err := embedded.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stranger := &http.Client{Transport: &http.Transport{TLSClientConfig: other.ClientTLS()}}
	if _, err := post(stranger, "https://"+p.APIAddr()+"/v1/things"); err == nil {
		t.Error("a client trusting another CA got through")
	}
}

// TestAPIRefusesAnUnreadableCertificate checks the start fails, naming
// the variables, when the certificate cannot be loaded.
func TestAPIRefusesAnUnreadableCertificate(t *testing.T) {
	cfg := withTLSAPI{Service: config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, cert: "/nonexistent/cert.pem", key: "/nonexistent/key.pem"}
	p, err := Start("tester", cfg.Service, cfg, io.Discard)
	if err == nil {
		p.Close()
		t.Fatal("started with a certificate that does not exist")
	}
	if !strings.Contains(err.Error(), "HTTP_TLS_CERT_FILE") {
		t.Errorf("error %v, want it to name HTTP_TLS_CERT_FILE", err)
	}
}
