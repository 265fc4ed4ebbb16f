#!/usr/bin/env bash
# Installs OpenAI's official Node client (npm package openai) into
# data/node/ for the server's client test. Does nothing when it is there;
# without npm (or the registry) the test is skipped and says why.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/data/node"
[ -s "$out/node_modules/openai/package.json" ] && exit 0
command -v npm >/dev/null || { echo "npm not found: the openai client test will be skipped" >&2; exit 0; }
mkdir -p "$out"
if (cd "$out" && npm install --silent --no-audit --no-fund --no-save openai@4.104.0 >/dev/null); then
  echo "$out/node_modules/openai: installed"
else
  echo "could not install the openai package: its test will be skipped" >&2
fi
