#!/usr/bin/env bash
# A real MinIO server for the lake's real-S3 test tier: TLS on 127.0.0.1,
# the built-in single-key KMS (SSE-S3), optionally MinIO's audit webhook,
# and a provisioned bucket with the lake's two users. MinIO and mc are
# AGPL: they are built here as external programs and never imported. See
# README.md beside this file.
#
#   minio.sh fetch                 go install the pinned minio and mc into the cache; prints the dir
#   minio.sh bin                   prints the dir when fetch has built the binaries, else exit 3
#   minio.sh version               the pinned minio version
#   minio.sh start --dir D [--port P] [--audit-endpoint URL --audit-token-file F] [--kms off]
#                                  certificates, credentials and KMS key (kept when D has
#                                  them), start, wait until ready; prints S3_ENDPOINT and
#                                  S3_CA_FILE
#   minio.sh run ...               as start, but the server runs in the foreground as this
#                                  process, its log on stderr; no wait
#   minio.sh provision --dir D [--bucket B] [--retention-days N]
#                                  bucket with default SSE-S3, users lake-sink and
#                                  lake-reader; writes D/sink.env and D/reader.env. With
#                                  --retention-days, Object Lock: every object version is
#                                  kept N days in compliance mode, root included
#   minio.sh stop --dir D          SIGTERM, SIGKILL after 30 s
#
# DATAMILL_CACHE (default ~/.cache/datamill) holds the binaries under
# minio/<version>/. Everything but what start and fetch print goes to stderr.
set -euo pipefail

# shellcheck source=../lib/proc.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib/proc.sh"

minio_module=github.com/minio/minio
minio_version=v0.0.0-20260212201848-7aac2a2c5b7c
mc_module=github.com/minio/mc
mc_version=v0.0.0-20250313080218-cf909e1063a9

cache="${DATAMILL_CACHE:-$HOME/.cache/datamill}/minio/$minio_version"
dir=
port=39900
bucket=datamill-lake
audit_endpoint=
audit_token_file=
kms=on
retention_days=0
ready_timeout=${MINIO_READY_TIMEOUT:-120}
stop_timeout=30

say() { echo "minio.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

fetched() {
	[ -x "$cache/minio" ] && [ -x "$cache/mc" ] && [ -f "$cache/.fetched" ] &&
		[ "$(cat "$cache/.fetched")" = "$minio_version $mc_version" ]
}

# fetch builds into a fresh directory and moves the binaries in only when
# both built, so an interrupted build never leaves a binary a later run
# would take as complete.
fetch() {
	if ! fetched; then
		command -v go >/dev/null || die "go is needed to build MinIO"
		mkdir -p "$cache"
		exec 9>"$cache/fetch.lock"
		command -v flock >/dev/null && flock 9
		if ! fetched; then
			local tmp="$cache/bin.tmp.$$"
			rm -rf "$tmp"
			mkdir -p "$tmp"
			say "building $minio_module@$minio_version and $mc_module@$mc_version into $cache"
			GOBIN="$tmp" GOFLAGS=-mod=mod go install "$minio_module@$minio_version" >&2 ||
				die "go install $minio_module@$minio_version failed"
			GOBIN="$tmp" GOFLAGS=-mod=mod go install "$mc_module@$mc_version" >&2 ||
				die "go install $mc_module@$mc_version failed"
			mv -f "$tmp/minio" "$tmp/mc" "$cache/"
			rm -rf "$tmp"
			echo "$minio_version $mc_version" >"$cache/.fetched"
		fi
		exec 9>&-
	fi
	echo "$cache"
}

parse() {
	while [ $# -gt 0 ]; do
		[ $# -ge 2 ] || die "$1 needs a value"
		case "$1" in
		--dir) dir=$2 ;;
		--port) port=$2 ;;
		--bucket) bucket=$2 ;;
		--audit-endpoint) audit_endpoint=$2 ;;
		--audit-token-file) audit_token_file=$2 ;;
		--kms) kms=$2 ;;
		--retention-days) retention_days=$2 ;;
		*) die "unknown option $1" ;;
		esac
		shift 2
	done
	[ -n "$dir" ] || die "--dir is required"
	case "$port" in
	'' | *[!0-9]*) die "--port must be a number, not '$port'" ;;
	esac
	case "$bucket" in
	'' | *[!a-z0-9.-]*) die "--bucket must be a lower-case S3 bucket name, not '$bucket'" ;;
	esac
	case "$retention_days" in
	'' | *[!0-9]*) die "--retention-days must be a number of days, not '$retention_days'" ;;
	esac
	case "$kms" in
	on | off) ;;
	*) die "--kms must be on or off, not '$kms'" ;;
	esac
	if [ -n "$audit_endpoint" ] && [ -z "$audit_token_file" ]; then
		die "--audit-endpoint needs --audit-token-file"
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
}

