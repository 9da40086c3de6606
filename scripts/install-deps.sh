#!/usr/bin/env bash
# Installs the Debian 12 packages Vapor needs to build (and, with --test, to run its tests).
# Only missing packages are installed; nothing is downloaded from anywhere but apt.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git dpkg-dev file
  libboost1.81-dev libboost-json1.81-dev
  prometheus-cpp-dev libyaml-cpp-dev libsqlite3-dev libsystemd-dev libssl-dev
  python3-numpy  # the demo's real training job (config/demo/spiral_mlp.py)
)
test_packages=(googletest libgtest-dev libgmock-dev sqlite3 python3 python3-websockets prometheus
               prometheus-alertmanager python3-yaml chromium clang libclang-rt-14-dev llvm
               # the real-systemd test (tests/systemd): systemd booted in namespaces;
               # libnss-systemd gives its dynamic users their names
               systemd libnss-systemd util-linux procps adduser)

if [[ "${1:-}" == "--test" ]]; then
  packages+=("${test_packages[@]}")
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

# The live page's chart library comes from npm at build time. Any Node.js with npm will do; take
# Debian's only when none is installed (another vendor's nodejs package conflicts with npm).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "Installing missing Debian packages: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
