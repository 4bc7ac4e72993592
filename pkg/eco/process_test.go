package eco

import (
	"os"
	"testing"
	"time"
)

func TestReadProcessAgreesWithGetrusage(t *testing.T) {
	before, err := ReadProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
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
		t.Errorf("a 300 ms spin counted %.2f CPU s", spent)
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
