package eco

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
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

// host names the files a reading comes from, so that tests can point it
// at fakes.
type host struct {
	// cgroupRoot is where the cgroup v2 hierarchy is mounted.
	cgroupRoot string
	// selfCgroup lists the process's cgroups ("0::/path" for v2);
	// selfStatus has its peak resident set (VmHWM).
	selfCgroup, selfStatus string
}

// system is this machine's.
func system() host {
	return host{cgroupRoot: "/sys/fs/cgroup", selfCgroup: "/proc/self/cgroup", selfStatus: "/proc/self/status"}
}

// Read measures the process now.
func Read() (Reading, error) { return system().read() }

func (h host) read() (Reading, error) {
	r := Reading{At: time.Now()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return r, fmt.Errorf("getrusage: %w", err)
	}
	r.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	dirs := h.cgroupDirs()
	if limit, ok := cgroupMemory(dirs); ok {
		r.MemReservedBytes, r.MemSource = limit, "cgroup"
	} else {
		hwm, err := peakRSS(h.selfStatus)
		if err != nil {
			return r, err
		}
		r.MemReservedBytes, r.MemSource = hwm, "vmhwm"
	}
	r.VCPUs = float64(runtime.GOMAXPROCS(0))
	if q, ok := cgroupCPUs(dirs); ok {
		r.VCPUs = q
	}
	return r, nil
}

// cgroupDirs are the directories of the process's cgroup v2 and of its
// ancestors, the process's first: a limit set on any of them applies. In a
// container with its own cgroup namespace the process's cgroup is the
// root; on a host it is the path /proc/self/cgroup names (a systemd
// service's, say). A path that is not mounted there leaves the root.
func (h host) cgroupDirs() []string {
	rel := "/"
	if b, err := os.ReadFile(h.selfCgroup); err == nil {
		for line := range strings.Lines(string(b)) {
			if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
				rel = path.Clean("/" + p)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(h.cgroupRoot, rel)); err != nil {
		rel = "/"
	}
	dirs := []string{filepath.Join(h.cgroupRoot, rel)}
	for rel != "/" {
		rel = path.Dir(rel)
		dirs = append(dirs, filepath.Join(h.cgroupRoot, rel))
	}
	return dirs
}

// cgroupMemory is the lowest memory.max of dirs, unless every one is
// "max" or unreadable.
func cgroupMemory(dirs []string) (int64, bool) {
	limit, ok := lowest(dirs, "memory.max", func(v string) (float64, bool) {
		n, err := strconv.ParseInt(v, 10, 64)
		return float64(n), err == nil && n > 0
	})
	return int64(limit), ok
}

// cgroupCPUs is the lowest cpu.max quota over its period of dirs, unless
// every one is unlimited or unreadable.
func cgroupCPUs(dirs []string) (float64, bool) {
	return lowest(dirs, "cpu.max", func(v string) (float64, bool) {
		quota, period, ok := strings.Cut(v, " ")
		q, err1 := strconv.ParseFloat(quota, 64)
		p, err2 := strconv.ParseFloat(period, 64)
		return q / p, ok && quota != "max" && err1 == nil && err2 == nil && q > 0 && p > 0
	})
}

// lowest is the lowest value parse finds in the file of that name in
// dirs, if it finds any.
func lowest(dirs []string, name string, parse func(string) (float64, bool)) (float64, bool) {
	var low float64
	found := false
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, name)) // #nosec G304 -- memory.max or cpu.max in the process's cgroup directories
		if err != nil {
			continue
		}
		if v, ok := parse(strings.TrimSpace(string(b))); ok && (!found || v < low) {
			low, found = v, true
		}
	}
	return low, found
}

// peakRSS is the VmHWM of a /proc/<pid>/status file, in bytes.
func peakRSS(status string) (int64, error) {
	f, err := os.Open(status) // #nosec G304 -- /proc/<pid>/status of a process we watch
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
	return 0, fmt.Errorf("no VmHWM in %s", status)
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
