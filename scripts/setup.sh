#!/usr/bin/env bash
# Installs what tpp needs to build and test, from Debian's packages.
set -euo pipefail
packages=(g++ cmake make libgtest-dev libbenchmark-dev nlohmann-json3-dev libfmt-dev libcli11-dev libpcre2-dev libicu-dev pkg-config librsvg2-dev libcpp-httplib-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
