package eco

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Process is what the kernel accounts for a process, as another process
// reads it from /proc.
type Process struct {
	// CPUSeconds is user + system time.
	CPUSeconds float64
	// RSSBytes is the resident set now, PeakRSSBytes its high-water mark.
	RSSBytes, PeakRSSBytes int64
}

// ReadProcess reads /proc/<pid>/stat and /proc/<pid>/status.
func ReadProcess(pid int) (Process, error) {
	st, err := readStat(pid)
	if err != nil {
		return Process{}, err
	}
	peak, err := peakRSS(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Process{}, err
	}
	rss := st.rssPages * int64(os.Getpagesize())
	// The kernel moves VmHWM up lazily (when the memory map changes, not
	// on every page fault), so the resident set read a moment later can
	// lie above it: the peak is at least what is resident now.
	return Process{CPUSeconds: st.cpu, RSSBytes: rss, PeakRSSBytes: max(peak, rss)}, nil
}

// TreeCPUSeconds is the CPU time of the process pid and of all its
// descendants, living or exited and reaped: e.g. a PostgreSQL server with
// its backends. A descendant that exited and was not reaped yet is not
// counted.
func TreeCPUSeconds(pid int) (float64, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(p); err == nil {
			children[st.ppid] = append(children[st.ppid], p)
		}
	}
	root, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	total := root.cpu + root.reapedCPU
	todo := children[pid]
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[p]...)
		if st, err := readStat(p); err == nil { // it may have exited since
			total += st.cpu + st.reapedCPU
		}
	}
	return total, nil
}

// stat is what ReadProcess and TreeCPUSeconds use of /proc/<pid>/stat.
type stat struct {
	ppid      int
	cpu       float64 // user + system seconds
	reapedCPU float64 // of the children it waited for
	rssPages  int64
}

func readStat(pid int) (stat, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path) // #nosec G304 -- /proc/<pid>/stat of a process we watch
	if err != nil {
		return stat{}, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, ppid 4, utime 14, stime 15, cutime
	// 16, cstime 17, rss (pages) 24.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 22 {
		return stat{}, fmt.Errorf("%s: %d fields", path, len(f))
	}
	var n [5]float64
	for i, field := range []int{11, 12, 13, 14, 21} {
		if n[i], err = strconv.ParseFloat(f[field], 64); err != nil {
			return stat{}, fmt.Errorf("%s: %q", path, b)
		}
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return stat{}, fmt.Errorf("%s: %q", path, b)
	}
	const userHZ = 100 // on Linux
	return stat{ppid: ppid, cpu: (n[0] + n[1]) / userHZ, reapedCPU: (n[2] + n[3]) / userHZ, rssPages: int64(n[4])}, nil
}
