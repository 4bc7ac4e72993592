package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
)

// devKafka is the security of dev's in-process broker: the stack's CA and
// a random password for the admin and each service, each in its own file
// (0600) under one directory, so that passwords go to the services and
// the terminal by their files.
type devKafka struct {
	security *embedded.KafkaSecurity
	files    map[string]string // principal → its password's file
	broker   *embedded.Kafka   // set once started
}

// newDevKafka makes the CA (kept across runs) in dir/ca and new passwords
// in dir.
func newDevKafka(dir string) (*devKafka, error) {
	ca, err := embedded.NewCA(filepath.Join(dir, "ca"))
	if err != nil {
		return nil, fmt.Errorf("kafka's CA: %w", err)
	}
	dk := &devKafka{security: &embedded.KafkaSecurity{CA: ca, Passwords: map[string]string{}}, files: map[string]string{}}
	for _, p := range append([]string{kafka.Admin}, kafka.Services()...) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("password of %s: %w", p, err)
		}
		pass := hex.EncodeToString(b[:])
		file := filepath.Join(dir, p+".password")
		if err := os.WriteFile(file, []byte(pass+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("password of %s: %w", p, err)
		}
		dk.files[p] = file
		if p == kafka.Admin {
			dk.security.AdminPassword = pass
		} else {
			dk.security.Passwords[p] = pass
		}
	}
	return dk, nil
}

// env is principal's Kafka variables: TLS with the CA, SCRAM-SHA-512 with
// the password's file.
func (dk *devKafka) env(principal string) []string {
	cfg := dk.broker.ClientConfig(principal)
	return []string{
		"KAFKA_BROKERS=" + strings.Join(cfg.Brokers, ","),
		"KAFKA_TLS=true",
		"KAFKA_TLS_CA_FILE=" + cfg.TLSCAFile,
		"KAFKA_SASL_MECHANISM=" + cfg.SASLMechanism,
		"KAFKA_SASL_USERNAME=" + principal,
		"KAFKA_SASL_PASSWORD_FILE=" + dk.files[principal],
	}
}
