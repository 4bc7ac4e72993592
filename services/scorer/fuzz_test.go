package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datamill/datamill/services/scorer/internal/model"
)

// FuzzReadCSV: a CSV export, whatever it holds, is read or refused with an
// error; a record read holds only the declared columns, each of which
// reads as its feature asks.
func FuzzReadCSV(f *testing.F) {
	f.Add("id,age,gender,country,signup_date,last_login,account_status,monthly_spend\n1,31,f,DE,2024-01-02,2025-01-01,churned,12.5\n")
	f.Add("account_status,age,gender,country,signup_date,last_login,monthly_spend\nactive,,,,,,\n")
	f.Add("account_status,age,gender,country,signup_date,last_login,monthly_spend\nactive,abc,,,2024-13-01,,-1\n")
	f.Add("account_status\n\"unterminated\n")
	decl, _, _, _, err := declaration("", "users", trainSettings{})
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "in.csv")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		records, err := readCSV(path, decl, nil)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		for _, r := range records {
			for c, v := range r.(model.Map) {
				if !strings.Contains(strings.Join(decl.Columns(), ","), c) || v == "" {
					t.Errorf("record %v: column %s = %q", r, c, v)
				}
			}
			for _, feat := range decl.Features {
				if v, ok := r.(model.Map)[feat.Column]; ok && feat.Kind == model.KindNumeric {
					if _, isNum := model.Number(v); !isNum && feat.Transform != model.DaysSince {
						t.Errorf("record %v: %s = %q reads as no number", r, feat.Column, v)
					}
				}
			}
		}
	})
}
