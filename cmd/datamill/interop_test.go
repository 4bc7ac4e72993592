package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
)

// python is Debian's interpreter, whose python3-confluent-kafka and
// python3-avro packages the interoperability test uses.
const python = "/usr/bin/python3"

// needPython skips the test when Debian's Python lacks modules (a
// comma-separated import list), which apt's packages provide, except in
// CI, where .ci/run installs them and their absence is a failure.
func needPython(t *testing.T, modules, packages string) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import "+modules).CombinedOutput()
	if err == nil {
		return
	}
	testkit.Unavailable(t, fmt.Sprintf("%s cannot import %s (apt-get install %s): %v %s", python, modules, packages, err, out))
}

// TestThirdPartyAvroClientInteroperates publishes users with Confluent's
// Python AvroProducer through the registry into raw.users, follows them
// into PostgreSQL, and reads clean.users back with its AvroConsumer.
func TestThirdPartyAvroClientInteroperates(t *testing.T) {
	needPython(t, "confluent_kafka.avro", "python3-confluent-kafka python3-avro python3-requests")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "cmd", "datamill", "testdata", "avro_interop.py")
	const users = 40
	withPlaintextStack(t, func(ctx context.Context, p *pipeline, _ *devStack) {
		pyRun := func(args ...string) []byte {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, append([]string{script}, args...)...)
			cmd.Env = append(os.Environ(), testkit.KafkaEnv(p.kcfg)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", filepath.Base(script), args[0], err, stderr.String())
			}
			return out
		}
		pyRun("produce", p.eps["KAFKA_BROKERS"], p.eps["SCHEMA_REGISTRY_URL"], filepath.Join(root, "schemas", "avro", "users", "raw.avsc"), fmt.Sprint(users))

		// In PostgreSQL, cleaned.
		conn, err := pgx.Connect(ctx, p.eps["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		stored := map[string]string{}
		deadline := time.Now().Add(time.Minute)
		for len(stored) < users {
			if time.Now().After(deadline) {
				t.Fatalf("%d of the %d users reached PostgreSQL within a minute", len(stored), users)
			}
			time.Sleep(100 * time.Millisecond)
			rows, err := conn.Query(ctx, `select id::text, concat_ws('|', gender, country, email, monthly_spend, source) from users`)
			if err != nil {
				t.Fatal(err)
			}
			var id, v string
			if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { stored[id] = v; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]string{
			"1": "male|DE|user1@example.org|1.50|python-confluent-kafka",
			"4": "male|FR|user4@example.org|4.50|python-confluent-kafka",
			"6": "female|IT|user6@example.org|6.50|python-confluent-kafka",
			"7": "male|ES|user7@example.org|7.50|python-confluent-kafka",
		}
		for id, w := range want {
			if stored[id] != w {
				t.Errorf("user %s stored as %q, want %q", id, stored[id], w)
			}
		}
		var dead []string
		p.read(ctx, "dlq.users", func(r *kgo.Record) { dead = append(dead, kafka.Header(r, stage.HeaderReason)) })
		if fmt.Sprint(dead) != "[id: missing]" {
			t.Errorf("dead letters %q, want the user without an id", dead)
		}

		// Read back by the Python AvroConsumer, the same as in the table.
		out := pyRun("consume", p.eps["KAFKA_BROKERS"], p.eps["SCHEMA_REGISTRY_URL"], "clean.users", fmt.Sprint(users), "interop-test")
		sc := bufio.NewScanner(bytes.NewReader(out))
		read := 0
		for sc.Scan() {
			var c struct {
				ID           int64   `json:"id"`
				Gender       *string `json:"gender"`
				Country      *string `json:"country"`
				Email        *string `json:"email"`
				MonthlySpend *string `json:"monthly_spend"`
				Source       *string `json:"source"`
				EventID      string  `json:"event_id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatalf("consumer printed %q: %v", sc.Text(), err)
			}
			read++
			got := strings.Join([]string{deref(c.Gender), deref(c.Country), deref(c.Email), deref(c.MonthlySpend), deref(c.Source)}, "|")
			if id := fmt.Sprint(c.ID); got != stored[id] || c.EventID != "python-"+id {
				t.Errorf("AvroConsumer read user %s as %q (event %s), PostgreSQL holds %q", id, got, c.EventID, stored[id])
			}
		}
		if read != users {
			t.Errorf("AvroConsumer read %d records, want %d", read, users)
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
