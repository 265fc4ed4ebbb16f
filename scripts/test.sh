#!/usr/bin/env bash
# The whole test suite: install, build, run every test except those labelled
# slow; then the same suite once more under AddressSanitizer and
# UndefinedBehaviorSanitizer (skip with TPP_NO_SANITIZE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
scripts/get_tokenizers.sh || true  # real vocabularies for the tokenizer tests (skipped if absent)
scripts/get_node_test_deps.sh || true  # the server tests' Node client, puppeteer-core and chromium (skipped if absent)
ctest --preset release
if [ "${TPP_NO_SANITIZE:-0}" != 1 ]; then
  scripts/build.sh asan
  ctest --preset asan
fi
