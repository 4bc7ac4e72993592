#!/usr/bin/env bash
# Prints a directory holding librdkafka.so.1 of librdkafka 2.16, for kcat:
# `LD_LIBRARY_PATH=$(scripts/compose/librdkafka.sh) kcat ...`.
#
# Debian 12's kcat runs on Debian's librdkafka 2.0.2, whose SCRAM sign-in
# Kafka 4 refuses ("invalid credentials"; fixed in librdkafka 2.6.1, see
# edenhill/kcat#462), and compose's Kafka takes SCRAM-SHA-512 clients alone.
# The confluent-kafka wheel of PyPI carries a newer librdkafka, with no
# dependency outside glibc; it keeps librdkafka's ABI, so Debian's kcat runs
# on it unchanged. Installed once into DATAMILL_CACHE (default
# ~/.cache/datamill); quiet and idempotent.
set -euo pipefail

version=2.16.1
dir="${DATAMILL_CACHE:-$HOME/.cache/datamill}/python/confluent-kafka-$version"

if [ ! -e "$dir/lib/librdkafka.so.1" ]; then
	tmp="$dir.tmp.$$"
	rm -rf "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	/usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
		--no-deps --target "$tmp" "confluent-kafka==$version" >&2
	lib=$(find "$tmp/confluent_kafka.libs" -name 'librdkafka-*.so.1' | head -1)
	[ -n "$lib" ] || {
		echo "librdkafka.sh: no librdkafka in confluent-kafka $version" >&2
		exit 1
	}
	mkdir -p "$tmp/lib"
	ln -s "../confluent_kafka.libs/$(basename "$lib")" "$tmp/lib/librdkafka.so.1"
	rm -rf "$dir"
	mkdir -p "$(dirname "$dir")"
	mv "$tmp" "$dir"
	trap - EXIT
fi
echo "$dir/lib"
