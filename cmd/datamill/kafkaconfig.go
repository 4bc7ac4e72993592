package main

import (
	"fmt"
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
