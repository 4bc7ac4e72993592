// Package testkit starts the real servers tests run against and cleans up
// after the test:
//
//   - Kafka: franz-go's in-process kfake broker per test, secure (TLS,
//     SCRAM-SHA-512, the pipeline's ACLs: SecureKafka), or the broker
//     named by KAFKA_BROKERS and the admin's KAFKA_* variables for the
//     real-broker tier (see scripts/kafka). Kafka gives the admin's
//     settings, Stack the admin's variables, As a service's; PlaintextKafka
//     is the opt-out for tests about plaintext itself, and SecureRealKafka
//     a secure Apache Kafka of the test's own (broker.sh start --secure);
//   - a schema registry: franz-go's in-process srfake;
//   - PostgreSQL: Postgres gives each test a fresh database in one throwaway
//     cluster per test binary, made with the machine's initdb and postgres
//     and killed with the binary; PostgresCluster gives a test a cluster of
//     its own, to stop or restart.
//
// Locally a test whose server cannot be had (no PostgreSQL binaries) is
// skipped with the reason and the install hint; in CI (CI=true) it fails,
// so a missing server never passes silently.
package testkit
