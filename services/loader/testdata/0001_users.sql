-- The users table: the seed's attributes plus lineage. event_id,
-- ingested_at, source and content_hash are those of the event whose content
-- the row holds; the loader applies an event only when it is newer (by
-- ingested_at, then event_id) and its content differs. created_event_id is
-- the event that inserted the row.
create table users (
    id               bigint primary key,
    age              integer check (age between 0 and 150),
    gender           text,
    country          text check (country ~ '^[A-Z]{2}$'),
    city             text,
    email            text,
    signup_date      date,
    last_login       date,
    account_status   text,
    monthly_spend    numeric(12, 2) check (monthly_spend >= 0),
    quality_flags    text[] not null default '{}',
    event_id         text not null,
    source           text,
    ingested_at      timestamptz not null,
    content_hash     text not null,
    created_event_id text not null,
    updated_at       timestamptz not null default now()
);

-- One prediction per scored event; the scorer writes them.
create table predictions (
    id            bigint generated always as identity primary key,
    user_id       bigint not null references users (id),
    prediction    integer not null check (prediction in (0, 1)),
    probability   double precision not null check (probability between 0 and 1),
    model_version text not null,
    event_id      text not null unique,
    created_at    timestamptz not null default now()
);
create index predictions_user_id on predictions (user_id);
