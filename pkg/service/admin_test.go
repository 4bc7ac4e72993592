package service

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/config"
)

// withAPI is the configuration of a service with an API of its own.
type withAPI struct {
	config.Service
	HTTPAddr string `env:"HTTP_ADDR" envDefault:"127.0.0.1:0"`
}

func (c withAPI) API() API { return API{Addr: c.HTTPAddr} }

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// startingLine is the "starting" line of a JSON log.
func startingLine(t *testing.T, log string) map[string]any {
	t.Helper()
	for line := range strings.Lines(log) {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == "starting" {
			return entry
		}
	}
	t.Fatalf("no starting line in %s", log)
	return nil
}

// TestAPIAddressServesNoAdminEndpoints checks that a service's own API
// listens apart from its admin address: the API's clients reach neither
// the metrics, the health nor the profiles (even with ADMIN_PPROF=true),
// and the admin address does not serve the API.
func TestAPIAddressServesNoAdminEndpoints(t *testing.T) {
	var out bytes.Buffer
	cfg := withAPI{Service: config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0", AdminPprof: true}, HTTPAddr: "127.0.0.1:0"}
	p, err := Start("tester", cfg.Service, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Handle("POST /v1/things", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	p.Telemetry.SetReady("db", true, "")

	start := startingLine(t, out.String())
	if start["admin_addr"] != p.Telemetry.Addr() || start["http_addr"] != p.APIAddr() || p.APIAddr() == p.Telemetry.Addr() {
		t.Fatalf("starting line names admin_addr %v and http_addr %v, want %s and %s, apart", start["admin_addr"], start["http_addr"], p.Telemetry.Addr(), p.APIAddr())
	}
	api, admin := "http://"+p.APIAddr(), "http://"+p.Telemetry.Addr()
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine"} {
		if code := status(t, api+path); code != http.StatusNotFound {
			t.Errorf("GET %s on the API address = %d, want 404", path, code)
		}
		if code := status(t, admin+path); code != http.StatusOK {
			t.Errorf("GET %s on the admin address = %d, want 200", path, code)
		}
	}
	resp, err := http.Post(api+"/v1/things", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /v1/things on the API address = %d, want 202", resp.StatusCode)
	}
	resp, err = http.Post(admin+"/v1/things", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		t.Error("POST /v1/things on the admin address was served")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", p.APIAddr()); err == nil {
		_ = c.Close()
		t.Errorf("the API address %s still listens after Close", p.APIAddr())
	}
}

// TestServiceWithoutAPIListensOnAdminOnly checks that a service without
// an API of its own names no http_addr: it listens on its admin address
// alone.
func TestServiceWithoutAPIListensOnAdminOnly(t *testing.T) {
	var out bytes.Buffer
	p, err := Start("tester", config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := startingLine(t, out.String())
	if _, ok := start["http_addr"]; ok || start["admin_addr"] != p.Telemetry.Addr() || p.APIAddr() != "" {
		t.Errorf("starting line %v (API address %q), want admin_addr %s and no http_addr", start, p.APIAddr(), p.Telemetry.Addr())
	}
}

// TestAdminAddrOffLoopbackWarns checks that an admin address reachable
// from the network is served, with a warning saying so, and that the
// default loopback one binds loopback only, without a warning.
func TestAdminAddrOffLoopbackWarns(t *testing.T) {
	def, err := config.Parse[config.Service](nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(def.AdminAddr)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		addr     string
		loopback bool
	}{
		// The default's host, on a free port: 9090 may be taken.
		"default host":    {net.JoinHostPort(host, "0"), true},
		"every interface": {"0.0.0.0:0", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			p, err := Start("tester", config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: tt.addr}, struct{}{}, &out)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			bound, _, _ := net.SplitHostPort(p.Telemetry.Addr())
			ip := net.ParseIP(bound)
			if ip == nil || ip.IsLoopback() != tt.loopback {
				t.Errorf("ADMIN_ADDR %s bound %s, want loopback = %v", tt.addr, p.Telemetry.Addr(), tt.loopback)
			}
			warned := strings.Contains(out.String(), "admin endpoints reachable from the network")
			if warned == tt.loopback {
				t.Errorf("ADMIN_ADDR %s: warned = %v, want %v; log:\n%s", tt.addr, warned, !tt.loopback, out.String())
			}
		})
	}
}