# random prints n random bytes as lower-case hex.
random() { openssl rand -hex "$1"; }

# pid prints the server's pid when it is alive and really serves this
# directory.
pid() { pid_of "$dir/pid" "$dir/data"; }

# certs makes a CA and a server certificate for 127.0.0.1 and localhost
# signed by it, in MinIO's --certs-dir layout; kept when present.
certs() {
	local c="$dir/certs"
	[ -f "$c/public.crt" ] && [ -f "$c/private.key" ] && [ -f "$dir/ca.crt" ] && return 0
	mkdir -p "$c"
	(
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
			-subj "/CN=datamill test CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=127.0.0.1" -keyout "$c/private.key" -out "$dir/server.csr" 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
		openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
			-days 30 -extfile "$dir/server.ext" -out "$c/public.crt" 2>/dev/null
		rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl"
	) || die "openssl could not make the certificates"
	chmod 0644 "$dir/ca.crt" "$c/public.crt"
}

# secrets makes the root credentials and the KMS key; kept when present, as
# the data written under them needs them.
secrets() {
	(
		umask 077
		if [ ! -f "$dir/root" ]; then
			printf 'MINIO_ROOT_USER=root-%s\nMINIO_ROOT_PASSWORD=%s\n' "$(random 6)" "$(random 24)" >"$dir/root"
		fi
		if [ "$kms" = on ] && [ ! -f "$dir/kms" ]; then
			echo "datamill-lake-key:$(openssl rand -base64 32)" >"$dir/kms"
		fi
	)
}

# root sets root_user and root_password from D/root.
root() {
	[ -f "$dir/root" ] || die "$dir/root is missing: start first"
	root_user=$(sed -n 's/^MINIO_ROOT_USER=//p' "$dir/root")
	root_password=$(sed -n 's/^MINIO_ROOT_PASSWORD=//p' "$dir/root")
}

# prepare makes what a start needs and sets env, the server's environment,
# and args, its command line after the binary.
prepare() {
	if pid >/dev/null; then die "a server already runs on $dir (pid $(pid))"; fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "127.0.0.1:$port is taken: choose another --port"
	fi
	bin=$(fetch)
	certs
	secrets
	root
	mkdir -p "$dir/data"
	env=(
		MINIO_ROOT_USER="$root_user" MINIO_ROOT_PASSWORD="$root_password"
		MINIO_BROWSER=off MINIO_UPDATE=off
	)
	if [ "$kms" = on ]; then
		env+=(MINIO_KMS_SECRET_KEY="$(cat "$dir/kms")")
		rm -f "$dir/no-kms"
	else
		# A server that cannot encrypt, for the tests of failing closed;
		# a key already in D is kept for the next start with a KMS.
		touch "$dir/no-kms"
	fi
	if [ -n "$audit_endpoint" ]; then
		[ -r "$audit_token_file" ] || die "cannot read $audit_token_file"
		env+=(
			MINIO_AUDIT_WEBHOOK_ENABLE_datamill=on
			MINIO_AUDIT_WEBHOOK_ENDPOINT_datamill="$audit_endpoint"
			# MinIO sends this value as the whole Authorization header.
			MINIO_AUDIT_WEBHOOK_AUTH_TOKEN_datamill="Bearer $(tr -d '\r\n' <"$audit_token_file")"
		)
	fi
	args=(server --quiet --anonymous --address "127.0.0.1:$port" --certs-dir "$dir/certs" "$dir/data")
	echo "$port" >"$dir/port"
}

# run starts the server in the foreground, as this process (for a caller
# that supervises it, like testkit); it is ready once
# /minio/health/ready answers 200.
run() {
	prepare
	echo $$ >"$dir/pid"
	exec env "${env[@]}" "$bin/minio" "${args[@]}"
}

