-- The loader's ledger: every event it applied to a table, how, and from
-- which input record (topic/partition/offset). A batch replayed after a
-- crash (its database transaction committed, its Kafka transaction not)
-- finds its records here and reports them applied again, exactly as the
-- first time, so that what they changed is published once more instead of
-- being lost to every later stage. The same event arriving again in
-- another record (a source extracted twice) is not a replay: it changes
-- nothing and is not published again.
create table applied_events (
    table_name text not null,
    event_id   text not null,
    action     text not null check (action in ('INSERTED', 'UPDATED')),
    origin     text not null,
    applied_at timestamptz not null default now(),
    primary key (table_name, event_id)
);
