// Package embedded starts the pipeline's infrastructure inside this machine:
// an in-process Kafka broker (franz-go's kfake; plaintext, or with
// KafkaOptions.Security TLS only, SASL SCRAM-SHA-512 and the pipeline's
// ACLs), an in-process schema
// registry (franz-go's srfake; datamill enforces compatibility itself), a
// throwaway PostgreSQL cluster made with the machine's initdb and postgres
// (TLS and SCRAM passwords only, pgaudit when installed),
// and an in-process S3 server for the lake (gofakes3, signed requests only,
// bodies encrypted at rest).
//
// `datamill dev` uses it to give newcomers a working stack with no install,
// and the test kit uses it so tests run against real protocol servers.
// Everything listens on loopback only.
package embedded
