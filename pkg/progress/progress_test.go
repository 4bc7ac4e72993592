package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestIsTerminal(t *testing.T) {
	var b bytes.Buffer
	if IsTerminal(&b) {
		t.Error("a buffer is no terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is no terminal")
	}
}

func TestBarLogsWhenNotOnATerminal(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	var out bytes.Buffer
	b := New(&out, zap.New(core), "users.csv", 200, time.Nanosecond)
	b.Set(50, 10)
	b.Set(100, 20)
	b.Finish()
	if out.Len() != 0 {
		t.Errorf("drew %q on a non-terminal", out.String())
	}
	entries := logs.AllUntimed()
	if len(entries) != 3 || entries[2].Message != "done" {
		t.Fatalf("logged %v, want two progress lines and done", entries)
	}
	fields := entries[1].ContextMap()
	if fields["percent"] != 50.0 || fields["records"] != int64(20) || fields["what"] != "users.csv" {
		t.Errorf("second line %v, want 50 %% and 20 records of users.csv", fields)
	}
}

func TestBarDrawsOnATerminal(t *testing.T) {
	// The drawing itself, as a terminal would receive it.
	var out strings.Builder
	b := &Bar{label: "f", total: 4, term: &out, every: 0, start: time.Now()}
	b.Set(1, 3)
	b.Finish()
	if !strings.HasPrefix(out.String(), "\rf [=======                       ]  25% 3 records") || !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("drew %q", out.String())
	}
}

func TestReaderCountsTheBytesRead(t *testing.T) {
	r := NewReader(strings.NewReader("id,name\n1,Ada\n2,Grace\n"))
	buf := make([]byte, 10)
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if r.N() != total {
			t.Fatalf("after %d bytes read, N() = %d", total, r.N())
		}
		if err != nil {
			break
		}
	}
	if total != 22 {
		t.Errorf("read %d bytes of 22", total)
	}
}
