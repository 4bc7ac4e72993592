-- The lake sink's manifest: filled in by the lake-sink part.
select 1;
