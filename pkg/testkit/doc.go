// Package testkit starts the real servers tests run against and cleans up
// after the test:
//
//   - Kafka: franz-go's in-process kfake broker per test, or the brokers
//     named by KAFKA_BROKERS for the real-broker tier (see scripts/kafka);
//     SecureKafka, a broker with TLS, SCRAM-SHA-512 and the pipeline's ACLs,
//     and SecureRealKafka, the same on Apache Kafka (broker.sh start
//     --secure);
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
