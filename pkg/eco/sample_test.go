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

func TestCgroupLimits(t *testing.T) {
	dir := t.TempDir()
	old := cgroupRoot
	cgroupRoot = dir
	defer func() { cgroupRoot = old }()
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.max", "max\n")
	write("cpu.max", "max 100000\n")
	r, err := Read()
	if err != nil || r.MemSource != "vmhwm" || r.VCPUs != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("unlimited cgroup: %+v, %v", r, err)
	}
	write("memory.max", "536870912\n")
	write("cpu.max", "150000 100000\n")
	r, err = Read()
	if err != nil || r.MemSource != "cgroup" || r.MemReservedBytes != 536870912 || r.VCPUs != 1.5 {
		t.Errorf("limited cgroup: %+v, %v", r, err)
	}
}
