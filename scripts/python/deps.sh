#!/usr/bin/env bash
# Installs the Python packages the tests drive that Debian does not ship:
# DuckDB and its httpfs extension (which reads the lake on S3), pinned, into
# a directory of their own that tests put on PYTHONPATH. Quiet and
# idempotent: nothing happens when they are there already. Prints the
# directory.
set -euo pipefail

version=1.5.5
dir="${DATAMILL_CACHE:-$HOME/.cache/datamill}/python/duckdb-$version"
ext="$dir/duckdb_extension_httpfs/extensions/v$version/httpfs.duckdb_extension"

if ! PYTHONPATH="$dir" /usr/bin/python3 -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$version')" 2>/dev/null ||
	[ ! -f "$ext" ]; then
	tmp="$dir.tmp.$$"
	rm -rf "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	/usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
		--target "$tmp" "duckdb==$version" "duckdb-extension-httpfs==$version" >&2
	rm -rf "$dir"
	mkdir -p "$(dirname "$dir")"
	mv "$tmp" "$dir"
	trap - EXIT
fi
echo "$dir"
