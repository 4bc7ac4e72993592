package eco

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// threadCPU is the CPU time of the calling thread (RUSAGE_THREAD).
func threadCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// N goroutines, each on its own thread, spin until their thread has used
// busy of CPU time: the process's CPU seconds must grow by N × busy within
// 2 %. Each thread counts its own CPU time, so other load on the machine
// (which only stretches the wall time) cannot fail the test.
func TestKnownWorkload(t *testing.T) {
	const n, busy = 3, 400 * time.Millisecond
	before, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU(t)
			for threadCPU(t)-start < busy {
				for i := 0; i < 10000; i++ {
					_ = i * i
				}
			}
		})
	}
	wg.Wait()
	after, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	w := after.Since(before)
	want := float64(n) * busy.Seconds()
	if w.CPUSeconds < want*0.98 || w.CPUSeconds > want*1.02 {
		t.Errorf("process CPU grew %.3f s for %d threads busy %v each: want %.3f s within 2 %%", w.CPUSeconds, n, busy, want)
	}
	if w.WallSeconds <= 0 || w.VCPUs < 1 || w.MemReservedBytes <= 0 || (w.MemSource != "vmhwm" && w.MemSource != "cgroup") {
		t.Errorf("window %+v", w)
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
