package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
)

// cliKafka is the Kafka configuration of a command, read from the services'
// KAFKA_* variables in env (TLS, SASL and KAFKA_SASL_PASSWORD_FILE
// included), so that every command reaches a secure broker as the services
// do. KAFKA_BROKERS defaults to the compose stack's broker and
// KAFKA_TOPIC_PARTITIONS, for a topic a command creates, to 1.
func cliKafka(env map[string]string) (kafka.Config, error) {
	environ := []string{"KAFKA_BROKERS=" + defaultBrokers, "KAFKA_TOPIC_PARTITIONS=1"}
	for k, v := range env {
		if strings.HasPrefix(k, "KAFKA_") && v != "" {
			environ = append(environ, k+"="+v)
		}
	}
	cfg, err := config.Parse[kafka.Config](environ)
	if err != nil {
		return kafka.Config{}, fmt.Errorf("kafka: %w", err)
	}
	return cfg, nil
}

// cliRegistry is the schema registry client of a command, configured from
// the services' SCHEMA_REGISTRY_* variables in env (basic auth and
// SCHEMA_REGISTRY_PASSWORD_FILE included). SCHEMA_REGISTRY_URL defaults to
// that of datamill dev.
func cliRegistry(env map[string]string) (*serde.Registry, error) {
	environ := []string{"SCHEMA_REGISTRY_URL=" + defaultRegistry}
	for k, v := range env {
		if strings.HasPrefix(k, "SCHEMA_REGISTRY_") && v != "" {
			environ = append(environ, k+"="+v)
		}
	}
	cfg, err := config.Parse[serde.Config](environ)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	return serde.NewRegistry(cfg)
}

// kafkaVars are the KAFKA_* variables of env as KEY=value, sorted, for a
// child process; with a password file they empty KAFKA_SASL_PASSWORD, so
// that one in the shell does not clash with the file.
func kafkaVars(env map[string]string) []string {
	var vars []string
	for k, v := range env {
		if strings.HasPrefix(k, "KAFKA_") {
			vars = append(vars, k+"="+v)
		}
	}
	if env["KAFKA_SASL_PASSWORD_FILE"] != "" && env["KAFKA_SASL_PASSWORD"] == "" {
		vars = append(vars, "KAFKA_SASL_PASSWORD=")
	}
	slices.Sort(vars)
	return vars
}
