package eco

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Reading is what the process has used since it started, at one moment.
type Reading struct {
	At time.Time // with its monotonic clock reading
	// CPUSeconds is user plus system time of all the process's threads.
	CPUSeconds float64
	// MemReservedBytes is the cgroup's memory limit when it has one, else
	// the process's peak resident set (MemSource says which).
	MemReservedBytes int64
	MemSource        string
	// VCPUs is the cgroup's CPU quota when it has one, else GOMAXPROCS.
	VCPUs float64
}

// cgroupRoot is where the process's cgroup v2 files are.
var cgroupRoot = "/sys/fs/cgroup"

// Read measures the process now.
func Read() (Reading, error) {
	r := Reading{At: time.Now()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return r, fmt.Errorf("getrusage: %w", err)
	}
	r.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	if limit, ok := cgroupMemory(); ok {
		r.MemReservedBytes, r.MemSource = limit, "cgroup"
	} else {
		hwm, err := peakRSS()
		if err != nil {
			return r, err
		}
		r.MemReservedBytes, r.MemSource = hwm, "vmhwm"
	}
	r.VCPUs = float64(runtime.GOMAXPROCS(0))
	if q, ok := cgroupCPUs(); ok {
		r.VCPUs = q
	}
	return r, nil
}

// cgroupMemory is memory.max, unless it is "max" or unreadable.
func cgroupMemory() (int64, bool) {
	b, err := os.ReadFile(cgroupRoot + "/memory.max")
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil && v > 0
}

// cgroupCPUs is cpu.max's quota over its period, unless unlimited.
func cgroupCPUs() (float64, bool) {
	b, err := os.ReadFile(cgroupRoot + "/cpu.max")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || period <= 0 {
		return 0, false
	}
	return quota / period, true
}

// peakRSS is VmHWM of /proc/self/status, in bytes.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// Window is the use between two readings.
type Window struct {
	Start, End       time.Time
	WallSeconds      float64
	CPUSeconds       float64
	MemReservedBytes int64
	MemSource        string
	VCPUs            float64
}

// Since is the window from an earlier reading to r.
func (r Reading) Since(earlier Reading) Window {
	return Window{
		Start: earlier.At, End: r.At,
		WallSeconds:      r.At.Sub(earlier.At).Seconds(),
		CPUSeconds:       r.CPUSeconds - earlier.CPUSeconds,
		MemReservedBytes: r.MemReservedBytes, MemSource: r.MemSource, VCPUs: r.VCPUs,
	}
}

// Usage is the window as the model reads it.
func (w Window) Usage() Usage {
	return Usage{CPUSeconds: w.CPUSeconds, WallSeconds: w.WallSeconds, MemGB: float64(w.MemReservedBytes) / 1e9}
}
