package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/testkit"
)

// A warehouse where no dataset ran still has its page: each section says
// what is missing.
func TestReportWritesThePageOfAnEmptyWarehouse(t *testing.T) {
	environ := []string{"DATABASE_URL=" + testkit.Postgres(t)}
	tests := map[string]struct {
		args         []string
		want, absent []string
	}{
		"every section": {
			want: []string{`<section id="jobs">`, "the jobs dataset has not run", `<section id="users">`, `<section id="pipeline">`, `<section id="profiles">`, `<a href="#jobs">`},
		},
		"one dataset": {
			args:   []string{"--dataset", "jobs", "--dataset", "jobs"},
			want:   []string{`<section id="jobs">`, `<section id="pipeline">`},
			absent: []string{`<section id="users">`},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "page.html")
			var stdout, stderr strings.Builder
			if err := run(t.Context(), append([]string{"report", "--out", out}, tt.args...), environ, &stdout, &stderr); err != nil {
				t.Fatalf("report %v: %v\n%s", tt.args, err, stderr.String())
			}
			if got := stdout.String(); got != "report: "+out+"\n" {
				t.Errorf("report printed %q, want the page's path", got)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			page := string(b)
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("the page lacks %q", w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(page, a) {
					t.Errorf("the page holds %q", a)
				}
			}
		})
	}
}

func TestReportRefuses(t *testing.T) {
	tests := map[string]struct {
		args    []string
		environ []string
		want    string
	}{
		"no database":        {args: []string{"report"}, want: "DATABASE_URL"},
		"unknown dataset":    {args: []string{"report", "--dataset", "orders"}, environ: []string{"DATABASE_URL=postgres://x/y"}, want: "no section for it"},
		"every interface":    {args: []string{"report", "--serve", ":0"}, environ: []string{"DATABASE_URL=postgres://x/y"}, want: "--public"},
		"a public address":   {args: []string{"report", "--serve", "0.0.0.0:0"}, environ: []string{"DATABASE_URL=postgres://x/y"}, want: "not a loopback address"},
		"a stray argument":   {args: []string{"report", "jobs"}, environ: []string{"DATABASE_URL=postgres://x/y"}, want: "usage"},
		"an unreachable one": {args: []string{"report", "--out", filepath.Join(t.TempDir(), "p.html")}, environ: []string{"DATABASE_URL=postgres://datamill@127.0.0.1:1/none?connect_timeout=2"}, want: "connect to the warehouse"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := run(t.Context(), tt.args, tt.environ, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: error %v, want one saying %q", tt.args, err, tt.want)
			}
		})
	}
}

// --serve serves the page, built on each load, until its context ends.
func TestReportServesThePage(t *testing.T) {
	environ := []string{"DATABASE_URL=" + testkit.Postgres(t)}
	addr := testkit.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"report", "--serve", addr}, environ, io.Discard, io.Discard) }()
	var page string
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("GET /: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), b)
			}
			page = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report --serve %s does not answer: %v", addr, err)
		}
		select {
		case err := <-done:
			t.Fatalf("report --serve returned: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(page, `<section id="jobs">`) || !strings.Contains(page, "</html>") {
		t.Errorf("the served page is not the report:\n%.500s", page)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("report --serve after its context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("report --serve did not stop with its context")
	}
}
