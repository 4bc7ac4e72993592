package eco

import (
	"cmp"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

// Sampler publishes what its process used, one sample per window, and
// exposes the same on /metrics.
type Sampler struct {
	RunID, Service, Instance string
	// Datasets are those the process handles; a sample names its dataset
	// when there is one.
	Datasets []string
	Every    time.Duration
	// Metrics is the process's registry: the record counters are read
	// from it, the sampler's gauges registered in it.
	Metrics *prometheus.Registry
	Publish func(context.Context, *schemas.EcoSample) error
	Log     *zap.Logger
	// Scope is where the process's Kafka traffic goes (ScopeSameHost when
	// every broker is on loopback, else ScopeSameSite).
	Scope  string
	stored atomic.Pointer[StoredFunc]

	last    Reading
	counted records
	cpu     prometheus.Counter
	mem     prometheus.Gauge
	vcpus   prometheus.Gauge
}

// StoredFunc reports the bytes a process keeps stored, by media (the
// loader: its tables).
type StoredFunc func(context.Context) (map[string]int64, error)

// SetStored makes every later sample report what fn says is stored.
func (s *Sampler) SetStored(fn StoredFunc) { s.stored.Store(&fn) }

// ScopeOf is the network scope of traffic to addrs: the same host when
// every one is on loopback, else the same site.
func ScopeOf(addrs []string) string {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return ScopeSameSite
		}
	}
	return ScopeSameHost
}

// records are the process's record counters, cumulative.
type records struct{ in, out, dead, duplicates, bytesIn, bytesOut int64 }

// Record counters the sampler reads: the stage runner's, the extractor's.
var counterNames = map[string]func(*records) *int64{
	"datamill_stage_records_in_total":                func(r *records) *int64 { return &r.in },
	"datamill_stage_records_out_total":               func(r *records) *int64 { return &r.out },
	"datamill_stage_records_dead_lettered_total":     func(r *records) *int64 { return &r.dead },
	"datamill_stage_records_duplicates_total":        func(r *records) *int64 { return &r.duplicates },
	"datamill_extractor_records_total":               func(r *records) *int64 { return &r.out },
	"datamill_extractor_records_dead_lettered_total": func(r *records) *int64 { return &r.dead },
	"datamill_stage_bytes_in_total":                  func(r *records) *int64 { return &r.bytesIn },
	"datamill_stage_bytes_out_total":                 func(r *records) *int64 { return &r.bytesOut },
	"datamill_extractor_bytes_total":                 func(r *records) *int64 { return &r.bytesOut },
}

// Start takes the first reading and registers the gauges.
func (s *Sampler) Start() error {
	r, err := Read()
	if err != nil {
		return err
	}
	s.last = r
	s.cpu = prometheus.NewCounter(prometheus.CounterOpts{Name: "datamill_eco_cpu_seconds_total", Help: "CPU seconds (user + system) the process used, as the eco samples count them."})
	s.mem = prometheus.NewGauge(prometheus.GaugeOpts{Name: "datamill_eco_memory_reserved_bytes", Help: "Memory reserved: the cgroup limit, else the peak resident set."})
	s.vcpus = prometheus.NewGauge(prometheus.GaugeOpts{Name: "datamill_eco_vcpus", Help: "vCPUs reserved: the cgroup quota, else GOMAXPROCS."})
	s.Metrics.MustRegister(s.cpu, s.mem, s.vcpus)
	return nil
}

// Run publishes a sample every Every until ctx ends, then the last
// window's, so that no CPU second goes unreported.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.publish(ctx)
			return
		case <-t.C:
			s.publish(ctx)
		}
	}
}

// publish publishes the current window. Once a window is closed its
// sample must go out even if ctx ends meanwhile, or its CPU seconds would
// be lost: it gets 5 s of its own.
func (s *Sampler) publish(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	sample, err := s.Sample()
	if fn := s.stored.Load(); err == nil && fn != nil {
		var stored map[string]int64
		if stored, err = (*fn)(ctx); err == nil {
			sample.StoredBytes = stored
		}
	}
	if err == nil {
		err = s.Publish(ctx, sample)
	}
	if err != nil {
		s.Log.Warn("eco sample not published", zap.Error(err))
	}
}

// Sample closes the current window and returns its sample.
func (s *Sampler) Sample() (*schemas.EcoSample, error) {
	r, err := Read()
	if err != nil {
		return nil, err
	}
	w := r.Since(s.last)
	s.last = r
	now := s.count()
	d := records{
		now.in - s.counted.in, now.out - s.counted.out, now.dead - s.counted.dead, now.duplicates - s.counted.duplicates,
		now.bytesIn - s.counted.bytesIn, now.bytesOut - s.counted.bytesOut,
	}
	s.counted = now
	s.cpu.Add(max(w.CPUSeconds, 0))
	s.mem.Set(float64(w.MemReservedBytes))
	s.vcpus.Set(w.VCPUs)
	sample := &schemas.EcoSample{
		RunID: s.RunID, Service: s.Service, Stage: s.Service, Instance: s.Instance,
		WindowStart: w.Start.UTC().Truncate(time.Microsecond), WindowEnd: w.End.UTC().Truncate(time.Microsecond),
		WallS: w.WallSeconds, CPUS: w.CPUSeconds,
		MemReservedBytes: w.MemReservedBytes, MemSource: w.MemSource, Vcpus: w.VCPUs,
		RecordsIn: d.in, RecordsOut: d.out, RecordsDeadLettered: d.dead, RecordsDuplicates: d.duplicates,
		BytesIn: map[string]int64{cmp.Or(s.Scope, ScopeSameHost): d.bytesIn}, BytesOut: map[string]int64{cmp.Or(s.Scope, ScopeSameHost): d.bytesOut},
		StoredBytes: map[string]int64{}, CPUSPerEpoch: []float64{},
	}
	if len(s.Datasets) == 1 {
		sample.Dataset = &s.Datasets[0]
	}
	return sample, nil
}

// count sums the process's record counters.
func (s *Sampler) count() records {
	var r records
	families, err := s.Metrics.Gather()
	if err != nil {
		return s.counted
	}
	for _, f := range families {
		field, ok := counterNames[f.GetName()]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			if strings.HasPrefix(f.GetName(), "datamill_") && m.GetCounter() != nil {
				*field(&r) += int64(m.GetCounter().GetValue())
			}
		}
	}
	return r
}

// NewPublisher returns a function that publishes samples to eco.samples
// (Avro through the registry, keyed by instance), creating the topic when
// missing, and the function that closes its client.
func NewPublisher(ctx context.Context, kcfg kafka.Config, reg *serde.Registry, log *zap.Logger) (func(context.Context, *schemas.EcoSample) error, func(), error) {
	codec, err := serde.NewCodec[schemas.EcoSample](ctx, reg, kafka.EcoSamples, schemas.MustSchema("ecosample"))
	if err != nil {
		return nil, nil, err
	}
	cl, err := kafka.NewClient(kcfg, log)
	if err != nil {
		return nil, nil, err
	}
	tcfg := kcfg
	tcfg.Partitions = max(tcfg.Partitions, 1)
	if err := kafka.EnsureTopics(ctx, cl, tcfg, kafka.EcoSamples); err != nil {
		cl.Close()
		return nil, nil, err
	}
	publish := func(ctx context.Context, v *schemas.EcoSample) error {
		b, err := codec.Encode(v)
		if err != nil {
			return err
		}
		return cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.EcoSamples, Key: []byte(v.Instance), Value: b}).FirstErr()
	}
	return publish, cl.Close, nil
}
