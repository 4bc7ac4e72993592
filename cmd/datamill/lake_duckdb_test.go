package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// duckDBVersion is the DuckDB of scripts/python/deps.sh.
const duckDBVersion = "1.5.5"

// duckDB returns the directory scripts/python/deps.sh installs DuckDB and
// its httpfs extension into, for PYTHONPATH, and the extension's file;
// without them the test is Unavailable.
func duckDB(t testing.TB) (pythonPath, httpfs string) {
	t.Helper()
	cache := os.Getenv("DATAMILL_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "datamill")
	}
	dir := filepath.Join(cache, "python", "duckdb-"+duckDBVersion)
	httpfs = filepath.Join(dir, "duckdb_extension_httpfs", "extensions", "v"+duckDBVersion, "httpfs.duckdb_extension")
	cmd := exec.Command("/usr/bin/python3", "-c", "import duckdb; print(duckdb.__version__)")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
	out, err := cmd.CombinedOutput()
	if _, statErr := os.Stat(httpfs); err != nil || statErr != nil || strings.TrimSpace(string(out)) != duckDBVersion {
		testkit.Unavailable(t, fmt.Sprintf("DuckDB %s with its httpfs extension in %s (bash scripts/python/deps.sh): %v %v %s", duckDBVersion, dir, err, statErr, out))
	}
	return dir, httpfs
}

// lakeQuery is what testdata/lake_duckdb.py prints.
type lakeQuery struct {
	Records          int `json:"records"`
	DistinctEventIDs int `json:"distinct_event_ids"`
	Partitions       []struct {
		Partition int32   `json:"partition"`
		Records   int     `json:"records"`
		MinOffset int64   `json:"min_offset"`
		MaxOffset int64   `json:"max_offset"`
		Offsets   []int64 `json:"offsets"`
	} `json:"partitions"`
	Hours []struct {
		DT      string `json:"dt"`
		Hour    string `json:"hour"`
		Records int    `json:"records"`
		FirstUS int64  `json:"first_us"`
		LastUS  int64  `json:"last_us"`
	} `json:"hours"`
}

// queryLake asks DuckDB, through testdata/lake_duckdb.py, about the
// objects of dataset in the lake the S3_* variables of eps (or of the
// environment) describe.
func queryLake(ctx context.Context, t testing.TB, eps map[string]string, dataset string) lakeQuery {
	t.Helper()
	pythonPath, httpfs := duckDB(t)
	// The stack's endpoints, else the environment's S3 (which the stack
	// then used); the configuration reads the secret's file, as the
	// services do.
	env := config.ToMap(os.Environ())
	maps.Copy(env, eps)
	cfg, err := readLakeConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	tls := strconv.FormatBool(u.Scheme == "https")
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/lake_duckdb.py", u.Host, tls, cfg.Bucket, cfg.Prefix, dataset, httpfs)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath, "S3_ACCESS_KEY="+cfg.AccessKey, "S3_SECRET_KEY="+cfg.SecretKey, "S3_CA_FILE="+cfg.CAFile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("DuckDB on the lake at %s: %v\n%s", cfg.Endpoint, err, stderr.String())
	}
	var q lakeQuery
	if err := json.Unmarshal(out, &q); err != nil {
		t.Fatalf("lake_duckdb.py printed %q: %v", out, err)
	}
	return q
}

// writeUsers writes n generated users, a tenth of them dirty, into a
// file of dir, atomically for the extractor reading dir.
func writeUsers(t testing.TB, dir string, n int, seed uint64) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, ".users.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.Write(f, gen.New(gen.Options{Users: n, Seed: seed, Dirty: 0.1}), "csv", nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, "users.csv")); err != nil {
		t.Fatal(err)
	}
}

// lakeDrained waits until the lake sink has committed, past its upload
// and manifest, every record raw.users held when the pipeline drained.
func (p *pipeline) lakeDrained(ctx context.Context, raw topicRead) {
	p.t.Helper()
	p.waitCommitted(ctx, stage.Group("lake", "users"), "raw.users", raw.next)
}

// The lake read as an analyst reads it: DuckDB over S3 with Hive
// partitioning, on the lake `datamill dev` keeps, after the pipeline ran
// generated users. Reconciled against raw.users: every record once (its
// event id and its partition and offset), nothing else, and each object
// under the dt and hour of its records' Kafka timestamps.
func TestDuckDBReadsTheLake(t *testing.T) {
	duckDB(t)
	inbox := t.TempDir()
	writeUsers(t, inbox, 3000, 5)
	withStack(t, []string{"EXTRACTOR_FILES=users=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms"}, func(ctx context.Context, p *pipeline, d *devStack) {
		raw := p.drained(ctx)
		p.lakeDrained(ctx, raw)

		reg, err := serde.NewRegistry(serde.Config{RegistryURL: p.eps["SCHEMA_REGISTRY_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		offsets := map[int32][]int64{}
		events := map[string]bool{}
		p.read(ctx, "raw.users", func(rec *kgo.Record) {
			offsets[rec.Partition] = append(offsets[rec.Partition], rec.Offset)
			_, v, err := reg.DecodeAny(ctx, rec.Value)
			if err != nil {
				t.Fatalf("raw.users %d/%d: %v", rec.Partition, rec.Offset, err)
			}
			id, _ := v.(map[string]any)[schemas.FieldEventID].(string)
			events[id] = true
		})

		q := queryLake(ctx, t, p.eps, "users")
		t.Logf("DuckDB: %d records, %d distinct event ids, %d partitions, %d hours", q.Records, q.DistinctEventIDs, len(q.Partitions), len(q.Hours))
		if q.Records != raw.records || q.DistinctEventIDs != len(events) || len(events) != raw.records {
			t.Errorf("DuckDB counts %d records and %d distinct event ids; raw.users holds %d records with %d distinct event ids",
				q.Records, q.DistinctEventIDs, raw.records, len(events))
		}
		seen := map[int32]bool{}
		for _, part := range q.Partitions {
			seen[part.Partition] = true
			want := offsets[part.Partition]
			if !slices.Equal(part.Offsets, want) {
				t.Errorf("partition %d: the lake holds %d offsets (%d…%d), raw.users %d; first difference at %d",
					part.Partition, len(part.Offsets), part.MinOffset, part.MaxOffset, len(want), firstDifference(part.Offsets, want))
			}
			if part.Records != len(part.Offsets) {
				t.Errorf("partition %d: %d records for %d offsets", part.Partition, part.Records, len(part.Offsets))
			}
		}
		for p, o := range offsets {
			if !seen[p] {
				t.Errorf("partition %d: %d records in raw.users, none in the lake", p, len(o))
			}
		}
		for _, h := range q.Hours {
			hour, err := strconv.Atoi(h.Hour)
			start, perr := time.Parse(time.DateOnly, h.DT)
			if err != nil || perr != nil {
				t.Errorf("Hive columns dt=%q hour=%q: %v %v", h.DT, h.Hour, err, perr)
				continue
			}
			start = start.Add(time.Duration(hour) * time.Hour)
			first, last := time.UnixMicro(h.FirstUS).UTC(), time.UnixMicro(h.LastUS).UTC()
			if first.Before(start) || !last.Before(start.Add(time.Hour)) {
				t.Errorf("dt=%s/hour=%s holds records from %v to %v, outside its hour", h.DT, h.Hour, first, last)
			}
		}
		if len(q.Hours) == 0 {
			t.Error("DuckDB found no dt/hour partitions")
		}
	})
}

// firstDifference is the first index at which a and b differ.
func firstDifference(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
