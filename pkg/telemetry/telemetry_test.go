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
	s := New()
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
	if code, body := get(t, base+"/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap = %d, want 200 with a heap profile", code)
	}
}

func TestStartReportsBusyAddress(t *testing.T) {
	a := New()
	if err := a.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(t.Context()) })
	if err := New().Start(a.Addr()); err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") {
		t.Errorf("Start on a busy address: err = %v, want one naming HTTP_ADDR", err)
	}
}
