-- The lake's audit trail: every S3 call MinIO's audit webhook posts to the
-- lake service's receiver (LAKE_AUDIT_ADDR), one row per call, the whole
-- entry kept in entry. Append-only: UPDATE, DELETE and TRUNCATE are refused
-- by triggers, which fire for every role, the table's owner and superusers
-- included. (Changing the table itself, as its owner can, is DDL and shows
-- in the server's own log.)
create table lake_audit (
	id          bigint      generated always as identity primary key,
	received_at timestamptz not null default now(),
	-- what MinIO says of the call
	time        timestamptz not null,
	api         text        not null,
	bucket      text        not null default '',
	object      text        not null default '',
	status_code int         not null default 0,
	request_id  text        not null default '',
	remote_host text        not null default '',
	access_key  text        not null default '',
	parent_user text        not null default '',
	entry       jsonb       not null
);

create index lake_audit_object on lake_audit (bucket, object, time);
create index lake_audit_access_key on lake_audit (access_key, time);

create function lake_audit_append_only() returns trigger language plpgsql as $$
begin
	raise exception 'lake_audit is append-only: % refused', tg_op
		using errcode = 'insufficient_privilege';
end
$$;

-- Statement triggers: they fire even when no row matches.
create trigger lake_audit_no_update_delete before update or delete on lake_audit
	for each statement execute function lake_audit_append_only();
create trigger lake_audit_no_truncate before truncate on lake_audit
	for each statement execute function lake_audit_append_only();
