package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// expectation is one record of the malformed corpus and what it must become
// (testdata/malformed/expected.tsv says how to read the columns).
type expectation struct {
	file, record, outcome, detail string
}

func (e expectation) String() string {
	return e.file + " " + e.record + ": " + e.outcome + " " + e.detail
}

func readExpectations(t *testing.T, path string) []expectation {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []expectation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() == "" || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 4 || !slices.Contains([]string{"extractor", "cleaner", "clean", "duplicate"}, c[2]) {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		out = append(out, expectation{c[0], c[1], c[2], c[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The malformed-record corpus through the running pipeline: the extractor
// reads the files of testdata/malformed, and every record ends as
// expected.tsv says — one dead letter in dlq.users from the stage and with
// the reason it names, or one record of clean.users with exactly its
// quality flags, or one duplicate the cleaner drops — and no service
// stops. The counts reconcile: records in = clean + dead letters +
// duplicates.
func TestMalformedRecordsThroughThePipeline(t *testing.T) {
	corpus := filepath.Join("testdata", "malformed")
	want := readExpectations(t, filepath.Join(corpus, "expected.tsv"))
	inbox := t.TempDir()
	files := map[string]bool{}
	for _, e := range want {
		files[e.file] = true
	}
	for name := range files {
		var b []byte
		if name == "users-long.ndjson" {
			// Too big to keep in the repository: a line longer than
			// ingest.MaxRecord between two good ones.
			b = []byte("{\"id\":\"4001\",\"city\":\"l01\"}\n{\"id\":\"4002\",\"city\":\"" +
				strings.Repeat("x", ingest.MaxRecord) + "\"}\n{\"id\":\"4003\",\"city\":\"l03\"}\n")
		} else {
			var err error
			if b, err = os.ReadFile(filepath.Join(corpus, name)); err != nil {
				t.Fatal(err)
			}
		}
		// Written aside and renamed, so the extractor sees whole files.
		tmp := filepath.Join(inbox, "."+name)
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
			t.Fatal(err)
		}
	}

	withStack(t, []string{"EXTRACTOR_FILES=users=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms"}, func(ctx context.Context, p *pipeline, d *devStack) {
		for {
			m, err := fetchMetrics(ctx, p.svc["extractor"])
			if err != nil {
				t.Fatal(err)
			}
			if sumOf(m, "datamill_extractor_files_total") >= len(files) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		raw := p.drained(ctx)
		p.check(ctx, raw) // raw = clean + cleaner's dead letters + duplicates

		reg, err := serde.NewRegistry(serde.Config{RegistryURL: p.eps["SCHEMA_REGISTRY_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		dead, err := serde.NewCodec[schemas.DeadLetter](ctx, reg, "dlq.users", schemas.MustSchema("deadletter"))
		if err != nil {
			t.Fatal(err)
		}
		rawCodec, err := serde.NewCodec[users.Raw](ctx, reg, "raw.users", schemas.MustSchema("users/raw"))
		if err != nil {
			t.Fatal(err)
		}
		cleanCodec, err := serde.NewCodec[users.Clean](ctx, reg, "clean.users", schemas.MustSchema("users/clean"))
		if err != nil {
			t.Fatal(err)
		}
		// fileOf names a corpus file by the extractor's source name.
		fileOf := func(source string) string {
			return filepath.Base(strings.TrimPrefix(source, "file:"))
		}
		tag := func(city *string) string {
			if city == nil {
				return "(no city)"
			}
			return *city
		}

		// What the pipeline made of the corpus, keyed as expected.tsv is.
		var got []expectation
		p.read(ctx, "dlq.users", func(r *kgo.Record) {
			st, reason := kafka.Header(r, stage.HeaderStage), kafka.Header(r, stage.HeaderReason)
			switch st {
			case "extractor":
				pos, _, _ := strings.Cut(reason, ": ")
				got = append(got, expectation{fileOf(kafka.Header(r, stage.HeaderSourceTopic)), pos, st, reason})
			default:
				var dl schemas.DeadLetter
				var u users.Raw
				if err := dead.Decode(r.Value, &dl); err != nil {
					t.Fatalf("dead letter at offset %d: %v", r.Offset, err)
				}
				if err := rawCodec.Decode(dl.Value, &u); err != nil {
					t.Fatalf("the raw record of the dead letter at offset %d: %v", r.Offset, err)
				}
				got = append(got, expectation{fileOf(u.Source), tag(u.City), st, reason})
			}
		})
		p.read(ctx, "clean.users", func(r *kgo.Record) {
			var c users.Clean
			if err := cleanCodec.Decode(r.Value, &c); err != nil {
				t.Fatalf("clean record at offset %d: %v", r.Offset, err)
			}
			flags := "-"
			if len(c.QualityFlags) > 0 {
				flags = strings.Join(slices.Sorted(slices.Values(c.QualityFlags)), ",")
			}
			source := ""
			if c.Source != nil {
				source = *c.Source
			}
			got = append(got, expectation{fileOf(source), tag(c.City), "clean", flags})
		})
		cleaner := p.scrapeAll(ctx, "cleaner")
		for range cleaner.duplicates {
			got = append(got, expectation{outcome: "duplicate"})
		}

		// Each expected record once: a dead letter's reason need only
		// contain the expected text, the rest must match exactly.
		matched := make([]bool, len(got))
		for _, w := range want {
			n := 0
			for i, g := range got {
				if matched[i] || g.outcome != w.outcome {
					continue
				}
				ok := g.file == w.file && g.record == w.record && g.detail == w.detail
				switch w.outcome {
				case "extractor", "cleaner":
					ok = g.file == w.file && g.record == w.record && strings.Contains(g.detail, w.detail)
				case "duplicate":
					ok = true
				}
				if ok {
					matched[i] = true
					n++
					break
				}
			}
			if n == 0 {
				var near []string
				for _, g := range got {
					if g.file == w.file && g.record == w.record {
						near = append(near, g.String())
					}
				}
				t.Errorf("want %v; got for that record: %v", w, near)
			}
		}
		for i, g := range got {
			if !matched[i] {
				t.Errorf("unexpected: %v", g)
			}
		}
		if len(got) != len(want) {
			t.Errorf("records in %d, out %d (clean + dead letters + duplicates)", len(want), len(got))
		}

		// No service stopped: every one still answers.
		for name, addr := range p.svc {
			if _, err := fetchMetrics(ctx, addr); err != nil {
				t.Errorf("%s after the corpus: %v", name, err)
			}
		}
	})
}
