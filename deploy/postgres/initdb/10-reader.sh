#!/bin/sh
# Run by the postgres image on the first start of an empty volume (as the
# superuser POSTGRES_USER): creates the read-only role datamill_reader of
# Grafana's jobs dashboard with the password READER_PASSWORD, from the SQL
# of READER_SQL (compose mounts deploy/postgres/reader.sql there). On a
# volume made before, run it once by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-reader.sh
set -eu
export PGUSER="${POSTGRES_USER:-datamill}" PGDATABASE="${POSTGRES_DB:-datamill}"
psql -v ON_ERROR_STOP=1 -f "${READER_SQL:-/etc/datamill/reader.sql}"
psql -v ON_ERROR_STOP=1 -v password="$READER_PASSWORD" <<'SQL'
alter role datamill_reader password :'password';
SQL
