// Package telemetry serves a process's Prometheus metrics and its health
// and readiness on its admin address (ADMIN_ADDR, loopback by default):
// /metrics, /healthz (the process is alive), /readyz (every component the
// process registered says it is ready) and, only when asked for, Go's
// profiles under /debug/pprof/. It serves nothing else: a service's own
// API listens apart, so that what it exposes to clients never includes
// the operator's endpoints.
package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server exposes a metrics registry and readiness over HTTP.
type Server struct {
	registry *prometheus.Registry
	srv      *http.Server
	ln       net.Listener

	mu    sync.Mutex
	state map[string]componentState
}

// componentState is what a component last said: whether it is ready, and
// why not, or a detail while it is.
type componentState struct {
	ready bool
	note  string
}

// Options are what a Server serves beyond metrics and health.
type Options struct {
	// Pprof serves Go's profiles under /debug/pprof/; without it they
	// answer 404.
	Pprof bool
}

// New returns a server with a fresh registry holding the Go runtime and
// process collectors. Nothing listens until Start.
func New(opts Options) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	s := &Server{registry: reg, state: map[string]componentState{}}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if opts.Pprof {
		// Go's profiles, for finding where a service spends its time
		// (`go tool pprof http://<addr>/debug/pprof/profile?seconds=30`).
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: time.Minute,
		// A 30 s CPU profile must fit in a response's time.
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	return s
}

// Registry is where the process registers its metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// SetReady records whether component is ready; reason says why not, or,
// when it is ready, is a detail /readyz shows (e.g. an alert the component
// raises while it goes on). The process is ready once every component it
// named is ready.
func (s *Server) SetReady(component string, ready bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ready && reason == "" {
		reason = "not ready"
	}
	s.state[component] = componentState{ready: ready, note: reason}
}

// Ready reports whether at least one component is registered and all are
// ready.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.state) == 0 {
		return false
	}
	for _, c := range s.state {
		if !c.ready {
			return false
		}
	}
	return true
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.state))
	for name := range s.state {
		names = append(names, name)
	}
	sort.Strings(names)
	type component struct {
		Name   string `json:"name"`
		Ready  bool   `json:"ready"`
		Reason string `json:"reason,omitempty"`
		Detail string `json:"detail,omitempty"`
	}
	body := struct {
		Ready      bool        `json:"ready"`
		Components []component `json:"components"`
	}{Ready: len(names) > 0}
	for _, name := range names {
		c := s.state[name]
		if c.ready {
			body.Components = append(body.Components, component{Name: name, Ready: true, Detail: c.note})
			continue
		}
		body.Components = append(body.Components, component{Name: name, Reason: c.note})
		body.Ready = false
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Start listens on addr (host:port; port 0 picks a free one) and serves in
// the background until Shutdown.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on ADMIN_ADDR %s: %w", addr, err)
	}
	s.ln = ln
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Addr is the address Start listens on.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops serving, waiting for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down telemetry server: %w", err)
	}
	return nil
}
