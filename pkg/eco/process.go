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
	path := fmt.Sprintf("/proc/%d/stat", pid)
	stat, err := os.ReadFile(path)
	if err != nil {
		return Process{}, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15, rss (pages) 24.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 22 {
		return Process{}, fmt.Errorf("%s: %d fields", path, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	pages, err3 := strconv.ParseInt(f[21], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Process{}, fmt.Errorf("%s: %q", path, stat)
	}
	peak, err := peakRSS(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Process{}, err
	}
	return Process{
		CPUSeconds:   (utime + stime) / 100, // USER_HZ is 100 on Linux
		RSSBytes:     pages * int64(os.Getpagesize()),
		PeakRSSBytes: peak,
	}, nil
}
