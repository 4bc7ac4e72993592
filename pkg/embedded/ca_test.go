package embedded

import (
	"crypto/tls"
	"net"
	"testing"
)

func TestCAIssuesCertificatesItsClientsVerify(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.ServerTLS("broker")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()

	// The CA reloaded from its directory is the one that signed.
	again, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), again.ClientTLS())
	if err != nil {
		t.Fatalf("a client trusting the reloaded CA: %v", err)
	}
	_ = conn.Close()

	// Another stack's CA is not trusted, nor is a name the certificate lacks.
	other, err := NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if conn, err := tls.Dial("tcp", ln.Addr().String(), other.ClientTLS()); err == nil {
		_ = conn.Close()
		t.Fatal("a client trusting another CA connected")
	}
	cfg := again.ClientTLS()
	cfg.ServerName = "elsewhere.example"
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), cfg); err == nil {
		_ = conn.Close()
		t.Fatal("a certificate for 127.0.0.1 and localhost verified as elsewhere.example")
	}
}
