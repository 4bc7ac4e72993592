// Package testkit starts the real servers tests run against and stops them
// after the test: a Kafka broker (franz-go's in-process kfake, or the
// broker named by KAFKA_BROKERS for the real-broker tier), a schema registry
// (srfake) and PostgreSQL (a throwaway cluster made with the machine's
// initdb and postgres).
//
// Locally a test whose server cannot be had is skipped with the reason; in
// CI (CI=true) it fails, so a missing server never passes silently.
package testkit
