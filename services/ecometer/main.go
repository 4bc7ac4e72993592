// Command ecometer turns the eco samples every service publishes into
// energy and CO2e per stage, run and million records.
//
// It consumes eco.samples in its consumer group, stores every sample once
// (keyed by instance and window) with the per-run, per-stage totals in
// PostgreSQL (its own migrations), in one transaction per poll, commits
// the offsets after it, and exports the ecometer_* metrics: CPU seconds,
// energy by component, CO2e and CO2e per million records of each stage,
// with the central constants of package eco on ECO_GRID. `datamill eco
// report` reads the same tables.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/ecometer/migrations"
)

// settings is the ecometer's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
	// Grid is the electricity grid of the exported CO2e.
	Grid string `env:"ECO_GRID" envDefault:"WORLD"`
	// WattsPerCPU is the power of a busy logical CPU of this machine
	// (host TDP / logical CPUs); 0: unknown, 6 W.
	WattsPerCPU float64 `env:"ECO_WATTS_PER_CPU" envDefault:"0"`
	// DataCentre applies a data centre's PUE (1.56) instead of a
	// developer machine's (1.0).
	DataCentre bool `env:"ECO_DATA_CENTRE" envDefault:"false"`
}

// Validate checks the grid.
func (s *settings) Validate() error {
	if _, err := eco.Grid(s.Grid); err != nil {
		return fmt.Errorf("ECO_GRID: %w", err)
	}
	return nil
}

func main() { service.Main("ecometer", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "ecometer", args, environ, stdout, meter)
}

// schema is what the ecometer keeps in the database: the samples and
// their totals.
var schema = service.Schema{
	Component: "ecometer", Migrations: migrations.FS,
	Tables: pg.Tables{"eco_samples": pg.Ecometer, "eco_stage_totals": pg.Ecometer},
}

// Schema is the ecometer's Schema (service.Migrator): `ecometer migrate`.
func (s settings) Schema(*service.Process) (pg.Config, service.Schema, error) {
	return s.Postgres, schema, nil
}

// meter stores and prices the samples until ctx ends.
func meter(ctx context.Context, p *service.Process, cfg settings) error {
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	if err != nil {
		return err
	}
	db, err := p.Database(ctx, cfg.Postgres, schema)
	if err != nil {
		return err
	}
	defer db.Close()
	pool := db.Pool
	codec, err := serde.NewCodec[schemas.EcoSample](ctx, reg, kafka.EcoSamples, schemas.MustSchema("ecosample"))
	if err != nil {
		return err
	}
	cl, err := kafka.NewClient(cfg.Kafka, p.Log,
		kgo.ConsumerGroup("datamill-ecometer"), kgo.ConsumeTopics(kafka.EcoSamples),
		kgo.DisableAutoCommit(), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	// What Kafka keeps, all topics and replicas: the ecometer reports it
	// as its own stored bytes, on SSD.
	adm := kadm.NewClient(cl)
	p.ReportStored(func(ctx context.Context) (map[string]int64, error) {
		dirs, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			return map[string]int64{}, nil // a broker that does not say: nothing counted
		}
		var n int64
		for _, broker := range dirs {
			n += broker.Size()
		}
		return map[string]int64{eco.MediaSSD: n}, nil
	})
	m := newMetrics(p.Telemetry.Registry(), eco.Defaults(eco.Central, cfg.WattsPerCPU, cfg.DataCentre), cfg.Grid)
	p.Telemetry.SetReady("samples", true, "")
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var errs []error
		fetches.EachError(func(_ string, _ int32, err error) { errs = append(errs, err) })
		var samples []schemas.EcoSample
		var origins []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			var s schemas.EcoSample
			if err := codec.Decode(r.Value, &s); err != nil {
				p.Log.Warn("eco sample skipped: undecodable", zap.Int64("offset", r.Offset), zap.Error(err))
				return
			}
			samples = append(samples, s)
			origins = append(origins, r)
		})
		if len(errs) > 0 {
			p.Log.Warn("fetch eco samples", zap.Error(errors.Join(errs...)))
		}
		if len(samples) == 0 {
			continue
		}
		var stored []schemas.EcoSample
		var err error
		// A database restarting answers for a moment with errors: retry
		// (store is idempotent) before giving up.
		for attempt := 1; ; attempt++ {
			if stored, err = store(ctx, pool, samples, audit(origins)); err == nil || attempt == storeAttempts {
				break
			}
			p.Log.Warn("eco samples not stored; retrying", zap.Int("attempt", attempt), zap.Error(err))
			if !storeBackoff().Wait(ctx, attempt) {
				return nil // stopping: the samples, not committed, come again
			}
		}
		if err != nil {
			// Not committed: the samples come again after a restart.
			return fmt.Errorf("store %d eco samples: %w", len(samples), err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("commit eco sample offsets: %w", err)
		}
		for _, s := range stored {
			m.add(s)
		}
	}
}

