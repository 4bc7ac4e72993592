#!/bin/sh
# Run by the postgres image on the first start of an empty volume (as the
# superuser POSTGRES_USER), after 05-roles.sh: gives the read-only role
# datamill_reader of Grafana's dashboards its default and its grants, from
# the SQL of READER_SQL (compose mounts deploy/postgres/reader.sql there).
# Its password is 05-roles.sh's, from the secret db_reader_password; a
# READER_PASSWORD, when set, replaces it (a cluster without those secrets).
# On a volume made before, run it once by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-reader.sh
set -eu
export PGUSER="${POSTGRES_USER:-postgres}" PGDATABASE="${POSTGRES_DB:-datamill}"
psql -v ON_ERROR_STOP=1 -f "${READER_SQL:-/etc/datamill/reader.sql}"
if [ -n "${READER_PASSWORD:-}" ]; then
	psql -v ON_ERROR_STOP=1 -v password="$READER_PASSWORD" <<'SQL'
set password_encryption = 'scram-sha-256';
alter role datamill_reader password :'password';
SQL
fi
