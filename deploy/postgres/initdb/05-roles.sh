#!/bin/sh
# Run by the postgres image on the first start of an empty volume, as the
# superuser (POSTGRES_USER, over the container's socket): datamill's roles,
# with the passwords of the secrets `datamill secrets` made
# (/run/secrets/db_<role>_password), and what they may do with the
# database and its public schema. The grants on tables are the migration
# owner's, made when it creates them; this script makes none.
#
#   datamill_owner     the migration owner: creates (and so owns) every table
#   datamill_loader    the loader; TEMP for its staging tables
#   datamill_scorer    the scorer
#   datamill_ecometer  the ecometer
#   datamill_lake      the lake sink
#   datamill_reader    Grafana, pgAdmin and the report: SELECT only
#
# Every role logs in with a SCRAM-SHA-256 password and is no superuser,
# creates no database nor role. PUBLIC loses CONNECT and TEMP on the
# database and everything on the public schema; only the owner may create
# there. Running it again changes nothing but the passwords, set anew from
# the files: after rotating one (README, "Security"), run it by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/05-roles.sh
set -eu
export PGUSER="${POSTGRES_USER:-postgres}" PGDATABASE="${POSTGRES_DB:-datamill}"
secrets="${DATAMILL_SECRETS:-/run/secrets}"
password() { tr -d '\n' <"$secrets/db_$1_password"; }

psql -v ON_ERROR_STOP=1 \
	-v owner="$(password owner)" \
	-v loader="$(password loader)" \
	-v scorer="$(password scorer)" \
	-v ecometer="$(password ecometer)" \
	-v lake="$(password lake)" \
	-v reader="$(password reader)" <<'SQL'
set password_encryption = 'scram-sha-256';

select format('create role %I', r)
from unnest(array['datamill_owner', 'datamill_loader', 'datamill_scorer',
                  'datamill_ecometer', 'datamill_lake', 'datamill_reader']) r
where not exists (select from pg_roles where rolname = r)
\gexec

alter role datamill_owner    login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'owner';
alter role datamill_loader   login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'loader';
alter role datamill_scorer   login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'scorer';
alter role datamill_ecometer login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'ecometer';
alter role datamill_lake     login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'lake';
alter role datamill_reader   login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'reader';

-- The database: CONNECT for datamill's roles alone, TEMP for the loader's
-- staging tables alone.
select format('revoke all on database %I from public', current_database())
\gexec
select format('grant connect on database %I to datamill_owner, datamill_loader, datamill_scorer, datamill_ecometer, datamill_lake, datamill_reader', current_database())
\gexec
select format('grant temporary on database %I to datamill_loader', current_database())
\gexec

-- The public schema: the owner creates, the others use what it grants.
revoke all on schema public from public;
grant usage, create on schema public to datamill_owner;
grant usage on schema public to datamill_loader, datamill_scorer, datamill_ecometer, datamill_lake, datamill_reader;
SQL
