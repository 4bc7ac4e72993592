// Package service is what every datamill service process starts with: the
// logger, the telemetry server (/metrics, /healthz, /readyz and, with
// ADMIN_PPROF=true, /debug/pprof/ on ADMIN_ADDR), the listener of its own
// API for a service that has one (the extractor's ingest, on HTTP_ADDR),
// the log of its effective configuration, readiness probes of the
// dependencies it needs and, for the stage services, one stage runner per
// dataset (RunStages).
package service

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/logging"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/telemetry"
	"github.com/datamill/datamill/schemas"
)

// Process is a running service's shared equipment.
type Process struct {
	Name      string
	Log       *zap.Logger
	Telemetry *telemetry.Server

	// api serves the service's own API, apart from Telemetry; nil for a
	// service without one.
	api    *http.Server
	apiMux *http.ServeMux
	apiLn  net.Listener

	svc        config.Service
	sampler    *eco.Sampler
	stopSample context.CancelFunc
	sampled    chan struct{} // closed once the eco sampler published its last sample
}

// APIConfig is the configuration of a service that serves an API of its
// own, such as the extractor's ingest. Start listens on the API's address
// too, with a server of its own: clients of the API never reach the
// operator's endpoints, which stay on the admin address.
type APIConfig interface {
	// API says where the API listens and how.
	API() API
}

// API is how a service's API listens.
type API struct {
	// Addr is host:port (HTTP_ADDR).
	Addr string
	// ReadTimeout bounds how long a request may take to arrive, body
	// included (one minute unless positive).
	ReadTimeout time.Duration
	// TLSCertFile and TLSKeyFile, when set, make the API serve HTTPS
	// alone (TLS 1.2 at least) with that certificate.
	TLSCertFile, TLSKeyFile string
}

// Start builds the logger (on stdout), starts the telemetry server on
// svc.AdminAddr and, when cfg is an APIConfig, the API's listener, and
// logs cfg, the service's whole configuration, with its secrets redacted,
// on a "starting" line naming both addresses (admin_addr, http_addr). A
// non-loopback admin address is served with a warning.
func Start(name string, svc config.Service, cfg any, stdout io.Writer) (*Process, error) {
	log, err := logging.New(stdout, name, svc.LogLevel, svc.LogFormat)
	if err != nil {
		return nil, err
	}
	tel := telemetry.New(telemetry.Options{Pprof: svc.AdminPprof})
	if err := tel.Start(svc.AdminAddr); err != nil {
		return nil, err
	}
	p := &Process{Name: name, Log: log, Telemetry: tel, svc: svc}
	addrs := []zap.Field{zap.String("admin_addr", tel.Addr())}
	if api, ok := cfg.(APIConfig); ok {
		if err := p.listenAPI(api.API()); err != nil {
			return nil, errors.Join(err, tel.Shutdown(context.Background()))
		}
		addrs = append(addrs, zap.String("http_addr", p.apiLn.Addr().String()))
	}
	log.Info("starting", append(addrs, zap.Any("config", config.Redacted(cfg)))...)
	if !config.Loopback(svc.AdminAddr) {
		log.Warn("admin endpoints reachable from the network: ADMIN_ADDR is not loopback, and serves /metrics, /healthz, /readyz and, with ADMIN_PPROF=true, /debug/pprof/ without authentication",
			zap.String("admin_addr", tel.Addr()), zap.Bool("pprof", svc.AdminPprof))
	}
	return p, nil
}