// storeAttempts bounds the attempts at storing a batch of samples: with
// storeBackoff's waits, about ten seconds, the time a database takes to
// restart.
const storeAttempts = 10

func storeBackoff() retry.Backoff {
	return retry.Backoff{First: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.2}
}

// audit is the datamill_batches rows of the samples read from records.
func audit(records []*kgo.Record) []pg.Batch {
	return pg.Batches("ecometer", len(records), func(i int) (string, int32, int64) {
		return records[i].Topic, records[i].Partition, records[i].Offset
	})
}

// store inserts the samples not stored yet and adds them to their run's
// stage totals, with the batch's datamill_batches rows, in one
// transaction, and returns those it stored.
func store(ctx context.Context, pool *pgxpool.Pool, samples []schemas.EcoSample, batches []pg.Batch) ([]schemas.EcoSample, error) {
	var stored []schemas.EcoSample
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		stored = stored[:0]
		if err := pg.AuditBatch(ctx, tx, batches...); err != nil {
			return err
		}
		for _, s := range samples {
			net := netGB(s)
			tag, err := tx.Exec(ctx, `
with ins as (
    insert into eco_samples (instance, window_start, window_end, run_id, service, stage, dataset, wall_s, cpu_s,
        mem_reserved_bytes, mem_source, vcpus, records_in, records_out, records_dead_lettered, records_duplicates, training_iterations,
        stored_ssd_tb_h, stored_hdd_tb_h, net_same_host_gb, net_same_site_gb, net_cross_region_gb, net_internet_gb, cpu_s_per_epoch)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
    on conflict do nothing
    returning *
)
insert into eco_stage_totals as t (run_id, stage, samples, cpu_s, wall_s, mem_gb_s, records_in, records_out,
    records_dead_lettered, records_duplicates, first_at, last_at, stored_ssd_tb_h, stored_hdd_tb_h,
    net_same_host_gb, net_same_site_gb, net_cross_region_gb, net_internet_gb, training_iterations)
select run_id, stage, 1, cpu_s, wall_s, wall_s * mem_reserved_bytes / 1e9, records_in, records_out,
    records_dead_lettered, records_duplicates, window_start, window_end, stored_ssd_tb_h, stored_hdd_tb_h,
    net_same_host_gb, net_same_site_gb, net_cross_region_gb, net_internet_gb, coalesce(training_iterations, 0) from ins
on conflict (run_id, stage) do update set
    samples = t.samples + 1, cpu_s = t.cpu_s + excluded.cpu_s, wall_s = t.wall_s + excluded.wall_s,
    mem_gb_s = t.mem_gb_s + excluded.mem_gb_s, records_in = t.records_in + excluded.records_in,
    records_out = t.records_out + excluded.records_out,
    records_dead_lettered = t.records_dead_lettered + excluded.records_dead_lettered,
    records_duplicates = t.records_duplicates + excluded.records_duplicates,
    first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at),
    stored_ssd_tb_h = t.stored_ssd_tb_h + excluded.stored_ssd_tb_h, stored_hdd_tb_h = t.stored_hdd_tb_h + excluded.stored_hdd_tb_h,
    net_same_host_gb = t.net_same_host_gb + excluded.net_same_host_gb,
    net_same_site_gb = t.net_same_site_gb + excluded.net_same_site_gb,
    net_cross_region_gb = t.net_cross_region_gb + excluded.net_cross_region_gb,
    net_internet_gb = t.net_internet_gb + excluded.net_internet_gb,
    training_iterations = t.training_iterations + excluded.training_iterations`,
				s.Instance, s.WindowStart, s.WindowEnd, s.RunID, s.Service, s.Stage, s.Dataset, s.WallS, s.CPUS,
				s.MemReservedBytes, s.MemSource, s.Vcpus, s.RecordsIn, s.RecordsOut, s.RecordsDeadLettered, s.RecordsDuplicates, s.TrainingIterations,
				tbHours(s, eco.MediaSSD), tbHours(s, eco.MediaHDD),
				net[eco.ScopeSameHost], net[eco.ScopeSameSite], net[eco.ScopeCrossRegion], net[eco.ScopeInternet], s.CPUSPerEpoch)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				stored = append(stored, s)
			}
		}
		return nil
	})
	return stored, err
}

