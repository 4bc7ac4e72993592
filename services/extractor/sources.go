package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/extractor/internal/publish"
	"github.com/datamill/datamill/services/extractor/internal/source/files"
	"github.com/datamill/datamill/services/extractor/internal/source/httpingest"
	"github.com/datamill/datamill/services/extractor/internal/source/poll"
)

// A source brings the records of its datasets into their raw topics.
//
// Run publishes until ctx ends, then returns nil; an error means the
// source cannot go on, and stops the extractor. It reports through ready
// whether the source is ready, whenever that changes.
type source interface {
	Run(ctx context.Context, ready func(ready bool, reason string)) error
}

// declaration is one source of a dataset: an entry of the sources: list
// of its dataset.yaml, or one the deployment adds (EXTRACTOR_FILES).
type declaration struct {
	dataset string
	kind    string // a key of sourceKinds
	path    string // kind files: a file, a glob or a directory
	// name is a polled source's name (kinds api and scrape), unique in
	// its dataset.
	name string
	// options are the kind's options as its declare read them, for its
	// build.
	options any
}

// sourceKind builds the one source of a kind, which serves every
// declaration of that kind.
type sourceKind struct {
	component string // the source's name in /readyz
	// declare reads a declared source of the kind, strictly: an option
	// the kind does not have is an error naming the file and the source.
	declare func(dataset string, s schemas.Source) (declaration, error)
	build   func(w *wiring, decls []declaration) (source, error)
}

// sourceKinds are the kinds of source, by the name a declaration gives.
// A new kind is a package under internal/source and a line here.
func sourceKinds() map[string]sourceKind {
	return map[string]sourceKind{
		"http":   {component: "ingest", declare: declareHTTP, build: buildHTTP},
		"files":  {component: "files", declare: declareFiles, build: buildFiles},
		"api":    {component: "api", declare: declareAPI, build: buildAPI},
		"scrape": {component: "scrape", declare: declareScrape, build: buildScrape},
	}
}

// httpOptions are the options of an http source: none.
type httpOptions struct{}

// declareHTTP reads an http source.
func declareHTTP(dataset string, s schemas.Source) (declaration, error) {
	if err := s.Options(&httpOptions{}); err != nil {
		return declaration{}, err
	}
	return declaration{dataset: dataset, kind: "http"}, nil
}

// filesOptions are the options of a files source.
type filesOptions struct {
	// Path is a file, a glob or a directory; a relative one is read from
	// the folder of the dataset.yaml, or from the working directory when
	// the declaration is built in.
	Path string `yaml:"path"`
}

// declareFiles reads a files source. Its path may be empty when
// EXTRACTOR_FILES gives the dataset's files; declarations checks that.
func declareFiles(dataset string, s schemas.Source) (declaration, error) {
	var o filesOptions
	if err := s.Options(&o); err != nil {
		return declaration{}, err
	}
	path := strings.TrimSpace(o.Path)
	if path != "" && !filepath.IsAbs(path) && s.Dir() != "" {
		path = filepath.Join(s.Dir(), path)
	}
	return declaration{dataset: dataset, kind: "files", path: path}, nil
}

// wiring is what the sources are built from.
type wiring struct {
	cfg      settings
	log      *zap.Logger
	out      *publish.Producer
	datasets map[string]*publish.Dataset
	// handle serves a handler on the ingest address, HTTP_ADDR.
	handle  func(pattern string, h http.Handler)
	metrics prometheus.Registerer
	// records counts the records published, by dataset and source kind
	// (http, file); dead the source records dead-lettered, by dataset.
	records, dead *prometheus.CounterVec
	// producers are the clients of the ingest endpoint, with their
	// tokens' hashes; requests counts its answers, by producer and code.
	producers []httpingest.Producer
	requests  *prometheus.CounterVec
	// polls are the metrics of the polled sources, which their kinds
	// share; nil until one is built.
	polls *poll.Metrics
}

// datasetsOf are the datasets decls name.
func (w *wiring) datasetsOf(decls []declaration) (map[string]*publish.Dataset, error) {
	out := map[string]*publish.Dataset{}
	for _, d := range decls {
		ds, ok := w.datasets[d.dataset]
		if !ok {
			return nil, fmt.Errorf("%s source of dataset %q: the dataset is not in DATASETS %v", d.kind, d.dataset, slices.Sorted(maps.Keys(w.datasets)))
		}
		out[d.dataset] = ds
	}
	return out, nil
}

