package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/stage"
)

// watcher samples, while a bench runs, each stage's records and consumer
// lag from its /metrics and each process's resident memory from /proc.
type watcher struct {
	b       *benchRun
	start   time.Time
	procs   []benchPID
	cpu0    map[string]float64
	phases0 map[string]map[string]float64 // stage → phase → seconds at the start
	phases1 map[string]map[string]float64 // … and at the end
	mu      sync.Mutex
	samples []watchSample
	done    chan struct{}
	stopped chan struct{}
}

type benchPID struct {
	name string
	pid  int
	tree bool // count the CPU of its descendants too; no RSS
}

// cpu is the process's CPU seconds so far.
func (p benchPID) cpu() (float64, error) {
	if p.tree {
		return eco.TreeCPUSeconds(p.pid)
	}
	u, err := eco.ReadProcess(p.pid)
	return u.CPUSeconds, err
}

type watchSample struct {
	at  time.Duration
	in  map[string]int
	lag map[string]int
	rss map[string]float64 // MiB
}

// benchStages are the consuming steps whose records and lag bench
// follows: the stages, and the lake sink beside them (its own group on
// raw.<dataset>).
var benchStages = []string{"cleaner", "loader", "scorer", "lake"}

// phasedStages are those of benchStages that run pkg/stage's batch cycle,
// whose phases they time; the lake sink has none.
var phasedStages = []string{"cleaner", "loader", "scorer"}

func newWatcher(b *benchRun) *watcher {
	self := "datamill bench (kfake, registry, producer, reader)"
	if b.stack.env["KAFKA_BROKERS"] != "" {
		self = "datamill bench (producer, reader)"
	}
	w := &watcher{b: b, start: time.Now(), cpu0: map[string]float64{}, done: make(chan struct{}), stopped: make(chan struct{})}
	w.procs = append(w.procs, benchPID{name: self, pid: os.Getpid()})
	for _, c := range b.stack.children {
		w.procs = append(w.procs, benchPID{name: c.name, pid: c.cmd.Process.Pid})
	}
	if b.stack.pg != nil {
		w.procs = append(w.procs, benchPID{name: "postgresql (server and backends)", pid: b.stack.pg.PID(), tree: true})
	}
	for _, p := range w.procs {
		if cpu, err := p.cpu(); err == nil {
			w.cpu0[p.name] = cpu
		}
	}
	w.phases0 = w.phases(context.Background())
	return w
}

// phases reads the seconds each stage has spent in each phase of its
// batch cycle (datamill_stage_phase_seconds_total).
func (w *watcher) phases(ctx context.Context) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, st := range phasedStages {
		for _, addr := range w.b.replicas(st) { // summed over the stage's processes
			m, err := fetchMetrics(ctx, addr)
			if err != nil {
				continue
			}
			if out[st] == nil {
				out[st] = map[string]float64{}
			}
			for _, ph := range stage.Phases {
				out[st][ph] += total(m, "datamill_stage_phase_seconds_total", `phase="`+ph+`"`)
			}
		}
	}
	return out
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.stopped)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		w.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case <-tick.C:
		}
	}
}

// sample reads every stage's metrics and every process's memory once.
func (w *watcher) sample(ctx context.Context) {
	s := watchSample{at: time.Since(w.start), in: map[string]int{}, lag: map[string]int{}, rss: map[string]float64{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range benchStages {
		in, lag, err := 0, 0, error(nil)
		for _, addr := range w.b.replicas(st) { // summed over the stage's processes
			var m map[string]float64
			if m, err = fetchMetrics(ctx, addr); err != nil {
				break
			}
			in += sumOf(m, "datamill_stage_records_in_total")
			lag += sumOf(m, "datamill_stage_consumer_lag_records")
		}
		if err != nil && len(w.samples) > 0 { // keep the last reading
			prev := w.samples[len(w.samples)-1]
			s.in[st], s.lag[st] = prev.in[st], prev.lag[st]
			continue
		}
		s.in[st], s.lag[st] = in, lag
	}
	for _, p := range w.procs {
		if u, err := eco.ReadProcess(p.pid); err == nil && !p.tree {
			s.rss[p.name] = float64(u.RSSBytes) / (1 << 20)
		}
	}
	w.samples = append(w.samples, s)
}

// stop ends the sampling with one last sample, taken after the pipeline
// drained.
func (w *watcher) stop(ctx context.Context) {
	close(w.done)
	<-w.stopped
	w.sample(ctx)
	w.phases1 = w.phases(ctx)
}

// report turns the samples into each stage's throughput and lag, the lag
// over time and each process's CPU and memory during the bench.
func (w *watcher) report() ([]benchStage, []lagPoint, []benchProcess) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var stages []benchStage
	for _, st := range benchStages {
		s := benchStage{Name: st}
		var from, to time.Duration
		final := w.samples[len(w.samples)-1].in[st]
		for i, smp := range w.samples {
			if smp.in[st] > 0 && from == 0 && i > 0 {
				from = w.samples[i-1].at
			}
			if smp.in[st] == final && to == 0 && final > 0 {
				to = smp.at
			}
			s.MaxLag = max(s.MaxLag, smp.lag[st])
		}
		s.Records = final
		if slices.Contains(phasedStages, st) {
			s.PhaseSeconds = map[string]float64{}
			for _, ph := range stage.Phases {
				s.PhaseSeconds[ph] = w.phases1[st][ph] - w.phases0[st][ph]
			}
		}
		if to > from {
			s.Seconds = (to - from).Seconds()
			s.RecordsPerSecond = float64(final) / s.Seconds
		}
		stages = append(stages, s)
	}
	// At most about 240 points of lag, evenly spread.
	var lag []lagPoint
	step := max(1, len(w.samples)/240)
	for i := 0; i < len(w.samples); i += step {
		lag = append(lag, lagPoint{Seconds: w.samples[i].at.Seconds(), ByStage: w.samples[i].lag})
	}
	var procs []benchProcess
	for _, p := range w.procs {
		u, _ := eco.ReadProcess(p.pid)
		cpu, _ := p.cpu()
		var rss []float64
		for _, smp := range w.samples {
			if v, ok := smp.rss[p.name]; ok {
				rss = append(rss, v)
			}
		}
		slices.Sort(rss)
		procs = append(procs, benchProcess{
			Name: p.name, CPUSeconds: cpu - w.cpu0[p.name],
			SteadyRSSMiB: quantile(rss, 0.5), PeakRSSMiB: float64(u.PeakRSSBytes) / (1 << 20),
		})
		if p.tree {
			procs[len(procs)-1].SteadyRSSMiB, procs[len(procs)-1].PeakRSSMiB = 0, 0
		}
	}
	return stages, lag, procs
}

// readyz tells whether the service on addr answers /readyz with 200.
func readyz(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// awaitReady waits until the service on addr is ready, for at most
// timeout.
func awaitReady(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !readyz(ctx, addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within %v", addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// fetchTo saves what url answers into path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path) // #nosec G304 -- a file in --profile, the operator's own directory
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close() // the copy's error is the one returned
		return err
	}
	return f.Close()
}
