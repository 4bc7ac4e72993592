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
when asked (--emissions).

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
	vs := fs.String("vs", "", "reference run to compare with")
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
	url := config.ToMap(environ)["DATABASE_URL"]
	if url == "" {
		return errors.New("eco report: set DATABASE_URL to the ecometer's database")
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("eco report: %w", err)
	}
	defer conn.Close(ctx)
	if *run == "" {
		if *run, err = eco.LatestRun(ctx, conn); err != nil {
			return fmt.Errorf("eco report: %w", err)
		}
	}
	constants := map[eco.Bound]eco.Constants{}
	for _, b := range []eco.Bound{eco.Low, eco.Central, eco.High} {
		constants[b] = eco.Defaults(b, *watts, *dataCentre)
	}
	build := func(run string) (*eco.Report, []eco.StageTotals, error) {
		totals, err := eco.LoadRun(ctx, conn, run)
		if err != nil {
			return nil, nil, err
		}
		r, err := eco.NewReport(run, *grid, totals, constants)
		return r, totals, err
	}
	report, totals, err := build(*run)
	if err != nil {
		return fmt.Errorf("eco report: %w", err)
	}
	var ref *eco.Report
	if *vs != "" {
		if ref, _, err = build(*vs); err != nil {
			return fmt.Errorf("eco report --vs: %w", err)
		}
	}
	if *emissions != "" {
		f, err := os.Create(*emissions)
		if err != nil {
			return err
		}
		err = report.WriteEmissionsCSV(f, totals)
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
	report.Print(stdout)
	if ref != nil {
		report.Compare(stdout, ref)
	}
	return nil
}
