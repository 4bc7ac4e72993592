#!/bin/sh
# The postgres container's entrypoint (docker-compose.yml): the image's own
# docker-entrypoint.sh, with TLS on (the certificate `datamill secrets`
# issued from the stack's CA for the host postgres), SCRAM passwords and
# deploy/postgres/pg_hba.conf, which accepts TCP connections over TLS only.
#
# PostgreSQL refuses a private key that others may read. Compose mounts a
# file secret with its mode on the host (0644, in the 0700 secrets
# directory), so the server reads a 0600 copy of its own, on the
# container's tmpfs, made again at every start.
#
# pgaudit (in the image, deploy/postgres/Dockerfile) logs DDL and role
# changes, without the statements' parameters; a failed statement is not
# logged, as it may set a role's password, which pgaudit redacts only in
# the statements that succeed.
set -eu
tls=/var/run/postgresql/tls
mkdir -p "$tls"
chmod 0700 "$tls"
cp /run/secrets/postgres-key.pem "$tls/server.key"
chmod 0600 "$tls/server.key"
exec docker-entrypoint.sh "$@" \
	-c ssl=on \
	-c ssl_cert_file=/run/secrets/postgres.pem \
	-c ssl_key_file="$tls/server.key" \
	-c ssl_min_protocol_version=TLSv1.2 \
	-c password_encryption=scram-sha-256 \
	-c hba_file=/etc/datamill/postgres/pg_hba.conf \
	-c shared_preload_libraries=pgaudit \
	-c pgaudit.log=ddl,role \
	-c pgaudit.log_parameter=off \
	-c log_min_error_statement=panic
