-- Storage: terabyte-hours of the bytes a sample's process kept stored
-- (stored bytes × wall time of the window), by media.
alter table eco_samples add column stored_ssd_tb_h double precision not null default 0;
alter table eco_samples add column stored_hdd_tb_h double precision not null default 0;
alter table eco_stage_totals add column stored_ssd_tb_h double precision not null default 0;
alter table eco_stage_totals add column stored_hdd_tb_h double precision not null default 0;
