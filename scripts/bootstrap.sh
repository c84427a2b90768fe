#!/usr/bin/env bash
# Create .venv and install irqlab into it (with test extras when given "test"), at the
# exact versions in constraints.txt.
# Needs only python3; on Debian without the venv module it installs python3-venv when root.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv .venv
    else
      echo "bootstrap: python3 has no venv module; install python3-venv" >&2
      exit 1
    fi
  fi
fi
# constraints.txt pins every package to the version the golden files were made with.
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".${extras}"
