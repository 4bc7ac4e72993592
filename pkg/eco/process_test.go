package eco

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestReadProcessAgreesWithGetrusage(t *testing.T) {
	before, err := ReadProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until getrusage has counted 300 ms of CPU, not for 300 ms of
	// wall time: on a busy machine the spin gets less than its wall time.
	from, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		now, err := Read()
		if err != nil {
			t.Fatal(err)
		}
		if now.CPUSeconds-from.CPUSeconds >= 0.3 {
			break
		}
	}
	after, err := ReadProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if spent := after.CPUSeconds - before.CPUSeconds; spent < 0.2 || spent > 1 {
		t.Errorf("a spin of 300 CPU ms counted %.2f CPU s", spent)
	}
	if after.CPUSeconds > self.CPUSeconds+0.02 {
		t.Errorf("/proc says %.2f CPU s, getrusage %.2f: /proc cannot be ahead", after.CPUSeconds, self.CPUSeconds)
	}
	if after.RSSBytes <= 0 || after.PeakRSSBytes < after.RSSBytes {
		t.Errorf("RSS %d, peak %d: want 0 < RSS ≤ peak", after.RSSBytes, after.PeakRSSBytes)
	}
	if _, err := ReadProcess(-1); err == nil {
		t.Error("ReadProcess of no process succeeded")
	}
}

func TestTreeCPUSecondsCountsLivingAndExitedChildren(t *testing.T) {
	// A shell that spins in one child until it exits and is reaped, then
	// starts a second spinning child and waits on it.
	cmd := exec.Command("sh", "-c", `sh -c 'end=$(($(date +%s%N)+300000000)); while [ $(date +%s%N) -lt $end ]; do :; done'; sh -c 'while :; do :; done' & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	var own, tree float64
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
		p, err := ReadProcess(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if tree, err = TreeCPUSeconds(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		own = p.CPUSeconds
		if tree > 0.6 {
			break
		}
	}
	// The first child's 0.3 s are reaped, the second child's spin is live.
	if tree < 0.6 || tree-own < 0.5 {
		t.Errorf("tree CPU %.2f s, the shell's own %.2f s: want the children's spins (≥ 0.6 s) counted", tree, own)
	}
	if _, err := TreeCPUSeconds(-1); err == nil {
		t.Error("TreeCPUSeconds of no process succeeded")
	}
}
