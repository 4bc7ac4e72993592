package logging

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestNewJSON(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "cleaner", "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("batch committed")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("output %q is not one JSON line: %v", buf.String(), err)
	}
	if line["service"] != "cleaner" || line["msg"] != "batch committed" {
		t.Errorf("line = %v", line)
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	for _, tc := range []struct{ level, format string }{{"loud", "json"}, {"info", "xml"}} {
		if _, err := New(&bytes.Buffer{}, "x", tc.level, tc.format); err == nil {
			t.Errorf("New(level=%q, format=%q) succeeded, want error", tc.level, tc.format)
		}
	}
}
