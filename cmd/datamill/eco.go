package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
)

const ecoUsage = `usage: datamill eco report [flags]

Estimates the energy and CO2e of every stage of a run from the eco samples
the services published and the ecometer stored (DATABASE_URL): CPU seconds,
Wh, gCO2e, per million records and share of the total, the same energy on the
FR, DE, US and World grids, low and high bounds, and with --vs an A/B
comparison against another run. Writes a CodeCarbon-compatible emissions.csv
when asked (--emissions). A run can also come from a saved report: the JSON
of "datamill eco report --json" or "datamill demo --json" (--from, and --vs
with a file name), so that two demo runs compare without a database; a saved
report is estimated again with the flags' grid and constants.

flags:`

func ecoCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	sub, rest := firstArg(args)
	if sub != "report" {
		fmt.Fprintln(stderr, ecoUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("eco report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	run := fs.String("run", "", "run to report (default: the latest)")
	grid := fs.String("grid", "WORLD", "grid of the CO2e: FR, DE, US or WORLD")
	vs := fs.String("vs", "", "reference run to compare with: a run id, or a saved report's JSON file")
	from := fs.String("from", "", "report this saved report's JSON file instead of a run of DATABASE_URL")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	emissions := fs.String("emissions", "", "also write CodeCarbon's emissions.csv to this file")
	watts := fs.Float64("watts-per-cpu", 0, "power of a busy logical CPU (host TDP / logical CPUs); 0: unknown, 6 W")
	dataCentre := fs.Bool("data-centre", false, "apply a data centre's PUE (1.56) instead of a developer machine's (1.0)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, ecoUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	constants := map[eco.Bound]eco.Constants{}
	for _, b := range []eco.Bound{eco.Low, eco.Central, eco.High} {
		constants[b] = eco.Defaults(b, *watts, *dataCentre)
	}
	var conn *pgx.Conn
	database := func() (*pgx.Conn, error) {
		if conn != nil {
			return conn, nil
		}
		url := config.ToMap(environ)["DATABASE_URL"]
		if url == "" {
			return nil, errors.New("set DATABASE_URL to the ecometer's database, or give --from")
		}
		var err error
		conn, err = pgx.Connect(ctx, url)
		return conn, err
	}
	defer func() {
		if conn != nil {
			_ = conn.Close(ctx) // on an error path: that error is the one returned
		}
	}()
	// load returns a run's report, from a saved file or the database (the
	// latest run when run is "").
	load := func(run string) (*eco.Report, error) {
		if _, err := os.Stat(run); err == nil && run != "" {
			return eco.LoadReport(run, *grid, constants)
		}
		conn, err := database()
		if err != nil {
			return nil, err
		}
		if run == "" {
			if run, err = eco.LatestRun(ctx, conn); err != nil {
				return nil, err
			}
		}
		totals, err := eco.LoadRun(ctx, conn, run)
		if err != nil {
			return nil, err
		}
		return eco.NewReport(run, *grid, totals, constants)
	}
	var report *eco.Report
	var err error
	if *from != "" {
		report, err = eco.LoadReport(*from, *grid, constants)
	} else {
		report, err = load(*run)
	}
	if err != nil {
		return fmt.Errorf("eco report: %w", err)
	}
	var ref *eco.Report
	if *vs != "" {
		if ref, err = load(*vs); err != nil {
			return fmt.Errorf("eco report --vs: %w", err)
		}
	}
	if *emissions != "" {
		f, err := os.Create(*emissions)
		if err != nil {
			return err
		}
		err = report.WriteEmissionsCSV(f)
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return fmt.Errorf("eco report: %w", err)
		}
	}
	if *asJSON {
		out := map[string]any{"report": report}
		if ref != nil {
			out["reference"] = ref
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	// The A/B comparison first: the constants cancel in it, so it is the
	// more reliable part.
	if ref != nil {
		report.Compare(stdout, ref)
	}
	report.Print(stdout)
	return nil
}
