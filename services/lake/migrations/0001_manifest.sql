-- The lake sink's manifest: one row per lake object, written after the
-- object's upload and before the offset commit that it covers. The
-- greatest end_offset of a partition is where its next object starts.
create table if not exists lake_objects (
    dataset         text        not null,
    topic           text        not null,
    -- A topic deleted and created again under the same name numbers its
    -- offsets from 0 again: its Kafka topic id (in hex) tells its objects
    -- from the old topic's. The sink resumes a partition from the rows of
    -- its topic's current id only; rows of another id are history.
    topic_id        text        not null,
    partition       integer     not null,
    start_offset    bigint      not null,
    end_offset      bigint      not null,
    key             text        not null,
    records         bigint      not null,
    bytes           bigint      not null,
    -- The Kafka timestamps of the object's first and last records; null
    -- when the sink adopted an object and did not read all of it.
    first_timestamp timestamptz,
    last_timestamp  timestamptz,
    -- adopted: the object was already there (another owner of the
    -- partition, or a run that crashed after its upload) and this row
    -- was written from its metadata.
    adopted         boolean     not null default false,
    written_by      text        not null,
    written_at      timestamptz not null default now(),
    primary key (topic_id, topic, partition, start_offset),
    check (end_offset > start_offset)
);

create index if not exists lake_objects_dataset on lake_objects (dataset);
