#!/bin/bash
# The PostgreSQL stand-in's entrypoint (deploy/ci/postgres/Dockerfile),
# with the contract of the official image's: `docker-entrypoint.sh postgres
# [-c name=value]...` makes the cluster on the first start of an empty
# PGDATA (POSTGRES_USER, the password of POSTGRES_PASSWORD_FILE or
# POSTGRES_PASSWORD, SCRAM for it), creates POSTGRES_DB, runs the files of
# /docker-entrypoint-initdb.d in name order on a server listening on its
# socket alone (*.sh executed, or sourced when not executable; *.sql through
# psql), stops that server, and then runs the command as given. It runs as
# the user compose gives, postgres here.
set -euo pipefail

if [ "${1:-}" != postgres ]; then
	exec "$@"
fi

user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
	POSTGRES_PASSWORD=$(<"$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE must be set}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	chmod 0700 "$PGDATA"
	initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 ${POSTGRES_INITDB_ARGS:-}
	# The server takes clients from every address; pg_hba.conf says how.
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	# The command's settings, on the socket alone.
	shift
	pg_ctl -D "$PGDATA" -w start -o "$(printf '%q ' "$@") -c listen_addresses=''"
	export PGUSER="$user" PGPASSWORD="$POSTGRES_PASSWORD"
	psql -v ON_ERROR_STOP=1 --dbname=postgres -v db="$db" <<'SQL'
select format('create database %I', :'db') where not exists (select from pg_database where datname = :'db')
\gexec
SQL
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh)
			echo "docker-entrypoint.sh: running $f"
			if [ -x "$f" ]; then "$f"; else . "$f"; fi
			;;
		*.sql)
			echo "docker-entrypoint.sh: running $f"
			psql -v ON_ERROR_STOP=1 --dbname="$db" -f "$f"
			;;
		*) [ -e "$f" ] && echo "docker-entrypoint.sh: ignoring $f" ;;
		esac
	done
	unset PGPASSWORD
	pg_ctl -D "$PGDATA" -m fast -w stop
	set -- postgres "$@"
fi
exec "$@"