// undeclared are the datasets served that are not among accepted, those
// of the http source.
func (w *wiring) undeclared(accepted map[string]*publish.Dataset) []string {
	var out []string
	for _, ds := range slices.Sorted(maps.Keys(w.datasets)) {
		if _, ok := accepted[ds]; !ok {
			out = append(out, ds)
		}
	}
	return out
}

// refuseHTTP serves, when no dataset declares an http source, an ingest
// endpoint that refuses every POST with 404, saying why for the datasets
// served.
func refuseHTTP(w *wiring) {
	cfg := w.ingestConfig()
	cfg.Undeclared = w.undeclared(nil)
	w.handle(httpingest.Pattern, httpingest.New(cfg))
}

// buildHTTP serves the ingest endpoint for the datasets of decls.
func buildHTTP(w *wiring, decls []declaration) (source, error) {
	datasets, err := w.datasetsOf(decls)
	if err != nil {
		return nil, err
	}
	cfg := w.ingestConfig()
	cfg.Out, cfg.Datasets, cfg.Undeclared = w.out, datasets, w.undeclared(datasets)
	cfg.MaxBody, cfg.MaxBodies = w.cfg.MaxBodyBytes, w.cfg.MaxBodies
	cfg.Records = w.records.MustCurryWith(prometheus.Labels{"source": "http"})
	api := httpingest.New(cfg)
	w.handle(httpingest.Pattern, api)
	return api, nil
}

// ingestConfig is what every ingest endpoint has: its producers, their
// rate and the count of its answers.
func (w *wiring) ingestConfig() httpingest.Config {
	return httpingest.Config{
		Log: w.log, Producers: w.producers, Requests: w.requests,
		Rate: w.cfg.IngestRate, Burst: ingestBurst(w.cfg.IngestRate),
	}
}

// ingestBurst is the burst of a producer's rate: two seconds' worth, so
// that a producer that paused (a retry, a restart) may catch up without
// a 429, while one sending far too fast is stopped within two seconds.
func ingestBurst(rate float64) int {
	return max(1, int(math.Ceil(2*rate)))
}

// ingestProducers are the producers of the tokens file and of the whole
// token, when given.
func ingestProducers(cfg settings) ([]httpingest.Producer, error) {
	var file []httpingest.Producer
	if cfg.IngestTokensFile != "" {
		f, err := os.Open(cfg.IngestTokensFile)
		if err != nil {
			return nil, fmt.Errorf("EXTRACTOR_INGEST_TOKENS_FILE: %w", err)
		}
		defer f.Close()
		if file, err = httpingest.ParseTokens(f, cfg.IngestTokensFile); err != nil {
			return nil, fmt.Errorf("EXTRACTOR_INGEST_TOKENS_FILE: %w", err)
		}
	}
	out, err := httpingest.Producers(file, cfg.HTTPToken)
	if err != nil {
		return nil, fmt.Errorf("EXTRACTOR_INGEST_TOKENS_FILE and EXTRACTOR_HTTP_TOKEN: %w", err)
	}
	return out, nil
}

// buildFiles reads the files of decls.
func buildFiles(w *wiring, decls []declaration) (source, error) {
	datasets, err := w.datasetsOf(decls)
	if err != nil {
		return nil, err
	}
	patterns := make([]files.Pattern, len(decls))
	for i, d := range decls {
		patterns[i] = files.Pattern{Dataset: d.dataset, Path: d.path}
	}
	done := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_extractor_files_total", Help: "Files read to their end.",
	}, []string{"dataset"})
	if err := w.metrics.Register(done); err != nil {
		return nil, fmt.Errorf("register the file metrics: %w", err)
	}
	return files.New(files.Config{
		Log: w.log.Named("files"), Kafka: w.cfg.Kafka, Out: w.out, Datasets: datasets, Patterns: patterns,
		Batch: w.cfg.FileBatch, Interval: w.cfg.ScanInterval, Terminal: os.Stderr,
		Records: w.records.MustCurryWith(prometheus.Labels{"source": "file"}), Dead: w.dead, Done: done,
	})
}

