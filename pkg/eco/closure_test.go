package eco

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/schemas"
)

const childEnv = "DATAMILL_ECO_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child keeps two threads busy for the window, then prints the CPU seconds
// its sampler counted and waits for its parent to close stdin.
func child() int {
	s := &Sampler{
		Every: time.Hour, Metrics: prometheus.NewRegistry(), Log: zap.NewNop(),
		Publish: func(context.Context, *schemas.EcoSample) error { return nil },
	}
	if err := s.Start(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	start := s.last.CPUSeconds
	until := time.Now().Add(10 * time.Second)
	done := make(chan struct{})
	for range 2 {
		go func() {
			for time.Now().Before(until) {
				for i := 0; i < 1000; i++ {
					_ = i * i
				}
			}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	sample, err := s.Sample()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Printf("cpu %.6f %.6f\n", start, sample.CPUS)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// procCPU is a process's user + system time from /proc/<pid>/stat, the
// kernel's accounting as another process sees it.
func procCPU(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// Closure: the CPU seconds the samplers of several processes count add up
// to what the kernel accounts for those processes (/proc/<pid>/stat), over
// a 10 s window of busy work (two processes, two busy threads each),
// within 3 %. Each process is measured, not the host, so other
// load on the machine cannot fail the test.
func TestClosureAgainstTheKernelsAccounting(t *testing.T) {
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var procs []proc
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		procs = append(procs, proc{cmd, stdin, bufio.NewReader(stdout)})
	}
	var sampled, kernel float64
	for _, p := range procs {
		line, err := p.out.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var start, cpu float64
		if _, err := fmt.Sscanf(line, "cpu %f %f", &start, &cpu); err != nil {
			t.Fatalf("child said %q", line)
		}
		sampled += start + cpu // the sampler's count since the process started
		kernel += procCPU(t, p.cmd.Process.Pid)
		p.stdin.Close()
	}
	if kernel < 1 || sampled < kernel*0.97 || sampled > kernel*1.03 {
		t.Errorf("samplers counted %.3f CPU s, the kernel accounts %.3f: want within 3 %%", sampled, kernel)
	}
	t.Logf("samplers %.3f CPU s, kernel %.3f CPU s", sampled, kernel)
}

// BenchmarkSample is the sampler's cost per window: a reading of the
// process and its record counters. At one sample per 5 s it is the share
// of a CPU the sampler takes.
func BenchmarkSample(b *testing.B) {
	reg := prometheus.NewRegistry()
	in := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "datamill_stage_records_in_total"}, []string{"stage", "dataset"})
	reg.MustRegister(in)
	in.WithLabelValues("cleaner", "users").Add(1)
	s := &Sampler{Every: time.Hour, Metrics: reg, Log: zap.NewNop()}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Sample(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/5*100, "%CPU@5s")
}
