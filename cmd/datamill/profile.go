package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/cmd/datamill/internal/profile"
	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/progress"
	"github.com/datamill/datamill/schemas"
)

// profileFlags are the options of `datamill profile` that `datamill init`
// shares.
type profileFlags struct {
	format string
	opts   profile.Options
}

func (p *profileFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.format, "format", "", "of a file: csv, json or ndjson (default: from the file name, else from the first bytes)")
	fs.IntVar(&p.opts.Top, "top", 5, "top values shown per column")
	fs.IntVar(&p.opts.Sample, "sample", 10_000, "numbers sampled per column for the quantiles")
	fs.IntVar(&p.opts.MaxDistinct, "max-distinct", 10_000, "distinct values counted per column; a count that reaches it is shown as ≥N")
	fs.IntVar(&p.opts.MaxKeys, "max-keys", 2_000_000, "values of a key candidate checked for duplicates; a column with more is no candidate")
}

func profileCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the profile as JSON")
	dataset := fs.String("dataset", "", "with raw, clean, persisted, scored or dlq: that topic of the dataset; alone: the dataset's table")
	var pf profileFlags
	pf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: datamill profile <file|topic|table> [flags]

Describes every column of a file (CSV, JSON or NDJSON, read as datamill
produce reads it), of a topic (its committed records, decoded through the
schema registry) or of a PostgreSQL table (DATABASE_URL): the type its
values have, missing share, distinct count, top values, numeric min, p1,
median, p99 and max with outliers by the IQR rule, date ranges, and the
columns that could key the records, with the duplicates of the best one.

The target is a file when one exists at that path, a topic when it starts
with raw., clean., persisted., scored. or dlq., else a table; file:, topic:
and table: say which. KAFKA_BROKERS and SCHEMA_REGISTRY_URL default to those
of datamill dev; the other KAFKA_* variables (TLS, SASL) and the registry's SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD[_FILE] are the services'. Memory stays bounded: quantiles come from a sample, and
distinct values are counted up to --max-distinct.

