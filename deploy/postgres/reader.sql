-- datamill_reader: the read-only role of Grafana's jobs dashboard. It may
-- read the warehouse views of the public schema (those the loader creates
-- from each dataset's declared views, now and later) and nothing else: no
-- table, no write, no DDL. A view reads its tables with its owner's
-- rights, so SELECT on the views is all the role needs.
--
-- Run once by a superuser (the postgres image runs it on first start, see
-- initdb/10-reader.sh; the password is set there). Running it again
-- changes nothing.

do $$
begin
  if not exists (select from pg_roles where rolname = 'datamill_reader') then
    create role datamill_reader login nosuperuser nocreatedb nocreaterole noinherit noreplication nobypassrls;
  end if;
end
$$;

-- Every transaction of the role is read-only, whatever it asks.
alter role datamill_reader set default_transaction_read_only = on;

do $$
begin
  execute format('grant connect on database %I to datamill_reader', current_database());
end
$$;
grant usage on schema public to datamill_reader;
revoke create on schema public from datamill_reader;

-- The views that exist already.
do $$
declare
  v record;
begin
  for v in select schemaname, viewname from pg_views where schemaname = 'public' loop
    execute format('grant select on %I.%I to datamill_reader', v.schemaname, v.viewname);
  end loop;
end
$$;

-- The views created later: a CREATE VIEW (the loader's CREATE OR REPLACE
-- VIEW, or a view dropped and created again because its columns changed)
-- grants SELECT on it, run as the view's creator, its owner.
create or replace function datamill_grant_views_to_reader() returns event_trigger
language plpgsql as $$
declare
  obj record;
begin
  for obj in select * from pg_event_trigger_ddl_commands()
    where object_type = 'view' and schema_name = 'public'
  loop
    execute format('grant select on %s to datamill_reader', obj.object_identity);
  end loop;
end
$$;
drop event trigger if exists datamill_grant_views_to_reader;
create event trigger datamill_grant_views_to_reader on ddl_command_end
  when tag in ('CREATE VIEW')
  execute function datamill_grant_views_to_reader();
