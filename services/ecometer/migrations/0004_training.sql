-- Training: the CPU seconds of each epoch a sample's process trained, and
-- the iterations each stage of a run trained, summed.
alter table eco_samples add column cpu_s_per_epoch double precision[] not null default '{}';
alter table eco_stage_totals add column training_iterations bigint not null default 0;