flags:`)
		fs.PrintDefaults()
	}
	target, rest := firstArg(args)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if target == "" && fs.NArg() > 0 {
		target = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return errUsage
		}
	}
	if fs.NArg() > 0 || target == "" && *dataset == "" {
		fs.Usage()
		return errUsage
	}
	rep, err := profileTarget(ctx, target, *dataset, environ, pf, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.print(stdout)
}

// report is a profile and what it was made of.
type report struct {
	Source string `json:"source"`
	// Unreadable counts the records that could not be read (a file's bad
	// lines, a topic's undecodable values).
	Unreadable int64 `json:"unreadable"`
	*profile.Profile
}

// profileTarget profiles what target names.
func profileTarget(ctx context.Context, target, dataset string, environ []string, pf profileFlags, stderr io.Writer) (*report, error) {
	kind, name := "", target
	if k, n, ok := strings.Cut(target, ":"); ok && slices.Contains([]string{"file", "topic", "table"}, k) {
		kind, name = k, n
	}
	switch {
	case kind != "":
	case target == "":
		kind, name = "table", dataset
	case slices.Contains([]string{kafka.Raw, kafka.Clean, kafka.Persisted, kafka.Scored, kafka.DLQ}, target):
		if dataset == "" {
			return nil, fmt.Errorf("profile %s: the %s topic of which dataset? Name it with --dataset", target, target)
		}
		kind, name = "topic", kafka.Topic(target, dataset)
	default:
		if _, err := os.Stat(target); err == nil { // #nosec G703 -- the target the operator names
			kind = "file"
			break
		}
		kind = "table"
		for _, step := range []string{kafka.Raw, kafka.Clean, kafka.Persisted, kafka.Scored, kafka.DLQ} {
			if strings.HasPrefix(target, step+".") {
				kind = "topic"
			}
		}
	}
	env := config.ToMap(environ)
	switch kind {
	case "file":
		return profileFile(name, pf, stderr)
	case "topic":
		return profileTopic(ctx, name, env, pf.opts, stderr)
	}
	return profileTable(ctx, name, env, pf.opts, stderr)
}

// profileFile profiles a file as datamill produce reads it.
func profileFile(path string, pf profileFlags, stderr io.Writer) (*report, error) {
	f, err := os.Open(path) // #nosec G304 G703 -- the file the operator asks to profile
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cr := progress.NewReader(f)
	br := bufio.NewReaderSize(cr, 1<<16)
	head := peek(br)
	format := ingest.FormatOf(path, head)
	if pf.format != "" {
		if format, err = ingest.ParseFormat(pf.format); err != nil {
			return nil, err
		}
	}
	p := profile.New(pf.opts)
	rep := &report{Source: path}
	if format == ingest.CSV {
		// Every column of the header, in its order, even one without a
		// value.
		p.Declare(csvHeader(head, br)...)
	}
	bar := progress.New(stderr, nil, "profile "+path, st.Size(), time.Second)
	err = ingest.Scan(br, format, func(r ingest.Record) error {
		p.Add(r.Values)
		bar.Set(cr.N(), p.Rows())
		return nil
	}, func(*ingest.Error) error {
		rep.Unreadable++
		return nil
	})
	bar.Finish()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	rep.Profile = p.Profile()
	return rep, nil
}

// csvHeader reads the column names of a CSV file's header as pkg/ingest
// names them, from the buffered reader without consuming it.
func csvHeader(head []byte, br *bufio.Reader) []string {
	b, _ := br.Peek(ingest.MaxRecord)
	if len(b) < len(head) {
		b = head
	}
	header, err := csv.NewReader(strings.NewReader(string(b))).Read()
	if err != nil {
		return nil
	}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	}
	return names
}

// profileTopic profiles a topic's committed records, from its start to its
// last stable offsets when the profile starts.
func profileTopic(ctx context.Context, topic string, env map[string]string, opts profile.Options, stderr io.Writer) (*report, error) {
	kcfg, err := cliKafka(env)
	if err != nil {
		return nil, err
	}
	reg, err := cliRegistry(env)
	if err != nil {
		return nil, err
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records show where a transaction's marker ends a
		// partition, so that reading stops there.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list the start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("list the end offsets of %s: %w", topic, err)
	}
	pending := map[int32]int64{} // partition → end offset not reached yet
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		start, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Offset > start.Offset {
			pending[o.Partition] = o.Offset
			total += o.Offset - start.Offset
		}
	})
	p := profile.New(opts)
	p.Declare(topicFields(topic, env)...)
	rep := &report{Source: topic}
	bar := progress.New(stderr, nil, "profile "+topic, total, time.Second)
	var read int64
	for len(pending) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := fetches.Err0(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		for _, rec := range fetches.Records() {
			read++
			// Records past the end offsets came after the profile began.
			end, ok := pending[rec.Partition]
			if !ok || rec.Offset >= end {
				delete(pending, rec.Partition)
				continue
			}
			if rec.Offset+1 >= end {
				delete(pending, rec.Partition)
			}
			if rec.Attrs.IsControl() {
				continue
			}
			_, v, err := reg.DecodeAny(ctx, rec.Value)
			m, ok := v.(map[string]any)
			if err != nil || !ok {
				rep.Unreadable++
				continue
			}
			row := make(map[string]*string, len(m))
			for k, v := range m {
				if s, ok := text(v); ok {
					row[k] = &s
				}
			}
			p.Add(row)
		}
		bar.Set(read, p.Rows())
	}
	bar.Finish()
	rep.Profile = p.Profile()
	return rep, nil
}

// topicFields are the fields of a pipeline topic's schema in the catalog
// (DATASETS_DIR or its older name SCHEMAS_DIR, else built in), to show its
// columns in their order; none for another topic.
func topicFields(topic string, env map[string]string) []string {
	step, ds, ok := strings.Cut(topic, ".")
	if !ok {
		return nil
	}
	path := ds + "/" + step
	if step == kafka.DLQ {
		path = "deadletter"
	}
	cat, err := schemas.Open(cmpOr(env["DATASETS_DIR"], env["SCHEMAS_DIR"]))
	if err != nil {
		return nil
	}
	s, err := cat.Schema(path)
	if err != nil {
		return nil
	}
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return nil
	}
	var names []string
	for _, f := range rec.Fields() {
		names = append(names, f.Name())
	}
	return names
}

// profileTable profiles a PostgreSQL table ("name" or "schema.name").
func profileTable(ctx context.Context, table string, env map[string]string, opts profile.Options, stderr io.Writer) (*report, error) {
	url := env["DATABASE_URL"]
	if url == "" {
		return nil, fmt.Errorf("profile %s: no file or topic of that name, and DATABASE_URL is not set to read a table", table)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier(strings.Split(table, ".")).Sanitize()
	var estimate float64
	// An estimate from the statistics is enough for the progress line and
	// does not scan the table twice.
	_ = conn.QueryRow(ctx, "select reltuples from pg_class where oid = $1::regclass", ident).Scan(&estimate)
	rows, err := conn.Query(ctx, "select * from "+ident)
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", table, err)
	}
	defer rows.Close()
	p := profile.New(opts)
	rep := &report{Source: "table " + table}
	for _, fd := range rows.FieldDescriptions() {
		p.Declare(fd.Name)
	}
	fields := rows.FieldDescriptions()
	bar := progress.New(stderr, nil, "profile "+table, int64(max(estimate, 0)), time.Second)
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("read table %s: %w", table, err)
		}
		row := make(map[string]*string, len(vals))
		for i, v := range vals {
			if s, ok := text(v); ok {
				row[fields[i].Name] = &s
			}
		}
		p.Add(row)
		bar.Set(p.Rows(), p.Rows())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read table %s: %w", table, err)
	}
	bar.Finish()
	rep.Profile = p.Profile()
	return rep, nil
}

// text is a decoded value (Avro's or PostgreSQL's) as the text a source
// would give it; false for null.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case []byte:
		s, _ := jsonValue(x).(string)
		return s, true
	case time.Time:
		if x.Equal(x.Truncate(24*time.Hour)) && x.Location() == time.UTC {
			return x.Format(time.DateOnly), true
		}
		return x.UTC().Format(time.RFC3339Nano), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case driver.Valuer:
		dv, err := x.Value()
		if err == nil {
			return text(dv)
		}
	}
	switch x := jsonValue(v).(type) {
	case string:
		return x, true
	case nil:
		return "", false
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x), true
		}
		return string(b), true
	}
}

// print writes the profile as aligned tables.
func (r *report) print(w io.Writer) error {
	fmt.Fprintf(w, "%s: %s", r.Source, plural(r.Rows, "row"))
	if r.Unreadable > 0 {
		fmt.Fprintf(w, ", %s", plural(r.Unreadable, "unreadable record"))
	}
	fmt.Fprintln(w)
	if len(r.Columns) == 0 {
		return nil
	}
	var tables bytes.Buffer
	tw := tabwriter.NewWriter(&tables, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCOLUMN\tTYPE\tMISSING\tDISTINCT\tINVALID\tTOP VALUES")
	for _, c := range r.Columns {
		distinct := strconv.FormatInt(c.Distinct, 10)
		if c.DistinctAtLeast {
			distinct = "≥" + distinct
		}
		kind := string(c.Type)
		if c.Email {
			kind += " (email)"
		}
		invalid := ""
		if c.Invalid > 0 {
			invalid = fmt.Sprintf("%d (%s)", c.Invalid, quoteAll(c.InvalidExamples))
		}
		var top []string
		for _, t := range c.Top[:min(3, len(c.Top))] {
			top = append(top, fmt.Sprintf("%s ×%d", clip(t.Value, 24), t.Count))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, kind, percent(c.MissingShare), distinct, invalid, strings.Join(top, ", "))
	}
	numbers, dates := false, false
	for _, c := range r.Columns {
		numbers = numbers || c.Numeric != nil
		dates = dates || c.Dates != nil
	}
	if numbers {
		fmt.Fprintln(tw, "\nNUMBERS\tMIN\tP1\tMEDIAN\tP99\tMAX\tOUTLIERS (IQR)")
		for _, c := range r.Columns {
			n := c.Numeric
			if n == nil {
				continue
			}
			out := strconv.FormatInt(n.Outliers.Count, 10)
			if n.Outliers.Estimated {
				out = "~" + out
			}
			if n.Outliers.Count > 0 {
				var ex []string
				for _, v := range n.Outliers.Examples {
					ex = append(ex, number(v))
				}
				out += fmt.Sprintf(" outside %s…%s: %s", number(n.Outliers.Low), number(n.Outliers.High), strings.Join(ex, ", "))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, number(n.Min), number(n.P1), number(n.Median), number(n.P99), number(n.Max), out)
		}
	}
	if dates {
		fmt.Fprintln(tw, "\nDATES\tFROM\tTO")
		for _, c := range r.Columns {
			if c.Dates != nil {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Dates.Min, c.Dates.Max)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A row whose last cells are empty would end in the padding.
	for l := range strings.Lines(tables.String()) {
		fmt.Fprintln(w, strings.TrimRight(l, " \n"))
	}
	fmt.Fprintln(w)
	k := r.Keys
	if len(k.Unchecked) > 0 {
		fmt.Fprintf(w, "not checked as keys, with more distinct values than --max-keys: %s\n", strings.Join(k.Unchecked, ", "))
	}
	if k.Best == "" {
		_, err := fmt.Fprintln(w, "key: no column has distinct values in 90% of the rows")
		return err
	}
	fmt.Fprintf(w, "key: %s (distinct values for %s of the rows", k.Best, percent(k.Candidates[0].DistinctShare))
	if k.Candidates[0].Missing > 0 {
		fmt.Fprintf(w, ", missing in %d", k.Candidates[0].Missing)
	}
	fmt.Fprint(w, ")")
	if d := k.Duplicates; d != nil {
		var ex []string
		for _, e := range d.Examples[:min(5, len(d.Examples))] {
			ex = append(ex, fmt.Sprintf("%s ×%d", clip(e.Value, 24), e.Count))
		}
		fmt.Fprintf(w, "; %s duplicated, %s: %s", plural(d.Values, "value"), plural(d.ExtraRows, "extra row"), strings.Join(ex, ", "))
	} else {
		fmt.Fprint(w, "; no duplicates")
	}
	fmt.Fprintln(w)
	if len(k.Candidates) > 1 {
		var others []string
		for _, c := range k.Candidates[1:] {
			others = append(others, fmt.Sprintf("%s (%s)", c.Column, percent(c.DistinctShare)))
		}
		fmt.Fprintf(w, "other key candidates: %s\n", strings.Join(others, ", "))
	}
	return nil
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatInt(n, 10) + " " + what + "s"
}

func percent(share float64) string {
	return strconv.FormatFloat(math.Round(share*10000)/100, 'f', -1, 64) + "%"
}

// number prints a number without a needless exponent or tail.
func number(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func quoteAll(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(clip(v, 20))
	}
	return strings.Join(q, ", ")
}
