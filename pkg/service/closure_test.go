package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
)

// closureChild, set in a child's environment, makes the test binary run
// closureService instead of the tests.
const closureChild = "DATAMILL_CLOSURE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(closureChild) != "" {
		if err := closureService(os.Environ(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// closureSettings are the child service's configuration.
type closureSettings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
}

// closureService is a service built like every datamill service (Run,
// Connect, hence the eco sampler) whose step is busy work: it says "ready"
// once its sampler runs, waits for a line on in, works for at least
// closureWall and closureCPU, stops (its last sample goes out), says
// "done" and waits for in to close, so that its parent reads the kernel's
// counters while it is idle.
func closureService(environ []string, in io.Reader, out io.Writer) error {
	lines := bufio.NewReader(in)
	err := Run(context.Background(), "closure", nil, environ, io.Discard, func(ctx context.Context, p *Process, cfg closureSettings) error {
		if _, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, nil); err != nil {
			return err
		}
		fmt.Fprintln(out, "ready")
		if _, err := lines.ReadString('\n'); err != nil {
			return err
		}
		work()
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "done")
	_, err = io.Copy(io.Discard, lines)
	return err
}

const closureWall, closureCPU = 10 * time.Second, 2.0

// work keeps two goroutines busy a fifth of the time, one computing and
// one allocating (so the garbage collector's threads work too), until
// closureWall has passed and the process has used closureCPU seconds since
// it began: other load on the machine can only make it last longer.
func work() {
	start := time.Now()
	r0, _ := eco.Read()
	stop := make(chan struct{})
	done := make(chan struct{}, 2)
	for g := range 2 {
		go func() {
			var keep [][]byte
			for {
				select {
				case <-stop:
					done <- struct{}{}
					return
				default:
				}
				until := time.Now().Add(2 * time.Millisecond)
				for time.Now().Before(until) {
					if g == 0 {
						for i := range 100_000 {
							_ = i * i
						}
					} else {
						if len(keep) == 64 {
							keep = keep[:0]
						}
						keep = append(keep, make([]byte, 16<<10))
					}
				}
				time.Sleep(8 * time.Millisecond)
			}
		}()
	}
	for {
		time.Sleep(100 * time.Millisecond)
		r, _ := eco.Read()
		if time.Since(start) >= closureWall && r.CPUSeconds-r0.CPUSeconds >= closureCPU {
			break
		}
	}
	close(stop)
	<-done
	<-done
}

// procCPU is a process's user + system time from /proc/<pid>/stat: the
// kernel's accounting of that process, as another process reads it.
func procCPU(t *testing.T, pid int) float64 {
	t.Helper()
	u, err := eco.ReadProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	return u.CPUSeconds
}

// Closure: the CPU seconds that services' eco samples report add up to
// what the kernel accounts for those processes over the same window of at
// least 10 s, within 3 %.
//
// The machine is shared, so the reference is not the host's busy time in
// /proc/stat (any other job would count in it) but each service process's
// own counter in /proc/<pid>/stat, read by this test while the process is
// idle: before it starts working, just after its sampler took its first
// reading, and after it stopped and published its last sample. The window
// is then the same on both sides, and other load can only stretch it.
// The samples are those the services really published: two child
// processes built like every service (Run, Connect, so the eco sampler
// with ECO_SAMPLE_INTERVAL=1s and its last sample on shutdown), through
// Kafka and the schema registry; the test sums the cpu_s of every sample
// of each process.
func TestClosureOfEcoSamplesAgainstTheKernel(t *testing.T) {
	kcfg, registry := testkit.Kafka(t), testkit.Registry(t)
	runID := testkit.Name(t, "closure")
	type child struct {
		cmd    *exec.Cmd
		in     io.WriteCloser
		out    *bufio.Reader
		kernel float64
	}
	say := func(c *child, want string) {
		t.Helper()
		line, err := c.out.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			t.Fatalf("child %d said %q (%v), want %q", c.cmd.Process.Pid, line, err, want)
		}
	}
	children := make([]*child, 2)
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), testkit.KafkaEnv(kcfg)...), closureChild+"=1", "SCHEMA_REGISTRY_URL="+registry,
			"RUN_ID="+runID, "ECO_SAMPLE_INTERVAL=1s", "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=error")
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		children[i] = &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	}
	for _, c := range children {
		say(c, "ready")
		c.kernel = -procCPU(t, c.cmd.Process.Pid)
		if _, err := io.WriteString(c.in, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range children {
		say(c, "done")
		c.kernel += procCPU(t, c.cmd.Process.Pid)
		c.in.Close()
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", c.cmd.Process.Pid, err)
		}
	}

	type sum struct {
		cpu, wall float64
		samples   int
	}
	sampled := map[string]*sum{}
	for _, s := range ecoSamples(t, kcfg, registry) {
		if s.RunID != runID {
			continue
		}
		if sampled[s.Instance] == nil {
			sampled[s.Instance] = &sum{}
		}
		sampled[s.Instance].cpu += s.CPUS
		sampled[s.Instance].wall += s.WallS
		sampled[s.Instance].samples++
	}
	host, _ := os.Hostname()
	var allSampled, allKernel float64
	for _, c := range children {
		s := sampled[fmt.Sprintf("%s:%d", host, c.cmd.Process.Pid)]
		if s == nil {
			t.Fatalf("no eco samples of child %d", c.cmd.Process.Pid)
		}
		t.Logf("child %d: %d samples over %.2f s count %.3f CPU s, the kernel %.3f", c.cmd.Process.Pid, s.samples, s.wall, s.cpu, c.kernel)
		if s.wall < closureWall.Seconds() || s.samples < 10 {
			t.Errorf("child %d: %d samples over %.2f s, want at least 10 over at least %v", c.cmd.Process.Pid, s.samples, s.wall, closureWall)
		}
		if c.kernel < closureCPU*0.97 || s.cpu < c.kernel*0.97 || s.cpu > c.kernel*1.03 {
			t.Errorf("child %d: its samples count %.3f CPU s, the kernel %.3f: want within 3 %%", c.cmd.Process.Pid, s.cpu, c.kernel)
		}
		allSampled += s.cpu
		allKernel += c.kernel
	}
	if allSampled < allKernel*0.97 || allSampled > allKernel*1.03 {
		t.Errorf("the samples count %.3f CPU s, the kernel %.3f: want within 3 %%", allSampled, allKernel)
	}
	t.Logf("all: samples %.3f CPU s, kernel %.3f CPU s (%+.2f %%)", allSampled, allKernel, 100*(allSampled/allKernel-1))
}
