#!/usr/bin/env bash
# Install everything the whole test suite needs, then run it (extra args go to pytest).
# As root on Debian it installs the packages the live tests drive: iperf3 and stress-ng
# (the load generator ../shared/tools/load.sh, with ethtool for its --gro/--threaded), iproute2, tmux (the TUI test), prometheus
# and promtool (the exporter and alert-rule tests), chromium (the HTML report test), bpftool
# (the BPF tests check that no irqlab program stays loaded).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pair in iperf3:iperf3 stress-ng:stress-ng ip:iproute2 tmux:tmux setpriv:util-linux \
            prometheus:prometheus promtool:prometheus chromium:chromium chromedriver:chromium-driver \
            openssl:openssl systemd-analyze:systemd ethtool:ethtool bpftool:bpftool; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: ${need[*]} missing and not root: live tests that need them will be skipped" >&2
  fi
fi
bash scripts/bootstrap.sh test
exec .venv/bin/python -m pytest "$@"