// declarations are the sources of the datasets the process serves, in
// their order: the sources: list of each one's dataset.yaml (declared, by
// dataset), HTTP alone for a dataset that declares none. The entries of
// EXTRACTOR_FILES, fileEntries, are the file sources of their dataset at
// this deployment: a dataset with entries has these in place of the file
// paths its dataset.yaml declares.
func declarations(kinds map[string]sourceKind, datasets []string, declared map[string]schemas.Declaration, fileEntries []string) ([]declaration, error) {
	deployed := map[string][]declaration{}
	for _, e := range fileEntries {
		ds, path, ok := strings.Cut(e, "=")
		ds, path = strings.TrimSpace(ds), strings.TrimSpace(path)
		if !ok || ds == "" || path == "" {
			return nil, fmt.Errorf("EXTRACTOR_FILES entry %q: want dataset=path, e.g. orders=/data/orders/*.csv", e)
		}
		if !slices.Contains(datasets, ds) {
			return nil, fmt.Errorf("EXTRACTOR_FILES entry %q: dataset %q is not in DATASETS %v", e, ds, datasets)
		}
		if _, err := filepath.Match(path, ""); err != nil {
			return nil, fmt.Errorf("EXTRACTOR_FILES entry %q: %w", e, err)
		}
		deployed[ds] = append(deployed[ds], declaration{dataset: ds, kind: "files", path: path})
	}
	known := strings.Join(slices.Sorted(maps.Keys(kinds)), ", ")
	var out []declaration
	for _, ds := range datasets {
		decl := declared[ds]
		names := map[string]int{} // polled sources' names, to their index
		if len(decl.Sources) == 0 {
			out = append(out, declaration{dataset: ds, kind: "http"})
		}
		for i, s := range decl.Sources {
			kind, ok := kinds[s.Kind]
			if !ok {
				return nil, fmt.Errorf("%s: sources[%d]: unknown source kind %q (known: %s)", decl.File, i, s.Kind, known)
			}
			d, err := kind.declare(ds, s)
			if err != nil {
				return nil, err
			}
			if d.name != "" {
				if j, dup := names[d.name]; dup {
					return nil, fmt.Errorf("%s: sources[%d] and sources[%d] are both named %q: a polled source's name is unique in its dataset", decl.File, j, i, d.name)
				}
				names[d.name] = i
			}
			if d.kind == "files" {
				if deployed[ds] != nil {
					continue // EXTRACTOR_FILES has the paths of this deployment
				}
				if d.path == "" {
					return nil, fmt.Errorf("%s: sources[%d] (files): no path: give it one, or the dataset an EXTRACTOR_FILES entry %s=<path>", decl.File, i, ds)
				}
				if _, err := filepath.Match(d.path, ""); err != nil {
					return nil, fmt.Errorf("%s: sources[%d] (files): path %q: %w", decl.File, i, d.path, err)
				}
			}
			out = append(out, d)
		}
		out = append(out, deployed[ds]...)
	}
	return out, nil
}

// groupByKind sorts decls by kind, keeping their order within a kind, or
// returns an error naming a declaration of a kind not in kinds.
func groupByKind(kinds map[string]sourceKind, decls []declaration) (map[string][]declaration, error) {
	out := map[string][]declaration{}
	for _, d := range decls {
		if _, ok := kinds[d.kind]; !ok {
			return nil, fmt.Errorf("dataset %q: unknown source kind %q (known: %s)", d.dataset, d.kind, strings.Join(slices.Sorted(maps.Keys(kinds)), ", "))
		}
		out[d.kind] = append(out[d.kind], d)
	}
	return out, nil
}

// runSources runs every source of sources, by kind, until ctx ends, or
// until one fails, which stops the others and is the error returned. Each
// reports its readiness through readyOf(its kind).
func runSources(ctx context.Context, sources map[string]source, readyOf func(kind string) func(bool, string)) error {
	if len(sources) == 0 {
		<-ctx.Done()
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	for kind, s := range sources {
		g.Go(func() error { return s.Run(ctx, readyOf(kind)) })
	}
	return g.Wait()
}
