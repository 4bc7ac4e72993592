package main

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/extractor/internal/publish"
)

// A record larger than the broker takes, in the middle of a file of a
// watched directory, is one dead letter naming its file, line, size and
// the limit, keeping a bounded part of it; the file's other records and the
// file after it flow.
func TestAnOversizedRecordIsADeadLetterAndTheDirectoryGoesOn(t *testing.T) {
	dir := t.TempDir()
	big := fmt.Sprintf(`{"id":"2","city":"%s"}`, strings.Repeat("x", 2<<20))
	write(t, filepath.Join(dir, "a.ndjson"), "{\"id\":\"1\"}\n"+big+"\n{\"id\":\"3\"}\n")
	write(t, filepath.Join(dir, "b.csv"), "id,age\n4,40\n")
	_, k, registry := startExtractor(t, "EXTRACTOR_FILES=users="+dir, "EXTRACTOR_SCAN_INTERVAL=100ms")

	recs := testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 3)
	if ids := rawIDs(t, registry, recs); fmt.Sprint(slices.Sorted(slices.Values(ids))) != "[1 3 4]" {
		t.Errorf("raw ids %v, want [1 3 4]", ids)
	}
	dead := testkit.Consume(t, k.ClientConfig(kafka.Admin), "dlq.users", 1)[0]
	a := filepath.Join(dir, "a.ndjson")
	reason := kafka.Header(dead, stage.HeaderReason)
	if src, line := kafka.Header(dead, stage.HeaderSourceTopic), kafka.Header(dead, stage.HeaderSourceOffset); src != "file:"+a || line != "2" ||
		!strings.HasPrefix(reason, "line 2: record too large") || !strings.Contains(reason, "takes at most 1000012") {
		t.Errorf("dead letter from %s line %s, reason %q; want line 2 of %s, too large, with the limit", src, line, reason, a)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[schemas.DeadLetter](t.Context(), reg, "dlq.users", schemas.MustSchema("deadletter"))
	if err != nil {
		t.Fatal(err)
	}
	var dl schemas.DeadLetter
	if err := codec.Decode(dead.Value, &dl); err != nil {
		t.Fatal(err)
	}
	if len(dl.Value) != publish.MaxDeadBytes || !bytes.HasPrefix(dl.Value, []byte(`{"city":"xxx`)) {
		t.Errorf("the dead letter keeps %d bytes starting %.20q, want the first %d of the record", len(dl.Value), dl.Value, publish.MaxDeadBytes)
	}
}

// A body with records that lack the key is refused whole, naming them; a
// record larger than the broker takes is refused with 413, not 503: sending
// it again would not help.
func TestIngestRefusesKeylessAndOversizedRecords(t *testing.T) {
	base, k, _ := startExtractor(t)
	url := base.ingest + "/v1/datasets/users/events"
	var many strings.Builder
	for i := range 14 {
		if i%7 == 0 {
			fmt.Fprintf(&many, "{\"id\":\"%d\"}\n", i)
		} else {
			fmt.Fprintf(&many, "{\"age\":\"%d\"}\n", i)
		}
	}
	tests := map[string]struct {
		body    string
		status  int
		message []string
	}{
		"keyless records": {
			"{\"id\":\"1\"}\n{\"age\":\"31\"}\n{\"id\":\" \"}\n", 400,
			[]string{`2 of 3 records lack the key field "id": line 2, line 3`, "nothing was published"},
		},
		"many keyless records": {
			many.String(), 400,
			[]string{`12 of 14 records lack the key field "id": line 2, line 3, line 4, line 5, line 6, line 7, line 9, line 10, line 11, line 12 and 2 more`},
		},
		"a record too large": {
			`[{"id":"1"},{"id":"2","city":"` + strings.Repeat("x", 2<<20) + `"}]`, 413,
			[]string{"item 2: record too large for the broker", "raw.users takes at most 1000012", "nothing was published"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := post(t, url, "", tc.body)
			msg, _ := body["error"].(string)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, msg, tc.status)
			}
			for _, m := range tc.message {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q, want it to say %q", msg, m)
				}
			}
		})
	}
	// Nothing of the refused bodies was published: the next one is the
	// first record of raw.users.
	if status, body := post(t, url, "", `{"id":"9"}`); status != http.StatusAccepted {
		t.Fatalf("status %d (%v), want 202", status, body)
	}
	testkit.Consume(t, k.ClientConfig(kafka.Admin), "raw.users", 1)
}
