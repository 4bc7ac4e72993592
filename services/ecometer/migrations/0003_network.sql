-- Network: gigabytes a sample's process moved (read plus written), by
-- scope, so that reports price them as the /metrics do. Same-host and
-- same-site traffic costs 0 kWh/GB (its energy is in the CPU seconds) but
-- is kept, to show what moved.
alter table eco_samples add column net_same_host_gb double precision not null default 0;
alter table eco_samples add column net_same_site_gb double precision not null default 0;
alter table eco_samples add column net_cross_region_gb double precision not null default 0;
alter table eco_samples add column net_internet_gb double precision not null default 0;
alter table eco_stage_totals add column net_same_host_gb double precision not null default 0;
alter table eco_stage_totals add column net_same_site_gb double precision not null default 0;
alter table eco_stage_totals add column net_cross_region_gb double precision not null default 0;
alter table eco_stage_totals add column net_internet_gb double precision not null default 0;
