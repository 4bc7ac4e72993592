package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/testkit"
)

// peerPython makes (once) the venv of the Python peer with
// scripts/python/peers.sh and returns its interpreter. Without Debian's
// python3-venv or PyPI the test skips, except in CI, where .ci/run makes
// the venv before the tests.
func peerPython(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "scripts", "python", "peers.sh")) // #nosec G204 -- the repository's own script
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		testkit.Unavailable(t, "the Python peer's venv (scripts/python/peers.sh: apt-get install python3-venv, and PyPI): "+err.Error()+"\n"+stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestPythonPeerEndsWhereDatamillEnds runs a small bench on dirty users
// with the seed-style Python consumer after datamill, and checks that the
// peer consumed the same events into the same cleaned rows, rejects and
// predictions, and that both runs were measured.
func TestPythonPeerEndsWhereDatamillEnds(t *testing.T) {
	p := runBenchPeer(t, "python", "--peer-python", peerPython(t))
	if p.Events != 600 || p.Consumed != 600 {
		t.Errorf("the peer was given %d events and consumed %d: want 600 each", p.Events, p.Consumed)
	}
	// With seed 1, 30 % dirt leaves some users without a valid id: both
	// reject them, and load the others alike.
	if p.Rows == 0 || p.Rows != p.Datamill.Rows || p.Rejects == 0 || p.Rejects != p.Datamill.Rejects {
		t.Errorf("peer %d rows, %d rejects; datamill %d rows, %d rejects: want the same, and some of each",
			p.Rows, p.Rejects, p.Datamill.Rows, p.Datamill.Rejects)
	}
	if p.Predictions != p.Rows || p.Differ != 0 {
		t.Errorf("peer %d predictions for %d rows, %d users cleaned unlike datamill's: want one each, none", p.Predictions, p.Rows, p.Differ)
	}
	if p.Seconds <= 0 || p.EventsPerSecond <= 0 || p.CPUSeconds <= 0 || p.CPUMicrosPerEvent <= 0 {
		t.Errorf("peer measured %.2f s, %.0f events/s, %.2f CPU s, %.0f CPU µs an event: want all positive",
			p.Seconds, p.EventsPerSecond, p.CPUSeconds, p.CPUMicrosPerEvent)
	}
	if p.Datamill.EventsPerSecond <= 0 || p.Datamill.CPUMicrosPerEvent <= 0 || p.Datamill.AllCPUMicrosPerEvent < p.Datamill.CPUMicrosPerEvent {
		t.Errorf("datamill %.0f events/s, %.0f CPU µs an event (%.0f every service): want both measured, every service's at least the stages'",
			p.Datamill.EventsPerSecond, p.Datamill.CPUMicrosPerEvent, p.Datamill.AllCPUMicrosPerEvent)
	}
	if p.Speedup <= 0 || p.CPURatio <= 0 {
		t.Errorf("ratios %.2f (events/s) and %.2f (CPU an event): want both", p.Speedup, p.CPURatio)
	}
}

// runBenchPeer runs a bench of 600 users, 30 % dirty, with the peer name
// after datamill, and returns the peer's report.
func runBenchPeer(t *testing.T, name string, args ...string) *peerReport {
	t.Helper()
	var out bytes.Buffer
	args = append([]string{"bench", "--events", "600", "--partitions", "2", "--dirty", "0.3", "--peer", name, "--json"}, args...)
	if err := run(t.Context(), args, toolchainEnv(), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out.String())
	}
	if len(r.Peers) != 1 || r.Peers[0].Name != name {
		t.Fatalf("peers %+v: want the %s peer's run", r.Peers, name)
	}
	return r.Peers[0]
}
