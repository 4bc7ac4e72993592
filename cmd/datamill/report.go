package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	htmlreport "github.com/datamill/datamill/cmd/datamill/internal/report"
	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
)

const reportUsage = `usage: datamill report [--dataset DS]... [--out FILE] [--serve ADDR [--public]]

Writes one self-contained HTML page (charts as inline SVG with tooltips, a
legend that toggles series, a CSV link per chart; nothing is fetched from the
network) read from the warehouse of DATABASE_URL (the URL "datamill dev"
prints): the sections of each --dataset (jobs, users; all unless given), the
pipeline and its eco meter, the dead letters by stage and reason and each
stage's lag (read from Kafka: KAFKA_BROKERS and SCHEMA_REGISTRY_URL, dev's
unless set, and the services' other KAFKA_* variables), and the tables' profiles. A dataset that was not run, a missing
eco meter or an unreachable broker is a note in its section, not an error.

With --serve it serves the page instead, built again on each load, on a
loopback address unless --public.

flags:`

// datasetSection is the section of dataset ds, if it has one.
func datasetSection(ds string) (htmlreport.Source, bool) {
	switch ds {
	case "jobs":
		return htmlreport.Jobs, true
	case "users":
		return htmlreport.Users, true
	}
	return nil, false
}

// stringsFlag is a flag that may be given several times.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func reportCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var datasets stringsFlag
	fs.Var(&datasets, "dataset", "a dataset whose section the report has: jobs or users; repeat for several (default: all)")
	out := fs.String("out", "report.html", "the page's file")
	serve := fs.String("serve", "", "serve the page on this address (host:port) instead of writing it")
	public := fs.Bool("public", false, "with --serve: allow an address that is not loopback")
	fs.Usage = func() {
		fmt.Fprintln(stderr, reportUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "datamill report: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	env := config.ToMap(environ)
	kcfg, err := cliKafka(env)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	sources, err := reportSources(datasets, kcfg, cmpOr(env["SCHEMA_REGISTRY_URL"], defaultRegistry))
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	database := env["DATABASE_URL"]
	if database == "" {
		return errors.New("report: set DATABASE_URL to the warehouse (`datamill dev` prints it)")
	}
	if *serve != "" {
		if !*public && !loopback(*serve) {
			return fmt.Errorf("report: --serve %s is not a loopback address; the page shows the warehouse's data: give --public to serve it beyond this machine", *serve)
		}
		return serveReport(ctx, *serve, database, sources, stdout)
	}
	if err := writeReport(ctx, database, sources, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n", *out)
	return nil
}

// reportSources are the sections of datasets (all when none), then the
// pipeline's, the dead letters and lag the brokers of kcfg hold (their
// schemas in registry), and the profiles'.
func reportSources(datasets []string, kcfg kafka.Config, registry string) ([]htmlreport.Source, error) {
	if len(datasets) == 0 {
		datasets = []string{"jobs", "users"}
	}
	var sources []htmlreport.Source
	for i, ds := range datasets {
		src, ok := datasetSection(ds)
		if !ok {
			return nil, fmt.Errorf("--dataset %s: no section for it (the report has jobs and users)", ds)
		}
		if slices.Contains(datasets[:i], ds) {
			continue
		}
		sources = append(sources, src)
	}
	return append(sources, htmlreport.Pipeline, htmlreport.Streams(kcfg, registry, slices.Compact(slices.Sorted(slices.Values(datasets)))), htmlreport.Profiles), nil
}

// buildReport reads the sections from database and renders the page. A
// section that failed is in the page with its error, and the error comes
// back too.
func buildReport(ctx context.Context, database string, sources []htmlreport.Source, w io.Writer) error {
	db, err := pgx.Connect(ctx, database)
	if err != nil {
		return fmt.Errorf("report: connect to the warehouse: %w", err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	sections, buildErr := htmlreport.Build(ctx, db, sources...)
	if sections == nil && buildErr != nil {
		return fmt.Errorf("report: %w", buildErr)
	}
	if err := htmlreport.Render(w, "datamill report", time.Now(), sections); err != nil {
		return err
	}
	if buildErr != nil {
		return fmt.Errorf("report: %w", buildErr)
	}
	return nil
}

// writeReport writes the page to the file path, whole or not at all (a
// temporary file renamed), even when a section failed, whose error it
// returns.
func writeReport(ctx context.Context, database string, sources []htmlreport.Source, path string) error {
	var page bytes.Buffer
	err := buildReport(ctx, database, sources, &page)
	if page.Len() == 0 {
		return err
	}
	tmp, werr := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if werr != nil {
		return fmt.Errorf("report: %w", werr)
	}
	defer os.Remove(tmp.Name())
	_, werr = tmp.Write(page.Bytes())
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644) // #nosec G302 -- a page for readers besides its writer; CreateTemp's 0600 would hide it
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		return fmt.Errorf("report: write %s: %w", path, werr)
	}
	return err
}

// serveReport serves the page on addr, built again on each load, until
// ctx ends.
func serveReport(ctx context.Context, addr, database string, sources []htmlreport.Source, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var page bytes.Buffer
		err := buildReport(r.Context(), database, sources, &page)
		if page.Len() == 0 {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// A section's error is on the page itself.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:")
		_, _ = w.Write(page.Bytes())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "report: serving http://%s/ (each load reads the warehouse again)\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("report: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("report: stop serving: %w", err)
	}
	return nil
}
