package telemetry

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	s := New(Options{})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "datamill_test_things_total", Help: "Things."})
	s.Registry().MustRegister(c)
	c.Add(3)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	base := "http://" + s.Addr()

	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with no component = %d %s, want 503", code, body)
	}
	s.SetReady("kafka", true, "")
	s.SetReady("model", false, "no model artefact yet")
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no model artefact yet") {
		t.Errorf("/readyz with one component down = %d %s, want 503 naming the reason", code, body)
	}
	s.SetReady("model", true, "")
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz all ready = %d %s, want 200", code, body)
	}
	s.SetReady("model", true, "dead-letter flood")
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"detail":"dead-letter flood"`) {
		t.Errorf("/readyz ready with a detail = %d %s, want 200 showing the detail", code, body)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{"datamill_test_things_total 3", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestPprofOnlyWhenAsked checks that Go's profiles, which show what a
// process holds and where it spends its time, are served only with
// Options.Pprof (ADMIN_PPROF=true), and answer 404 otherwise.
func TestPprofOnlyWhenAsked(t *testing.T) {
	tests := map[string]struct {
		opts Options
		want int
	}{
		"off by default": {Options{}, http.StatusNotFound},
		"asked for":      {Options{Pprof: true}, http.StatusOK},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := New(tt.opts)
			if err := s.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
				if code, _ := get(t, "http://"+s.Addr()+path); code != tt.want {
					t.Errorf("GET %s with %+v = %d, want %d", path, tt.opts, code, tt.want)
				}
			}
			if code, _ := get(t, "http://"+s.Addr()+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz with %+v = %d, want 200", tt.opts, code)
			}
		})
	}
}

func TestStartReportsBusyAddress(t *testing.T) {
	a := New(Options{})
	if err := a.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(t.Context()) })
	if err := New(Options{}).Start(a.Addr()); err == nil || !strings.Contains(err.Error(), "ADMIN_ADDR") {
		t.Errorf("Start on a busy address: err = %v, want one naming ADMIN_ADDR", err)
	}
}
