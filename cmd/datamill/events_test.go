package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
)

// An event is an arrival, not a content: a user's age goes 31 → 32 → 31,
// sent over HTTP (user 1) and in a file rewritten each time (user 2), and
// each time the newest value is the one in the table, with no dead letter.
// A last rewrite of the file that adds user 3 before user 2 makes user 2's
// unchanged record a new event of unchanged content: the cleaner drops it
// as a duplicate, and the counts reconcile.
func TestContentSentAgainAfterAChangeIsTheNewestAndWins(t *testing.T) {
	inbox := t.TempDir()
	file := filepath.Join(inbox, "users.csv")
	withStack(t, []string{"EXTRACTOR_FILES=users=" + inbox, "EXTRACTOR_SCAN_INTERVAL=100ms"}, func(ctx context.Context, p *pipeline, d *devStack) {
		conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		ages := func() string {
			t.Helper()
			var s string
			if err := conn.QueryRow(ctx, `select coalesce(string_agg(id || ':' || coalesce(age::text, '-'), ' ' order by id), '') from users`).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		rawRecords := 0
		settle := func(want string) {
			t.Helper()
			deadline := time.Now().Add(time.Minute)
			for p.read(ctx, "raw.users", nil).records < rawRecords {
				if time.Now().After(deadline) {
					t.Fatalf("raw.users holds fewer than %d records after a minute", rawRecords)
				}
				time.Sleep(50 * time.Millisecond)
			}
			raw := p.read(ctx, "raw.users", nil)
			p.waitCommitted(ctx, "datamill-cleaner-users", "raw.users", raw.next)
			clean := p.read(ctx, "clean.users", nil)
			p.waitCommitted(ctx, "datamill-loader-users", "clean.users", clean.next)
			if got := ages(); got != want {
				t.Errorf("after %d raw records, the table holds %s, want %s", raw.records, got, want)
			}
		}
		// writeFile puts a new version of the file in place whole.
		writeFile := func(csv string) {
			t.Helper()
			tmp := filepath.Join(inbox, ".users.csv")
			if err := os.WriteFile(tmp, []byte(csv), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, file); err != nil {
				t.Fatal(err)
			}
		}

		for _, age := range []int{31, 32, 31} {
			if out, err := postEvents(ctx, p.ingest, fmt.Sprintf(`{"id":"1","age":"%d"}`, age)); err != nil {
				t.Fatalf("post age %d: %v: %s", age, err, out)
			}
			writeFile(fmt.Sprintf("id,age\n2,%d\n", age))
			rawRecords += 2
			settle(fmt.Sprintf("1:%d 2:%d", age, age))
		}
		writeFile("id,age\n3,50\n2,31\n")
		rawRecords += 2
		settle("1:31 2:31 3:50")

		var dead []string
		p.read(ctx, "dlq.users", func(r *kgo.Record) {
			dead = append(dead, kafka.Header(r, stage.HeaderStage)+": "+kafka.Header(r, stage.HeaderReason))
		})
		if len(dead) > 0 {
			t.Errorf("dead letters: %s", strings.Join(dead, "; "))
		}
		raw, clean := p.read(ctx, "raw.users", nil), p.read(ctx, "clean.users", nil)
		cleaner := p.scrapeAll(ctx, "cleaner")
		if raw.records != 8 || clean.records != 7 || cleaner.duplicates != 1 {
			t.Errorf("raw %d, clean %d, duplicates %d; want 8 = 7 + 1, user 2's unchanged record the duplicate", raw.records, clean.records, cleaner.duplicates)
		}
	})
}