start() {
	prepare
	say "starting MinIO on https://127.0.0.1:$port (log: $dir/minio.log)"
	env "${env[@]}" setsid "$bin/minio" "${args[@]}" >"$dir/minio.log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	local p=$! deadline=$((SECONDS + ready_timeout))
	until curl -fsS --cacert "$dir/ca.crt" -o /dev/null "https://127.0.0.1:$port/minio/health/ready" 2>/dev/null; do
		if ! alive "$p"; then
			tail -n 30 "$dir/minio.log" >&2
			die "MinIO exited while starting"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 30 "$dir/minio.log" >&2
			kill "$p" 2>/dev/null || true
			die "MinIO not ready after ${ready_timeout}s"
		fi
		sleep 0.2
	done
	echo "S3_ENDPOINT=https://127.0.0.1:$port"
	echo "S3_CA_FILE=$dir/ca.crt"
}

# mc runs the client with its own configuration in D, trusting the CA.
mcc() {
	"$cache/mc" --config-dir "$dir/mc" --quiet --no-color "$@"
}

# policy writes the policy document of a user; $1 is sink or reader. The
# sink's s3:HeadBucket is for its readiness check (HEAD of the bucket, which
# the prefix-bound s3:ListBucket does not allow): it tells only that the
# bucket exists.
policy() {
	local objects="arn:aws:s3:::$bucket/raw/*"
	case "$1" in
	sink)
		cat <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": ["$objects"]},
  {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::$bucket"],
   "Condition": {"StringLike": {"s3:prefix": ["raw/*"]}}},
  {"Effect": "Allow", "Action": ["s3:HeadBucket"], "Resource": ["arn:aws:s3:::$bucket"]}
]}
EOF
		;;
	reader)
		cat <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["$objects"]},
  {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::$bucket"]}
]}
EOF
		;;
	esac
}

provision() {
	pid >/dev/null || die "no server runs on $dir: start first"
	fetch >/dev/null
	root
	local endpoint user secret out
	endpoint="https://127.0.0.1:$(cat "$dir/port")"
	mkdir -p "$dir/mc/certs/CAs"
	cp "$dir/ca.crt" "$dir/mc/certs/CAs/datamill-ca.crt"
	mcc alias set datamill "$endpoint" "$root_user" "$root_password" >/dev/null
	if [ "$retention_days" -gt 0 ]; then
		# Object Lock needs a bucket made with it (versioned): an existing
		# bucket without it is an error, not a silent downgrade.
		mcc mb --ignore-existing --with-lock "datamill/$bucket" >/dev/null
		mcc retention set --default compliance "${retention_days}d" "datamill/$bucket" >/dev/null ||
			die "bucket $bucket has no Object Lock: make it anew with --retention-days"
	else
		mcc mb --ignore-existing "datamill/$bucket" >/dev/null
	fi
	if [ ! -f "$dir/no-kms" ]; then
		mcc encrypt set sse-s3 "datamill/$bucket" >/dev/null
	else
		say "no KMS (started with --kms off): the bucket has no default encryption"
	fi
	for user in sink reader; do
		policy "$user" >"$dir/policy-$user.json"
		mcc admin policy create datamill "lake-$user" "$dir/policy-$user.json" >/dev/null
		secret=$(random 20)
		mcc admin user add datamill "lake-$user" "$secret" >/dev/null
		# Attaching twice (provisioning again) is refused as already done.
		if ! out=$(mcc admin policy attach datamill "lake-$user" --user "lake-$user" 2>&1); then
			case "$out" in
			*already*) ;;
			*) die "attach policy lake-$user: $out" ;;
			esac
		fi
		(
			umask 077
			printf 'S3_ENDPOINT=%s\nS3_BUCKET=%s\nS3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\nS3_CA_FILE=%s\n' \
				"$endpoint" "$bucket" "lake-$user" "$secret" "$dir/ca.crt" >"$dir/$user.env"
		)
	done
	say "provisioned bucket $bucket (SSE-S3 by default), users lake-sink and lake-reader: $dir/sink.env, $dir/reader.env"
}

stop() {
	local p
	p=$(pid) || {
		rm -f "$dir/pid"
		return 0
	}
	kill "$p" 2>/dev/null || true
	local deadline=$((SECONDS + stop_timeout))
	while alive "$p"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "MinIO did not stop in ${stop_timeout}s: SIGKILL"
			kill -9 "$p" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rm -f "$dir/pid"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
fetch) fetch ;;
bin) fetched && echo "$cache" || exit 3 ;;
version) echo "$minio_version" ;;
start) parse "$@" && start ;;
run) parse "$@" && run ;;
provision) parse "$@" && provision ;;
stop) parse "$@" && stop ;;
*) die "usage: minio.sh fetch|version|start|provision|stop [--dir D] (see the head of this script)" ;;
esac
