-- Every eco sample a service published: what one process used over one
-- window. A sample read twice (a redelivery) is stored once.
create table eco_samples (
    instance              text not null,
    window_start          timestamptz not null,
    window_end            timestamptz not null,
    run_id                text not null,
    service               text not null,
    stage                 text not null,
    dataset               text,
    wall_s                double precision not null,
    cpu_s                 double precision not null,
    mem_reserved_bytes    bigint not null,
    mem_source            text not null,
    vcpus                 double precision not null,
    records_in            bigint not null,
    records_out           bigint not null,
    records_dead_lettered bigint not null,
    records_duplicates    bigint not null,
    training_iterations   bigint,
    primary key (instance, window_start)
);

-- What each stage of each run used, summed over its samples; the memory
-- term is Σ wall seconds × GB reserved.
create table eco_stage_totals (
    run_id                text not null,
    stage                 text not null,
    samples               bigint not null,
    cpu_s                 double precision not null,
    wall_s                double precision not null,
    mem_gb_s              double precision not null,
    records_in            bigint not null,
    records_out           bigint not null,
    records_dead_lettered bigint not null,
    records_duplicates    bigint not null,
    first_at              timestamptz not null,
    last_at               timestamptz not null,
    primary key (run_id, stage)
);
