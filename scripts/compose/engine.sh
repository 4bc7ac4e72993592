#!/usr/bin/env bash
# The Docker engine and Docker Compose v2 for `make compose-test`, on a
# machine that has neither (this kind of machine has only the docker CLI,
# and no registry to pull from):
#   - Debian's docker.io (the engine, containerd, runc, and its 20.10 CLI,
#     which builds with BuildKit without buildx) and debootstrap, from apt;
#   - Docker Compose v2.40.3, built from the Go module proxy (about two
#     minutes; kept in DATAMILL_CACHE, default ~/.cache/datamill) and
#     installed as the CLI plugin docker-compose;
#   - dockerd, started in the background when no engine answers, its log
#     in DATAMILL_CACHE/dockerd.log.
# A machine with an engine and Compose v2 already keeps them: nothing is
# installed then. Needs root for what it installs and starts.
set -euo pipefail

compose_module=github.com/docker/compose/v2
compose_version=v2.40.3
cache="${DATAMILL_CACHE:-$HOME/.cache/datamill}"
plugins=/usr/local/lib/docker/cli-plugins

say() { echo "engine.sh: $*" >&2; }

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
	say "installing docker.io and debootstrap from apt"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if ! docker compose version 2>/dev/null | grep -q ' v2\.'; then
	bin="$cache/compose/$compose_version/docker-compose"
	if [ ! -x "$bin" ]; then
		say "building Docker Compose $compose_version from the Go module proxy"
		src=$(GOFLAGS=-mod=mod go mod download -json "$compose_module@$compose_version" |
			python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
		work=$(mktemp -d)
		trap 'rm -rf "$work"' EXIT
		cp -r "$src/." "$work"
		chmod -R u+w "$work"
		(cd "$work" && CGO_ENABLED=0 go build -trimpath \
			-ldflags "-s -w -X $compose_module/internal.Version=$compose_version" -o "$work/docker-compose" ./cmd)
		mkdir -p "$(dirname "$bin")"
		mv "$work/docker-compose" "$bin"
	fi
	mkdir -p "$plugins"
	install -m 0755 "$bin" "$plugins/docker-compose"
fi

if ! docker info >/dev/null 2>&1; then
	say "starting dockerd (log: $cache/dockerd.log)"
	mkdir -p "$cache"
	setsid dockerd >"$cache/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 60); do
		docker info >/dev/null 2>&1 && break
		sleep 1
	done
	docker info >/dev/null 2>&1 || {
		tail -20 "$cache/dockerd.log" >&2
		say "dockerd does not answer after 60 s"
		exit 1
	}
fi
docker compose version >&2
