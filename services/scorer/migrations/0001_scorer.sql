-- The scorer's own tables. Before migrations, the scorer created them
-- when it first needed them: "if not exists" keeps those.

-- The scorer's drift measurements: the PSI of each feature of a
-- dataset's model version over a window of `records` scored records,
-- measured at measured_at.
create table if not exists scorer_drift (
    id            bigint generated always as identity primary key,
    dataset       text not null,
    model_version text not null,
    feature       text not null,
    psi           double precision not null,
    records       integer not null,
    measured_at   timestamptz not null
);
create index if not exists scorer_drift_dataset_measured_at on scorer_drift (dataset, measured_at);

-- The scorer's model registry: every model it trained by itself,
-- promoted or not, with its held-out metrics, the data it was trained on
-- (rows and fingerprint) and the model it was compared with.
create table if not exists scorer_models (
    id               bigint generated always as identity primary key,
    dataset          text not null,
    name             text not null,
    version          text not null,
    kind             text not null,
    trained_at       timestamptz not null,
    rows             integer not null,
    data_fingerprint text not null,
    test_metrics     jsonb not null,
    baseline_version text,
    baseline_metrics jsonb,
    promoted         boolean not null,
    reason           text not null,
    artefact         text,
    unique (name, version)
);
