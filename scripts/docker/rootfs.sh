#!/bin/sh
# rootfs.sh SERVICE OUT builds the root filesystem of a datamill image into
# OUT: the static program as /app, a datamill user (65532), CA
# certificates, /tmp, and the state directories /var/lib/datamill/models,
# /var/lib/datamill/inbox and /var/lib/datamill/state (a stage's dedupe
# state, STAGE_STATE_DIR). The Dockerfile runs it; the deployment tests
# run it too and start the program chrooted into OUT.
#
# SERVICE is extractor, cleaner, loader, scorer, lake, ecometer or datamill.
set -eu
service=${1:?usage: rootfs.sh SERVICE OUT}
out=${2:?usage: rootfs.sh SERVICE OUT}
case "$service" in
extractor | cleaner | loader | scorer | lake | ecometer) pkg=./services/$service ;;
datamill) pkg=./cmd/datamill ;;
*)
	echo "rootfs.sh: unknown service $service (extractor, cleaner, loader, scorer, lake, ecometer, datamill)" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")/../.."
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/app" "$pkg"
mkdir -p "$out/etc/ssl/certs" "$out/var/lib/datamill/models" "$out/var/lib/datamill/inbox" "$out/var/lib/datamill/state" "$out/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/"
echo 'datamill:x:65532:65532:datamill:/var/lib/datamill:/sbin/nologin' >"$out/etc/passwd"
echo 'datamill:x:65532:' >"$out/etc/group"
chmod 1777 "$out/tmp"
