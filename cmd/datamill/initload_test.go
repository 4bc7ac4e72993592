package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/retry"
)

// The walk-through of README's "Add your own dataset": `datamill init`
// drafts a declaration from a CSV it has never seen, and the draft, as it
// is, loads the file through the running pipeline — the extractor, the
// cleaner and the loader, which creates the table — with one row per
// distinct key, though some keys were sent twice.
func TestInitDraftLoadsTheFileWithARowPerKey(t *testing.T) {
	ds := "orders_" + strings.ToLower(rand.Text()[:8])
	orders, err := os.ReadFile(ordersCSV)
	if err != nil {
		t.Fatal(err)
	}
	header, rows := readCSV(t, ordersCSV)
	// Four orders again, changed: re-sends of keys the file already has.
	resent := "ORD-1001,Jonas Berg,DE,90.00,3,2025-11-14,true,call before,yes\n" +
		"ORD-1002,Ines Duarte,ES,136.29,4,2025-01-19,false,,yes\n" +
		"ORD-1003,Theo Martin,FR,111.24,2,08/02/2025,false,,no\n" +
		"ORD-1004,Sofia Rossi,DE,\"150,00\",2,2025-11-21,true,gift wrap,no\n"
	inbox := t.TempDir()
	file := filepath.Join(inbox, "orders.csv")
	if err := os.WriteFile(file, append(orders, resent...), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(header) == 0 || len(rows) != 40 {
		t.Fatalf("%s: %d rows, want the 40 this test counts on", ordersCSV, len(rows))
	}
	out := t.TempDir()
	initDraft(t, ds, file, out)

	// No EXTRACTOR_FILES: the draft's files source is the file it was
	// drafted from.
	withStack(t, []string{
		"DATASETS=" + ds, "DATASETS_DIR=" + out, "EXTRACTOR_SCAN_INTERVAL=100ms",
	}, func(ctx context.Context, p *pipeline, d *devStack) {
		conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var n, updated int
		deadline := time.Now().Add(2 * time.Minute)
		for {
			err := conn.QueryRow(ctx, `select count(*), count(*) filter (where event_id <> created_event_id) from `+pgx.Identifier{ds}.Sanitize()).Scan(&n, &updated)
			if err == nil && n == 40 && updated == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("table %s: %d rows, %d of them updated by a re-send (%v); want 40 rows, one per distinct key, 4 updated", ds, n, updated, err)
			}
			if !retry.Sleep(ctx, 100*time.Millisecond) {
				t.Fatal(ctx.Err())
			}
		}
		raw := p.read(ctx, "raw."+ds, nil)
		dlq := p.read(ctx, "dlq."+ds, nil)
		clean := p.read(ctx, "clean."+ds, nil)
		if raw.records != 44 || dlq.records != 0 || clean.records != 44 {
			t.Errorf("raw %d, clean %d, dead letters %d; want every one of the file's 44 records clean", raw.records, clean.records, dlq.records)
		}
	})
}
