#!/bin/sh
# minio-init (docker-compose.yml): the lake's bucket, its default
# encryption and its users, idempotently. Runs in the minio/mc image with
# the secrets of compose under /run/secrets.
set -eu

secret() { tr -d '\n' <"/run/secrets/$1"; }

# `--` first: a secret may start with '-' (one made before `datamill
# secrets` stopped making such), which mc would take for an option.
mc alias set -- lake "$MINIO_URL" "$MINIO_ROOT_USER" "$(secret minio_root_password)" >/dev/null
mc mb --ignore-existing "lake/$LAKE_BUCKET"
# Every object is encrypted at rest with the KMS's key, asked for or not.
mc encrypt set sse-s3 "lake/$LAKE_BUCKET"

policy() {
	sed "s/@BUCKET@/$LAKE_BUCKET/g" "/etc/datamill/minio/$1.json" >"/tmp/$1.json"
	mc admin policy create lake "$1" "/tmp/$1.json"
}
policy lake-sink
policy lake-reader

user() {
	mc admin user add -- lake "$1" "$(secret "$2")"
	# Attaching a policy the user has already is refused as done: a rerun.
	if ! out=$(mc admin policy attach lake "$1" --user "$1" 2>&1); then
		case "$out" in
		*already*) ;;
		*)
			echo "minio-init: attach policy $1: $out" >&2
			exit 1
			;;
		esac
	fi
}
user lake-sink lake_sink_secret_key
user lake-reader lake_reader_secret_key
echo "minio-init: bucket $LAKE_BUCKET encrypted (SSE-S3), users lake-sink and lake-reader"
