package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
)

// What the CLI knows of a dataset is read from its declaration (the
// catalog of the built-in datasets and DATASETS_DIR): its topics, its
// stages' consumer groups, its table and its predictions table. Only the
// generator is written for one dataset.

// datasetFlag registers --dataset on fs: the dataset a command works on,
// by default the one the generator writes.
func datasetFlag(fs *flag.FlagSet, p *string, usage string) {
	fs.StringVar(p, "dataset", gen.Dataset, usage+" (a built-in dataset or one of DATASETS_DIR)")
}

// generators lists the datasets that have a generator.
func generators() []string { return []string{gen.Dataset, gen.JobsDataset} }

// noGenerator says that name has no generator, and which datasets do.
func noGenerator(name string) error {
	return fmt.Errorf("no generator for dataset %q: only %s have one (publish your own files with `datamill produce %s <file>`)",
		name, strings.Join(generators(), ", "), name)
}

// lookUp returns the dataset called name from the catalog of environ
// (the built-in datasets and DATASETS_DIR's).
func lookUp(environ []string, stderr io.Writer, name string) (*schemas.Dataset, error) {
	cat, err := openCatalog(config.ToMap(environ), stderr)
	if err != nil {
		return nil, err
	}
	return cat.Dataset(name)
}

// generatedDataset returns the dataset called name, for a command that
// runs generated records of it through the pipeline: it must be known and
// have a generator that these commands run (users only so far: jobs
// records are generated but not yet run).
func generatedDataset(environ []string, stderr io.Writer, name string) (*schemas.Dataset, error) {
	ds, err := lookUp(environ, stderr, name)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(generators(), name) {
		return nil, noGenerator(name)
	}
	if name != gen.Dataset {
		return nil, fmt.Errorf("generated %s records cannot run through the pipeline yet: only %s records can (write them with `datamill gen %s` and publish them with `datamill produce %s <file>`)", name, gen.Dataset, name, name)
	}
	return ds, nil
}

// servicesDatasets returns the datasets DATASETS of env names, with the
// services' default when it is unset or empty.
func servicesDatasets(env map[string]string) ([]string, error) {
	var environ []string
	if v := env["DATASETS"]; v != "" {
		environ = append(environ, "DATASETS="+v)
	}
	s, err := config.Parse[config.Service](environ)
	if err != nil {
		return nil, err
	}
	return s.Datasets, nil
}

// stageInput is a stage that consumes a dataset's topic: its consumer
// group and the topic.
type stageInput struct{ group, topic string }

// stageInputs lists, in pipeline order, the consuming stages of a
// dataset with their consumer groups (named as pkg/stage names them) and
// input topics.
func stageInputs(dataset string) []stageInput {
	return []stageInput{
		{stage.Group("cleaner", dataset), kafka.Topic(kafka.Raw, dataset)},
		{stage.Group("loader", dataset), kafka.Topic(kafka.Clean, dataset)},
		{stage.Group("scorer", dataset), kafka.Topic(kafka.Persisted, dataset)},
	}
}

// ident quotes a PostgreSQL identifier, as the loader does.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// tableDigestQuery counts the rows of a dataset's table and digests them:
// every column but the clocks (ingested_at, updated_at), rows in key
// order. The loader names the table after the dataset and gives it a
// column per clean field, event_time held as ingested_at, plus
// created_event_id.
func tableDigestQuery(ds *schemas.Dataset) (string, error) {
	rec, ok := ds.Clean.(*avro.RecordSchema)
	if !ok {
		return "", fmt.Errorf("dataset %s: the clean schema is no record", ds.Name)
	}
	cols := []string{ident(ds.Key)}
	for _, f := range rec.Fields() {
		if f.Name() != ds.Key && f.Name() != schemas.FieldEventTime {
			cols = append(cols, ident(f.Name()))
		}
	}
	cols = append(cols, "created_event_id")
	return fmt.Sprintf(`select count(*), md5(coalesce(string_agg(row(%s)::text, E'\n' order by %s), '')) from %s`,
		strings.Join(cols, ", "), ident(ds.Key), ident(ds.Name)), nil
}

// readPredictions reads a dataset's predictions table into event id →
// the row's text, every column but those the database fills in itself
// (an identity, a default such as a creation time).
func readPredictions(ctx context.Context, conn *pgx.Conn, dataset string) (map[string]string, error) {
	table := schemas.PredictionsTable(dataset)
	rows, err := conn.Query(ctx, `select column_name from information_schema.columns
		where table_schema = current_schema() and table_name = $1 and is_identity = 'NO' and column_default is null
		order by ordinal_position`, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	if !slices.Contains(names, schemas.FieldEventID) {
		return nil, fmt.Errorf("table %s: no column %s (columns: %v)", table, schemas.FieldEventID, names)
	}
	cols := make([]string, len(names))
	for i, n := range names {
		cols[i] = ident(n)
	}
	rows, err = conn.Query(ctx, fmt.Sprintf(`select %s, row(%s)::text from %s`, ident(schemas.FieldEventID), strings.Join(cols, ", "), ident(table)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	out := map[string]string{}
	var event, row string
	_, err = pgx.ForEachRow(rows, []any{&event, &row}, func() error {
		out[event] = row
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return out, nil
}

// modelName is the name of a dataset's model artefacts: the declared
// one, else the dataset's.
func modelName(ds *schemas.Dataset) string {
	if m := ds.Decl.Model; m != nil && m.Name != "" {
		return m.Name
	}
	return ds.Name
}
