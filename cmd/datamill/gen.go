package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/progress"
)

func generate(_ context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.Int("rows", 10000, "number of distinct records (users' duplicates and re-sends, offers' copies on a second source add rows)")
	seed := fs.Uint64("seed", 1, "seed: the same flags give the same output")
	dirty := fs.Float64("dirty", 0, "share of rows, in [0, 1], carrying the dirt of real exports")
	format := fs.String("format", "csv", "csv, ndjson or json")
	out := fs.String("out", "", "file to write (default: standard output)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: datamill gen <dataset> [flags]\n\nGenerates records of a dataset that has a generator: %s.\n\n%s — %s\n\n%s — %s\n\nflags:\n",
			strings.Join(generators(), ", "), gen.Dataset, gen.About, gen.JobsDataset, gen.JobsAbout)
		fs.PrintDefaults()
	}
	dataset, rest := firstArg(args)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	switch {
	case dataset == "":
		fs.Usage()
		return errUsage
	case !slices.Contains(generators(), dataset):
		// An unknown name is told apart from a dataset without a
		// generator.
		if _, err := lookUp(environ, stderr, dataset); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
		return fmt.Errorf("gen: %w", noGenerator(dataset))
	case *dirty < 0 || *dirty > 1:
		return fmt.Errorf("gen: --dirty %g: want a share in [0, 1]", *dirty)
	case *rows < 0:
		return fmt.Errorf("gen: --rows %d: want 0 or more", *rows)
	case fs.NArg() > 0:
		return fmt.Errorf("gen: unexpected argument %q", fs.Arg(0))
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	var report func(int)
	if progress.IsTerminal(stderr) {
		report = func(n int) { fmt.Fprintf(stderr, "\rgen: %d rows", n) }
	}
	if dataset == gen.JobsDataset {
		g := gen.NewJobs(gen.JobsOptions{Offers: *rows, Seed: *seed, Dirty: *dirty})
		if err := gen.Write(w, g, *format, report); err != nil {
			return err
		}
		if report != nil {
			fmt.Fprint(stderr, "\r")
		}
		s := g.Stats()
		fmt.Fprintf(stderr, "gen: %d rows, %d %s offers, %d on a second source, %d dirty rows; dirt: %s\n",
			s.Rows, s.Offers, gen.JobsDataset, s.CrossSource, s.DirtyRows, kindCounts(s.ByKind))
		return nil
	}
	g := gen.New(gen.Options{Users: *rows, Seed: *seed, Dirty: *dirty})
	if err := gen.Write(w, g, *format, report); err != nil {
		return err
	}
	if report != nil {
		fmt.Fprint(stderr, "\r")
	}
	s := g.Stats()
	fmt.Fprintf(stderr, "gen: %d rows, %d %s (%.1f%% churned), %d dirty rows, %d exact duplicates, %d re-sends; dirt: %s\n",
		s.Rows, s.Users, gen.Dataset, 100*float64(s.Churned)/float64(max(s.Users, 1)), s.DirtyRows, s.Duplicates, s.Resends, kindCounts(s.ByKind))
	return nil
}

// kindCounts writes counts by kind of dirt, sorted by kind.
func kindCounts(byKind map[string]int) string {
	kinds := make([]string, 0, len(byKind))
	for k, n := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, ", ")
}
