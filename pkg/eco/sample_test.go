package eco

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time of the calling thread: CLOCK_THREAD_CPUTIME_ID,
// which includes the slice running now (getrusage(RUSAGE_THREAD) lags by
// up to a scheduler tick, 4 ms at 250 Hz, so each thread would spin that
// much longer than asked). It is a raw syscall so that the Go scheduler
// never sees the thread in a syscall: on a crowded machine the kernel
// often parks a thread inside one, sysmon then hands its P to another
// thread and polls every 20 µs, and that work of the runtime (up to 8 % of
// a CPU, measured) would add to the known workload.
func threadCPU(t *testing.T) time.Duration {
	var ts unix.Timespec
	if _, _, errno := unix.RawSyscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_THREAD_CPUTIME_ID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		t.Error(errno)
		return time.Hour
	}
	return time.Duration(ts.Nano())
}

// spin keeps n goroutines busy, each on its own thread, until its thread
// has used busy of CPU time, looking at its clock about every 0.3 ms.
func spin(t *testing.T, n int, busy time.Duration) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU(t)
			for threadCPU(t)-start < busy {
				for i := range 1_000_000 {
					_ = i * i
				}
			}
		})
	}
	wg.Wait()
}

// Known workload: N busy goroutines for T seconds must give cpu_s ≈
// min(N, vCPUs) × T. On a machine that other jobs share, T seconds of wall
// time do not buy a known amount of CPU, so the test turns it round: each
// goroutine spins on its own thread until that thread has used T of CPU
// time (the kernel's per-thread count), which other load only delays. The
// sample's cpu_s must then be N × T within 2 %, and the window can never
// show more than min(N, vCPUs) CPUs busy: cpu_s ≤ min(N, vCPUs) × wall_s
// (on an idle machine the two are equal; other load only lowers cpu_s /
// wall_s). N runs below, at and above the vCPUs (GOMAXPROCS 2, unless a
// cgroup quota is lower).
func TestKnownWorkload(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const busy = time.Second
	s := &Sampler{Every: time.Hour, Metrics: prometheus.NewRegistry(), Log: zap.NewNop()}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			if _, err := s.Sample(); err != nil { // closes the window before
				t.Fatal(err)
			}
			spin(t, n, busy)
			sample, err := s.Sample()
			if err != nil {
				t.Fatal(err)
			}
			want := float64(n) * busy.Seconds()
			if sample.CPUS < want*0.98 || sample.CPUS > want*1.02 {
				t.Errorf("cpu_s %.4f for %d threads busy %v each: want %.4f within 2 %%", sample.CPUS, n, busy, want)
			}
			if most := min(float64(n), sample.Vcpus) * sample.WallS; sample.CPUS > most*1.02 {
				t.Errorf("cpu_s %.4f in %.4f s of wall time: more than min(N=%d, vCPUs=%v) CPUs busy", sample.CPUS, sample.WallS, n, sample.Vcpus)
			}
			if sample.Vcpus < 1 || sample.Vcpus > 2 || sample.MemReservedBytes <= 0 || (sample.MemSource != "vmhwm" && sample.MemSource != "cgroup") {
				t.Errorf("sample %+v", sample)
			}
			t.Logf("cpu_s %.4f, wall_s %.4f: %.2f CPUs busy", sample.CPUS, sample.WallS, sample.CPUS/sample.WallS)
		})
	}
}

// Limits come from the process's own cgroup and its ancestors, the lowest
// winning; without any, the peak resident set and GOMAXPROCS.
func TestCgroupLimits(t *testing.T) {
	root := t.TempDir()
	write := func(name, v string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/cgroup", "0::/system.slice/loader.service\n")
	h := host{cgroupRoot: filepath.Join(root, "cg"), selfCgroup: filepath.Join(root, "proc/cgroup"), selfStatus: "/proc/self/status"}
	for _, step := range []struct {
		name    string
		files   map[string]string
		memory  int64 // 0: the peak resident set
		vcpus   float64
		outside string // a cgroup file the process is not under
	}{
		{name: "unlimited", files: map[string]string{
			"cg/memory.max": "max\n", "cg/cpu.max": "max 100000\n",
			"cg/system.slice/loader.service/memory.max": "max\n", "cg/system.slice/loader.service/cpu.max": "max 100000\n",
		}, vcpus: float64(runtime.GOMAXPROCS(0))},
		{name: "the process's own cgroup", files: map[string]string{
			"cg/system.slice/loader.service/memory.max": "536870912\n", "cg/system.slice/loader.service/cpu.max": "150000 100000\n",
		}, memory: 536870912, vcpus: 1.5},
		{name: "a lower limit of a parent", files: map[string]string{
			"cg/system.slice/memory.max": "268435456\n", "cg/system.slice/cpu.max": "50000 100000\n",
			"cg/other.slice/memory.max": "1024\n", "cg/other.slice/cpu.max": "1000 100000\n",
		}, memory: 268435456, vcpus: 0.5},
	} {
		for name, v := range step.files {
			write(name, v)
		}
		r, err := h.read()
		if err != nil {
			t.Fatal(err)
		}
		wantSource := "cgroup"
		if step.memory == 0 {
			wantSource = "vmhwm"
		}
		if r.MemSource != wantSource || (step.memory != 0 && r.MemReservedBytes != step.memory) || r.MemReservedBytes <= 0 || r.VCPUs != step.vcpus {
			t.Errorf("%s: reading %+v, want %s memory %d and %v vCPUs", step.name, r, wantSource, step.memory, step.vcpus)
		}
	}
	// In a container with its own cgroup namespace the process's cgroup
	// is the root; a path not mounted falls back to it too.
	for _, self := range []string{"0::/\n", "0::/not/mounted\n"} {
		write("proc/cgroup", self)
		write("cg/memory.max", "4096\n")
		if r, err := h.read(); err != nil || r.MemReservedBytes != 4096 || r.MemSource != "cgroup" {
			t.Errorf("cgroup %q: reading %+v (%v), want the root's 4096 bytes", self, r, err)
		}
	}
}
