package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
)

// `datamill dev` runs its broker secure by default: it prints the admin's
// variables (the password by its file), a client without them is not let
// in, and the pipeline runs with each service as its own principal, from
// a file produced as the admin to the table the loader fills.
func TestDevRunsItsKafkaSecure(t *testing.T) {
	d := startDev(t, nil, "--kafka-plaintext=false")
	eps := d.endpoints
	for k, want := range map[string]string{"KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": kafka.Admin} {
		if eps[k] != want {
			t.Errorf("dev printed %s=%q, want %q", k, eps[k], want)
		}
	}
	if _, printed := eps["KAFKA_SASL_PASSWORD"]; printed {
		t.Error("dev printed the admin's password; want only the file that holds it")
	}
	for _, file := range []string{eps["KAFKA_TLS_CA_FILE"], eps["KAFKA_SASL_PASSWORD_FILE"]} {
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("dev printed a file it did not write: %v", err)
		}
	}
	if fi, err := os.Stat(eps["KAFKA_SASL_PASSWORD_FILE"]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the admin's password file: %v, %v; want it 0600", fi.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// The brokers alone do not get in.
	open, err := kafka.NewClient(kafka.Config{Brokers: strings.Split(eps["KAFKA_BROKERS"], ",")}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if err := open.Ping(short); err == nil {
		t.Error("a client without TLS and credentials reached dev's broker")
	}
	open.Close()

	csv := filepath.Join(t.TempDir(), "users.csv")
	data := "id,age,gender,country,email,signup_date,monthly_spend\n" +
		"1,30,F,FR,ada@example.org,2023-01-02,12.50\n" +
		"2,40,M,DE,bob@example.org,2023-01-02,3\n" +
		"0,50,M,IT,nobody@example.org,2023-01-02,1\n"
	if err := os.WriteFile(csv, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for k, v := range eps {
		env = append(env, k+"="+v)
	}
	var out strings.Builder
	if err := run(ctx, []string{"produce", "users", csv}, env, &out, &out); err != nil {
		t.Fatalf("produce as the admin: %v: %s", err, out.String())
	}

	// The cleaner (as itself) cleans two and dead-letters one.
	admin, err := cliKafka(eps)
	if err != nil {
		t.Fatal(err)
	}
	for topic, n := range map[string]int{"clean.users": 2, "dlq.users": 1} {
		cl, err := kafka.NewClient(admin, zap.NewNop(), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < n && ctx.Err() == nil {
			got += cl.PollFetches(ctx).NumRecords()
		}
		cl.Close()
		if got != n {
			t.Errorf("%s: %d records, want %d", topic, got, n)
		}
	}

	// The loader (as itself) fills the table.
	conn, err := pgx.Connect(ctx, eps["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows := 0
	for deadline := time.Now().Add(30 * time.Second); rows != 2 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := conn.QueryRow(ctx, "select count(*) from users").Scan(&rows); err != nil {
			t.Fatal(err)
		}
	}
	if rows != 2 {
		t.Errorf("users holds %d rows, want 2", rows)
	}
}
