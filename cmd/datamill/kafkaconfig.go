package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
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