// tbHours is the terabyte-hours a sample's process kept stored on media.
func tbHours(s schemas.EcoSample, media string) float64 {
	return float64(s.StoredBytes[media]) / 1e12 * s.WallS / 3600
}

// netGB are the gigabytes a sample's process read and wrote, by scope.
func netGB(s schemas.EcoSample) map[string]float64 {
	net := map[string]float64{}
	for scope, b := range s.BytesIn {
		net[scope] += float64(b) / 1e9
	}
	for scope, b := range s.BytesOut {
		net[scope] += float64(b) / 1e9
	}
	return net
}

// usage is a sample as the model reads it.
func usage(s schemas.EcoSample) eco.Usage {
	return eco.Usage{
		CPUSeconds: s.CPUS, WallSeconds: s.WallS, MemGB: float64(s.MemReservedBytes) / 1e9, NetGB: netGB(s),
		StorageTBHours: map[string]float64{eco.MediaSSD: tbHours(s, eco.MediaSSD), eco.MediaHDD: tbHours(s, eco.MediaHDD)},
	}
}

// metrics are the ecometer_* series.
type metrics struct {
	constants eco.Constants
	intensity float64
	cpu       *prometheus.CounterVec // stage
	energy    *prometheus.CounterVec // stage, component
	co2e      *prometheus.CounterVec // stage
	perMil    *prometheus.GaugeVec   // stage
	grams     map[string]float64
	records   map[string]int64
}

func newMetrics(reg prometheus.Registerer, c eco.Constants, grid string) *metrics {
	intensity, _ := eco.Grid(grid)
	m := &metrics{
		constants: c, intensity: intensity, grams: map[string]float64{}, records: map[string]int64{},
		cpu: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecometer_stage_cpu_seconds_total", Help: "CPU seconds the processes of a stage reported.",
		}, []string{"stage"}),
		energy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecometer_stage_energy_joules_total", Help: "Estimated energy of a stage (central constants, PUE included), by component (cpu, memory, network, storage).",
		}, []string{"stage", "component"}),
		co2e: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecometer_stage_co2e_grams_total", Help: "Estimated CO2e of a stage on ECO_GRID (central constants).",
		}, []string{"stage"}),
		perMil: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ecometer_co2e_grams_per_million_records", Help: "Estimated CO2e per million records a stage handled, since the ecometer started.",
		}, []string{"stage"}),
	}
	reg.MustRegister(m.cpu, m.energy, m.co2e, m.perMil)
	return m
}

func (m *metrics) add(s schemas.EcoSample) {
	e := eco.Estimate(usage(s), m.constants)
	m.cpu.WithLabelValues(s.Stage).Add(max(s.CPUS, 0))
	for component, wh := range map[string]float64{"cpu": e.CPU, "memory": e.Memory, "network": e.Network, "storage": e.Storage} {
		m.energy.WithLabelValues(s.Stage, component).Add(max(wh*m.constants.PUE*3600, 0))
	}
	g := eco.GramsCO2e(e.Total, m.intensity)
	m.co2e.WithLabelValues(s.Stage).Add(max(g, 0))
	m.grams[s.Stage] += g
	m.records[s.Stage] += max(s.RecordsIn, s.RecordsOut)
	if n := m.records[s.Stage]; n > 0 {
		m.perMil.WithLabelValues(s.Stage).Set(eco.PerMillion(m.grams[s.Stage], n))
	}
}
