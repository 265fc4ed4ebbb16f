#!/usr/bin/env bash
# Installs what the server's client and browser tests drive: OpenAI's official
# Node client and puppeteer-core (npm) into data/node/, and Debian's chromium.
# Does nothing for what is there; without npm or apt those tests are skipped
# and say why.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/data/node"
if [ ! -s "$out/node_modules/openai/package.json" ] || [ ! -s "$out/node_modules/puppeteer-core/package.json" ]; then
  if command -v npm >/dev/null; then
    mkdir -p "$out"
    if (cd "$out" && npm install --silent --no-audit --no-fund --no-save openai@4.104.0 puppeteer-core@23.11.1 >/dev/null); then
      echo "$out/node_modules: openai and puppeteer-core installed"
    else
      echo "could not install openai / puppeteer-core: the server's client and browser tests will be skipped" >&2
    fi
  else
    echo "npm not found: the server's client and browser tests will be skipped" >&2
  fi
fi
if ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: chromium"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; }; then
    echo "could not install chromium: the chat page's browser test will be skipped" >&2
  fi
fi
