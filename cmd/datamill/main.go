// Command datamill is the operator's tool for the datamill pipeline.
//
//	datamill demo [flags]           the users pipeline on generated data, with a report
//	datamill dev [flags]            run the whole pipeline on the embedded stack
//	datamill gen users [flags]      generate realistic (dirty) users
//	datamill produce <ds> [file]    publish a file's records to raw.<ds>
//	datamill tail <topic> [flags]   print a topic as JSON lines
//	datamill help                   this help
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
		{"demo", "run the users pipeline on generated dirty data and report what every stage did", demo},
		{"dev", "run the whole pipeline on the embedded stack (Kafka, schema registry, PostgreSQL)", dev},
		{"gen", "generate realistic users, optionally dirty, as CSV, NDJSON or JSON", generate},
		{"produce", "publish the records of a CSV, JSON or NDJSON file to raw.<dataset>", produce},
		{"tail", "print a topic's records as JSON lines, Avro decoded, dead letters with their headers", tail},
	}
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], environ, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "datamill: unknown command %q\n\n", args[0])
	usage(stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "datamill — the operator's tool for the datamill streaming pipeline")
	fmt.Fprintln(w, "\nusage: datamill <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n`datamill <command> -h` describes a command's flags.")
}