// listenAPI listens on a.Addr (HTTP_ADDR) and serves the API's handlers
// there in the background, over TLS when a certificate is given, bounding
// each request's headers (5 s, 64 KiB), body (a.ReadTimeout), answer and
// idle time (2 min), so that a stalled client frees its connection and
// memory.
func (p *Process) listenAPI(a API) error {
	var tc *tls.Config
	if a.TLSCertFile != "" || a.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(a.TLSCertFile, a.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("HTTP_TLS_CERT_FILE/HTTP_TLS_KEY_FILE: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", a.Addr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", a.Addr, err)
	}
	readTimeout := a.ReadTimeout
	if readTimeout <= 0 {
		readTimeout = time.Minute
	}
	p.apiLn, p.apiMux = ln, http.NewServeMux()
	p.api = &http.Server{
		Handler: p.apiMux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: readTimeout,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		TLSConfig: tc,
	}
	if tc != nil {
		go func() { _ = p.api.ServeTLS(ln, "", "") }()
	} else {
		go func() { _ = p.api.Serve(ln) }()
	}
	return nil
}

// Handle serves h for pattern on the service's API address (HTTP_ADDR),
// never on the admin address. It may be called while the process runs;
// it panics in a process whose configuration is not an APIConfig, which
// has no API address.
func (p *Process) Handle(pattern string, h http.Handler) {
	if p.apiMux == nil {
		panic(fmt.Sprintf("service %s has no API address: its configuration is not a service.APIConfig", p.Name))
	}
	p.apiMux.Handle(pattern, h)
}

// APIAddr is the address the service's API listens on; "" without one.
func (p *Process) APIAddr() string {
	if p.apiLn == nil {
		return ""
	}
	return p.apiLn.Addr().String()
}

// Close waits for the eco sampler's last sample, stops the API's server
// and the telemetry server and flushes the log.
func (p *Process) Close() error {
	if p.sampled != nil {
		p.stopSample()
		select {
		case <-p.sampled:
		case <-time.After(10 * time.Second):
			p.Log.Warn("the last eco sample was not published within 10 s")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if p.api != nil {
		if apiErr := p.api.Shutdown(ctx); apiErr != nil && !errors.Is(apiErr, http.ErrServerClosed) {
			err = fmt.Errorf("shut down the API server: %w", apiErr)
		}
	}
	err = errors.Join(err, p.Telemetry.Shutdown(ctx))
	p.Log.Info("stopped")
	_ = p.Log.Sync()
	return err
}

// Probe reports whether a dependency answers; it is called until it does.
type Probe struct {
	Component string
	Check     func(ctx context.Context) error
}

// Await runs every probe until it succeeds or ctx ends, keeping /readyz
// not ready (with the last error as the reason) until all have succeeded.
func (p *Process) Await(ctx context.Context, probes ...Probe) error {
	for _, pr := range probes {
		p.Telemetry.SetReady(pr.Component, false, "not checked yet")
	}
	backoff := retry.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}
	for _, pr := range probes {
		for attempt := 1; ; attempt++ {
			checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := pr.Check(checkCtx)
			cancel()
			if err == nil {
				p.Telemetry.SetReady(pr.Component, true, "")
				p.Log.Info("dependency ready", zap.String("component", pr.Component))
				break
			}
			p.Telemetry.SetReady(pr.Component, false, err.Error())
			if attempt == 1 || attempt%10 == 0 {
				p.Log.Warn("dependency not ready; retrying", zap.String("component", pr.Component), zap.Int("attempt", attempt), zap.Error(err))
			}
			if !backoff.Wait(ctx, attempt) {
				return fmt.Errorf("waiting for %s: %w", pr.Component, errors.Join(ctx.Err(), err))
			}
		}
	}
	return nil
}

// KafkaProbe checks that the brokers answer with a client built from cfg.
// The client is closed when ctx ends.
func KafkaProbe(ctx context.Context, cfg kafka.Config, log *zap.Logger) (Probe, error) {
	cl, err := kafka.NewClient(cfg, log)
	if err != nil {
		return Probe{}, err
	}
	context.AfterFunc(ctx, cl.Close)
	return Probe{Component: "kafka", Check: func(ctx context.Context) error { return ping(ctx, cl) }}, nil
}

func ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// RegistryProbe checks that the schema registry answers.
func RegistryProbe(reg *serde.Registry) Probe {
	return Probe{Component: "schema_registry", Check: reg.Ping}
}

// PostgresProbe checks that PostgreSQL answers.
func PostgresProbe(cfg pg.Config) Probe {
	return Probe{Component: "postgres", Check: func(ctx context.Context) error {
		pool, err := pg.Open(ctx, cfg)
		if err != nil {
			return err
		}
		pool.Close()
		return nil
	}}
}

// Main is the whole of a service's main function: it runs run with a
// context that ends on SIGINT or SIGTERM, prints its error once and exits
// with status 1 when it fails.
func Main(name string, run func(ctx context.Context, args, environ []string, stdout io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Environ(), os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Run parses a service's configuration C from environ, starts the process
// and calls step until ctx ends. Errors of step after ctx ended are the
// shutdown's own and are not reported. With a command in args (env,
// healthcheck, migrate, help), it runs that instead; any other argument is an error.
func Run[C config.Configured](ctx context.Context, name string, args, environ []string, stdout io.Writer,
	step func(ctx context.Context, p *Process, cfg C) error,
) (err error) {
	if done, err := command[C](ctx, name, args, environ, stdout); done {
		return err
	}
	if len(args) > 1 {
		return fmt.Errorf("unknown command %q (commands: env, healthcheck, migrate, help)", args[1])
	}
	cfg, err := config.Parse[C](environ)
	if err != nil {
		return err
	}
	p, err := Start(name, cfg.Block(), cfg, stdout)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	if err := step(ctx, p, cfg); err != nil && ctx.Err() == nil {
		p.Log.Error("stopping", zap.Error(err))
		return err
	}
	return nil
}

// Connect waits until Kafka, the schema registry and, when db is not nil,
// PostgreSQL answer (keeping /readyz not ready until then), and returns the
// registry client.
func (p *Process) Connect(ctx context.Context, kcfg kafka.Config, rcfg serde.Config, db *pg.Config) (*serde.Registry, error) {
	brokers, err := KafkaProbe(ctx, kcfg, p.Log)
	if err != nil {
		return nil, err
	}
	reg, err := serde.NewRegistry(rcfg)
	if err != nil {
		return nil, err
	}
	probes := []Probe{brokers, RegistryProbe(reg)}
	if db != nil {
		probes = append(probes, PostgresProbe(*db))
	}
	if err := p.Await(ctx, probes...); err != nil {
		return nil, err
	}
	if err := p.sample(ctx, kcfg, reg); err != nil {
		return nil, err
	}
	return reg, nil
}

// Schemas opens the catalog of cfg: the built-in datasets and those of
// DATASETS_DIR (or the deprecated SCHEMAS_DIR, with a warning). It logs the
// files taken from the directory, and warns of the derived schemas' files
// there, which it ignores.
func (p *Process) Schemas(cfg schemas.Config) (*schemas.Catalog, error) {
	dir, variable, err := cfg.Directory()
	if err != nil {
		return nil, err
	}
	if variable == "SCHEMAS_DIR" {
		p.Log.Warn("SCHEMAS_DIR is deprecated: name the directory in DATASETS_DIR", zap.String("dir", dir))
	}
	cat, err := cfg.Open()
	if err != nil {
		return nil, err
	}
	if o := cat.Overrides(); len(o) > 0 {
		p.Log.Info("dataset files from "+variable, zap.String("dir", dir), zap.Strings("files", o))
	}
	if i := cat.Ignored(); len(i) > 0 {
		p.Log.Warn("ignored files of derived schemas: persisted and scored schemas are derived from clean.avsc",
			zap.String("dir", dir), zap.Strings("files", i))
	}
	return cat, nil
}

// Datasets opens the catalog as Schemas does and looks up every dataset of
// names, the process's DATASETS, so that one the catalog lacks or cannot
// read stops the process at start with the setting named; the services'
// later look-ups of those names cannot fail.
func (p *Process) Datasets(cfg schemas.Config, names []string) (*schemas.Catalog, error) {
	cat, err := p.Schemas(cfg)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range names {
		if _, err := cat.Dataset(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("DATASETS: %w", err)
	}
	return cat, nil
}

// ReportStored makes the eco samples report what fn says the process
// keeps stored; it does nothing before Connect.
func (p *Process) ReportStored(fn eco.StoredFunc) {
	if p.sampler != nil {
		p.sampler.SetStored(fn)
	}
}

// sample starts the eco sampler: what the process uses goes to
// eco.samples every ECO_SAMPLE_INTERVAL until ctx ends or the process
// closes, and once more then.
func (p *Process) sample(ctx context.Context, kcfg kafka.Config, reg *serde.Registry) error {
	publish, closePublisher, err := eco.NewPublisher(ctx, kcfg, reg, p.Log)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	s := &eco.Sampler{
		RunID: p.svc.RunID, Service: p.Name, Instance: fmt.Sprintf("%s:%d", host, os.Getpid()),
		Datasets: p.svc.Datasets, Every: cmp.Or(p.svc.EcoInterval, 5*time.Second), Metrics: p.Telemetry.Registry(), Log: p.Log,
		Publish: publish, Scope: eco.ScopeOf(kcfg.Brokers),
	}
	p.sampler = s
	if err := s.Start(); err != nil {
		closePublisher()
		return err
	}
	ctx, p.stopSample = context.WithCancel(ctx)
	p.sampled = make(chan struct{})
	go func() {
		defer close(p.sampled)
		defer closePublisher()
		s.Run(ctx)
	}()
	return nil
}

// Idle connects, then waits for ctx to end: the shape of a service whose
// step is not built yet, so that it still starts, reports ready and stops
// cleanly in the stack.
func (p *Process) Idle(ctx context.Context, kcfg kafka.Config, rcfg serde.Config, db *pg.Config) error {
	if _, err := p.Connect(ctx, kcfg, rcfg, db); err != nil {
		return err
	}
	p.Log.Info("ready; this service's step is not built yet, idling")
	<-ctx.Done()
	return nil
}

// RunAll runs every function until ctx ends or one of them fails, which
// stops the others; it returns their errors joined.
func RunAll(ctx context.Context, runs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, run := range runs {
		wg.Go(func() {
			if errs[i] = run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
