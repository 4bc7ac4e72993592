// Command datamill is the operator's tool for the datamill pipeline.
//
//	datamill bench [flags]          throughput, latency and resources of every stage
//	datamill chaos [flags]          faults while records flow: nothing lost, doubled or changed
//	datamill demo [flags]           a dataset's pipeline on generated data, with a report
//	datamill dev [flags]            run the whole pipeline on the embedded stack
//	datamill export <ds> [flags]    write a dataset's clean table as CSV or Parquet
//	datamill init                   create a deployment's topics and apply its migrations
//	datamill init <ds> --from <f>   draft a dataset's declaration from a file
//	datamill gen <ds> [flags]       generate realistic (dirty) records of a dataset
//	datamill jobboard [flags]       serve generated job offers as real job APIs and a board do
//	datamill produce <ds> [file]    publish a file's records to raw.<ds>
//	datamill replay <ds> --from-lake  publish a dataset's archived raw events again
//	datamill report [flags]         one HTML page of charts and tables from the warehouse
//	datamill profile <target>       describe a file's, topic's or table's columns
//	datamill resume <stage> <ds>    let a stage stopped on a dead-letter flood go on
//	datamill tail <topic> [flags]   print a topic (or a step of --dataset) as JSON lines
//	datamill help [command]         this help, or a command's flags
//
// bench, chaos, demo and tail take --dataset: a built-in dataset or one of
// DATASETS_DIR.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "datamill:", err)
		}
		os.Exit(1)
	}
}

// errUsage is returned after the usage was printed.
var errUsage = errors.New("usage")

type command struct {
	name, summary string
	run           func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"bench", "measure throughput, latency, CPU and memory of every stage on generated records of --dataset", bench},
		{"chaos", "kill services and restart PostgreSQL while records of --dataset flow; check that nothing was lost, doubled or changed", chaos},
		{"demo", "run the pipeline of --dataset on generated dirty data and report what every stage did", demo},
		{"dev", "run the whole pipeline on the embedded stack (Kafka, schema registry, PostgreSQL)", dev},
		{"eco", "eco report: energy and CO2e per stage of a run, on four grids, against another run", ecoCommand},
		{"init", "create the pipeline topics and apply the migrations of a deployment; init <ds> --from <file>: draft a dataset", initOrDraft},
		{"export", "write a dataset's clean table (DATABASE_URL) as CSV or Parquet", exportCommand},
		{"gen", "generate realistic records of a dataset, optionally dirty, as CSV, NDJSON or JSON", generate},
		{"jobboard", "serve generated job offers on loopback through the shapes of real job APIs and a scraped board, with their quirks", jobboardCommand},
		{"profile", "describe each column of a file, topic or table: type, missing, distinct, top values, ranges, outliers, keys", profileCommand},
		{"produce", "publish the records of a CSV, JSON or NDJSON file to raw.<dataset>", produce},
		{"replay", "publish a dataset's raw events archived in the lake (--from-lake) back into raw.<dataset>, optionally only those of --since/--until", replay},
		{"report", "write one self-contained HTML page of charts and tables from the warehouse (DATABASE_URL), or --serve it", reportCommand},
		{"resume", "let a stage stopped on a dead-letter flood (STAGE_DLQ_ON_FLOOD=stop) go on", resume},
		{"secrets", "make the secrets docker-compose.yml reads (passwords, keys, tokens, a CA) in ./secrets, keeping those there", secretsCommand},
		{"tail", "print a topic's records as JSON lines, Avro decoded, dead letters with their headers", tail},
	}
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	name, help := args[0], false
	switch {
	case name == "help" && len(args) > 1:
		name, help = args[1], true
	case name == "help" || name == "-h" || name == "--help":
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		if help {
			// `datamill help dev` is `datamill dev -h`, on stdout.
			return c.run(ctx, []string{"-h"}, environ, stdout, stdout)
		}
		return c.run(ctx, args[1:], environ, stdout, stderr)
	}
	fmt.Fprintf(stderr, "datamill: unknown command %q\n\n", name)
	usage(stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "datamill — the operator's tool for the datamill streaming pipeline")
	fmt.Fprintln(w, "\nusage: datamill <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n`datamill help <command>` or `datamill <command> -h` describes a command's flags.")
}
