#!/usr/bin/env bash
# The stand-in images of `make compose-test` (deploy/ci/README.md), built
# locally, since this kind of machine pulls from no registry:
#   datamill-ci/debian:bookworm   debootstrap's minbase, imported (its root
#                                 filesystem kept in DATAMILL_CACHE)
#   datamill-ci/java              OpenJDK 17
#   datamill-ci/golang            the host's Go, the build stage of ./Dockerfile
#   datamill-ci/postgres:15       Debian's PostgreSQL 15
#   datamill-ci/kafka:4.3.1       the Maven Central jars of scripts/kafka/broker.sh
#   datamill-ci/registry          Apicurio Registry 3.0.9, Maven Central
#   datamill-ci/prometheus        Debian's Prometheus
#   datamill-ci/minio             the MinIO and mc of scripts/minio/minio.sh
# An image that exists is kept (DATAMILL_CI_REBUILD=1 builds them again).
# Run scripts/compose/engine.sh first.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache="${DATAMILL_CACHE:-$HOME/.cache/datamill}"
apicurio_version=3.0.9
ci="$root/deploy/ci"

say() { echo "images.sh: $*" >&2; }

# build TAG CONTEXT [DOCKERFILE]: the Dockerfile of deploy/ci/<name> is
# deploy/ci/<name>/Dockerfile by default, with its own files copied into
# CONTEXT beside what the context already holds.
build() {
	local tag=$1 context=$2 dockerfile=${3:-}
	if [ -z "${DATAMILL_CI_REBUILD:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then
		return
	fi
	say "building $tag"
	local start=$SECONDS
	if docker buildx version >/dev/null 2>&1; then
		docker build -q -t "$tag" -f "$dockerfile" "$context" >/dev/null
	else
		# Debian's 20.10 CLI builds with BuildKit without buildx.
		DOCKER_BUILDKIT=1 /usr/bin/docker build -q -t "$tag" -f "$dockerfile" "$context" >/dev/null
	fi
	say "built $tag in $((SECONDS - start)) s"
}

# stage NAME FILE...: a build context of its own in the cache for
# deploy/ci/NAME, holding FILE... and NAME's files.
stage() {
	local name=$1
	shift
	local dir="$cache/compose-ci/$name"
	rm -rf "$dir"
	mkdir -p "$dir"
	for f in "$@"; do
		cp -al "$f" "$dir/" 2>/dev/null || cp -a "$f" "$dir/"
	done
	find "$ci/$name" -maxdepth 1 -type f ! -name Dockerfile -exec cp {} "$dir/" \;
	echo "$dir"
}

# The base: debootstrap's root filesystem, made once.
rootfs="$cache/compose-ci/debian-bookworm.tar"
if ! docker image inspect datamill-ci/debian:rootfs >/dev/null 2>&1; then
	if [ ! -s "$rootfs" ]; then
		say "debootstrap --variant=minbase bookworm"
		tmp=$(mktemp -d)
		debootstrap --variant=minbase bookworm "$tmp/rootfs" http://deb.debian.org/debian >"$tmp/log" 2>&1 || {
			tail -20 "$tmp/log" >&2
			exit 1
		}
		mkdir -p "$(dirname "$rootfs")"
		tar -C "$tmp/rootfs" -cf "$rootfs.part" .
		mv "$rootfs.part" "$rootfs"
		rm -rf "$tmp"
	fi
	docker import "$rootfs" datamill-ci/debian:rootfs >/dev/null
fi
build datamill-ci/debian:bookworm "$ci/debian" "$ci/debian/Dockerfile"
build datamill-ci/java "$ci/java" "$ci/java/Dockerfile"

# Go: the host's toolchain and CA bundle.
goroot=$(go env GOROOT)
build datamill-ci/golang "$(stage golang "$goroot" /etc/ssl/certs/ca-certificates.crt)" "$ci/golang/Dockerfile"

build datamill-ci/postgres:15 "$(stage postgres)" "$ci/postgres/Dockerfile"

lib=$("$root/scripts/kafka/broker.sh" fetch >/dev/null && echo "$root/.cache/kafka/lib")
build datamill-ci/kafka:4.3.1 "$lib" "$ci/kafka/Dockerfile"

apicurio="$cache/apicurio/$apicurio_version"
if [ ! -f "$apicurio/apicurio-registry-app-$apicurio_version-runner.jar" ]; then
	say "fetching Apicurio Registry $apicurio_version from Maven Central"
	tmp=$(mktemp -d)
	(cd "$tmp" && mvn -q dependency:copy -DoutputDirectory="$tmp" \
		"-Dartifact=io.apicurio:apicurio-registry-app:$apicurio_version:tar.gz:all")
	mkdir -p "$tmp/app"
	tar -C "$tmp/app" -xzf "$tmp/apicurio-registry-app-$apicurio_version-all.tar.gz"
	mkdir -p "$(dirname "$apicurio")"
	rm -rf "$apicurio"
	mv "$tmp/app" "$apicurio"
	rm -rf "$tmp"
fi
build datamill-ci/registry "$(stage registry "$apicurio"/*)" "$ci/registry/Dockerfile"

build datamill-ci/prometheus "$ci/prometheus" "$ci/prometheus/Dockerfile"

minio=$("$root/scripts/minio/minio.sh" fetch)
build datamill-ci/minio "$(stage minio "$minio/minio" "$minio/mc")" "$ci/minio/Dockerfile"
