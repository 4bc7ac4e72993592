-- A topic deleted and created again under the same name (a new Kafka
-- topic id) numbers its offsets from 0 again: its objects are told apart
-- from the old topic's by topic_id, the topic id in hex. The sink resumes
-- a partition from the rows of its topic's current id only; rows of
-- another id are history. Rows written before topic ids have ''.
alter table lake_objects add column if not exists topic_id text not null default '';
alter table lake_objects drop constraint lake_objects_pkey;
alter table lake_objects add primary key (topic_id, topic, partition, start_offset);
