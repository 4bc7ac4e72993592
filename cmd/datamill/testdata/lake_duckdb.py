"""Reads a dataset of the lake with DuckDB, as an analyst would, and prints
what lake_duckdb_test.go reconciles against the topic, as one JSON object.

Arguments: the S3 endpoint (host:port), whether it speaks TLS (true or
false), the bucket, the key prefix (raw), the dataset, and the path of the
httpfs extension (the PyPI package duckdb-extension-httpfs ships it: no
download). The credentials come from S3_ACCESS_KEY and S3_SECRET_KEY in the
environment; S3_CA_FILE, when set, is the CA to trust over TLS.
"""

import json
import os
import sys

import duckdb

endpoint, use_ssl, bucket, prefix, dataset, httpfs = sys.argv[1:7]

con = duckdb.connect()
con.execute(f"LOAD '{httpfs}'")


def quote(s):
    return "'" + s.replace("'", "''") + "'"


con.execute(
    f"""CREATE SECRET lake (TYPE s3, KEY_ID {quote(os.environ["S3_ACCESS_KEY"])},
        SECRET {quote(os.environ["S3_SECRET_KEY"])}, ENDPOINT {quote(endpoint)},
        URL_STYLE 'path', USE_SSL {"true" if use_ssl == "true" else "false"}, REGION 'us-east-1')"""
)
if os.environ.get("S3_CA_FILE"):
    con.execute(f"SET ca_cert_file = {quote(os.environ['S3_CA_FILE'])}")
    con.execute("SET enable_server_cert_verification = true")
con.execute(
    f"""CREATE VIEW events AS SELECT * FROM read_parquet(
        's3://{bucket}/{prefix}/dataset={dataset}/*/*/*.parquet', hive_partitioning = true)"""
)

out = {}
out["records"], out["distinct_event_ids"] = con.execute(
    "SELECT count(*), count(DISTINCT event_id) FROM events"
).fetchone()
out["partitions"] = [
    {"partition": p, "records": n, "min_offset": lo, "max_offset": hi, "offsets": offsets}
    for p, n, lo, hi, offsets in con.execute(
        """SELECT _partition, count(*), min(_offset), max(_offset), list(_offset ORDER BY _offset)
        FROM events GROUP BY _partition ORDER BY _partition"""
    ).fetchall()
]
# The dt and hour of the keys, as Hive partitioning reads them, with the
# range of the Kafka timestamps of their rows (microseconds since the epoch).
out["hours"] = [
    {"dt": dt, "hour": hour, "records": n, "first_us": first, "last_us": last}
    for dt, hour, n, first, last in con.execute(
        """SELECT dt::VARCHAR, hour::VARCHAR, count(*), min(epoch_us(_timestamp)), max(epoch_us(_timestamp))
        FROM events GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
]
json.dump(out, sys.stdout)
