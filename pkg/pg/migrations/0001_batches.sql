-- The audit of the batches written: one row per input partition of every
-- batch a stage wrote to the database (the loader, the scorer, the
-- ecometer), inserted in the batch's own transaction, so that a row is
-- here exactly when its batch's writes are. who is the role that wrote
-- it, at when its transaction began. Append-only: UPDATE, DELETE and TRUNCATE are refused by triggers,
-- which fire for every role, the table's owner and superusers included.
create table datamill_batches (
    id           bigint      generated always as identity primary key,
    at           timestamptz not null default now(),
    who          text        not null default current_user,
    stage        text        not null,
    topic        text        not null,
    partition    integer     not null,
    first_offset bigint      not null,
    last_offset  bigint      not null,
    rows         integer     not null,
    check (last_offset >= first_offset),
    check (rows > 0)
);

create index datamill_batches_topic on datamill_batches (topic, partition, first_offset);

create function datamill_batches_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'datamill_batches is append-only: % refused', tg_op
        using errcode = 'insufficient_privilege';
end
$$;

-- who and at are the inserting role's and transaction's, whatever the
-- statement says.
create function datamill_batches_stamp() returns trigger language plpgsql as $$
begin
    new.who := current_user;
    new.at := now();
    return new;
end
$$;

create trigger datamill_batches_stamp before insert on datamill_batches
    for each row execute function datamill_batches_stamp();

-- Statement triggers: they fire even when no row matches.
create trigger datamill_batches_no_update_delete before update or delete on datamill_batches
    for each statement execute function datamill_batches_append_only();
create trigger datamill_batches_no_truncate before truncate on datamill_batches
    for each statement execute function datamill_batches_append_only();
