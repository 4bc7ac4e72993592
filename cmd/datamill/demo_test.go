package main

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
)

func TestDemoReconciles(t *testing.T) {
	var out strings.Builder
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOCACHE=" + os.Getenv("GOCACHE"), "GOPATH=" + os.Getenv("GOPATH"), "GOFLAGS=" + os.Getenv("GOFLAGS")}
	if err := run(t.Context(), []string{"demo", "--rows", "2000", "--seed", "5", "--dirty", "0.2", "--json"}, environ, &out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	var s struct {
		Counts struct {
			Raw, Clean, DLQ, Duplicates, Persisted, Unchanged, Scored int
		}
		Tables struct{ Users, Predictions int }
		Model  struct {
			Version string
			AUC     float64
		}
		Eco struct {
			Wh     float64 `json:"total_wh"`
			Stages []struct{ Stage string }
		}
		DistinctValidIDs int     `json:"distinct_valid_ids"`
		Elapsed          float64 `json:"elapsed_seconds"`
		Reconciled       bool
	}
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("demo --json printed %q: %v", out.String(), err)
	}
	if !s.Reconciled || s.Counts.Raw < 2000 || s.Tables.Users != s.DistinctValidIDs || s.DistinctValidIDs > 2000 || s.Counts.DLQ == 0 ||
		s.Counts.Raw != s.Counts.Clean+s.Counts.DLQ+s.Counts.Duplicates || s.Counts.Persisted+s.Counts.Unchanged != s.Counts.Clean || s.Elapsed <= 0 ||
		s.Counts.Scored != s.Counts.Persisted || s.Tables.Predictions != s.Counts.Persisted || s.Model.Version == "" || s.Model.AUC < 0.6 ||
		s.Eco.Wh <= 0 || len(s.Eco.Stages) < 4 {
		t.Errorf("summary %+v", s)
	}
}
