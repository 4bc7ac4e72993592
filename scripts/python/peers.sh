#!/usr/bin/env bash
# Makes the venv of the seed-style Python consumer that `make bench-peers`
# and its test run (bench/peers/seed_consumer.py): Debian's python3 with
# bench/peers/requirements.txt, pinned, from PyPI, in DIR (default: .cache/peers
# of the repository). Idempotent: a venv made from the same requirements is
# kept (their SHA-256 is stamped in it last, so that a half-made one is made
# again). Prints its python.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:-$root/.cache/peers}"
requirements="$root/bench/peers/requirements.txt"
sum="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/requirements.sha256" 2>/dev/null)" != "$sum" ]; then
	rm -rf "$dir"
	mkdir -p "$(dirname "$dir")"
	/usr/bin/python3 -m venv "$dir" >&2
	"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
	"$dir/bin/python" -m pip check >&2
	echo "$sum" >"$dir/requirements.sha256"
fi
echo "$dir/bin/python"
