package testkit

import "os"

// SecureRealKafkaWanted reports whether tests that start a secure Apache
// Kafka broker of their own (SecureRealKafka) should run: in the
// real-broker tier (RealBroker), or with DATAMILL_SECURE_REAL_KAFKA=true,
// which make test-security sets to run the security tests alone on a real
// broker, with no other broker started for them.
func SecureRealKafkaWanted() bool {
	return RealBroker() || os.Getenv("DATAMILL_SECURE_REAL_KAFKA") == "true"
}
