package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startJobboard runs `datamill jobboard` with args and returns the URLs it
// printed, by name, once it is ready, and a stop that ends it and returns
// run's error.
func startJobboard(t *testing.T, args ...string) (map[string]string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"jobboard"}, args...), nil, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	urls := map[string]string{}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "\t")
			if line == "ready" {
				close(ready)
				break
			}
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
				urls[k] = v
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("jobboard ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("jobboard not ready within 30 s")
	}
	stopped := false
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
		}
		select {
		case err := <-done:
			done <- err
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("jobboard did not stop within 10 s")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return urls, stop
}

func TestJobboardServesCountsOnLoopbackUntilInterrupted(t *testing.T) {
	urls, stop := startJobboard(t, "--addr", "127.0.0.1:0", "--rows", "120", "--seed", "3", "--crawl-delay", "50ms")
	base := urls["jobboard"]
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("base URL %q, want a loopback address with its port", base)
	}
	for _, s := range []string{"remotive", "arbeitnow", "remoteok", "weworkremotely", "adzuna", "francetravail", "francetravail_token"} {
		if !strings.HasPrefix(urls[s], base+"/") {
			t.Errorf("%s URL %q, want one on %s", s, urls[s], base)
		}
	}
	resp, err := http.Get(base + "/_board/counts")
	if err != nil {
		t.Fatal(err)
	}
	var counts map[string]int
	err = json.NewDecoder(resp.Body).Decode(&counts)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("decode counts: %v", err)
	}
	total := 0
	for s, n := range counts {
		if n == 0 {
			t.Errorf("%s: no offers", s)
		}
		total += n
	}
	if len(counts) != 6 || total < 120 {
		t.Errorf("counts %v: want 6 sources and at least 120 offers", counts)
	}
	resp, err = http.Get(base + "/robots.txt")
	if err != nil {
		t.Fatal(err)
	}
	robots, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(robots), "Crawl-delay: 0.05\n") {
		t.Errorf("robots.txt %q: want the crawl delay of --crawl-delay", robots)
	}
	if err := stop(); err != nil {
		t.Fatalf("jobboard after interrupt: %v", err)
	}
	if _, err := http.Get(base + "/_board/counts"); err == nil {
		t.Error("the board still answers after it stopped")
	}
}

func TestJobboardRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"every interface", []string{"--addr", ":0"}, "not a loopback address; give --public"},
		{"another host", []string{"--addr", "192.0.2.1:8080"}, "not a loopback address"},
		{"dirty above 1", []string{"--dirty", "2"}, "dirty 2"},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Were the flags taken, the board would serve until the
			// deadline and return no error.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := run(ctx, append([]string{"jobboard"}, tt.args...), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("jobboard %v: %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
