#!/usr/bin/env bash
# Installs the real DNS tools the tests and benchmarks drive: dig (bind9-dnsutils) and dnsperf.
# Also util-linux (unshare) and iproute2 (ip) for the network-namespace end-to-end test.
# Idempotent; needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail
need=()
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -eq 0 ]; then
  echo "install-tools: dig, dnsperf, unshare, ip, taskset already present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install-tools: installed ${need[*]}"
