#!/usr/bin/env bash
# Installs the Debian packages tmuxgate needs to run and to be tested.
# Used by the README's quick start and by .ci/run, so both install the same thing.
#   runtime: tmux (the session multiplexer), openssh-client (ssh-keygen for fingerprints),
#            passwd (useradd/usermod/userdel), util-linux (setpriv), procps (kill -1 as a pair),
#            bubblewrap (per-role sandbox)
#   tests:   openssh-server (baseline for benchmarks), oathtool (independent TOTP),
#            ssh-audit (grades the algorithm policy), expect, asciinema (plays exports),
#            bubblewrap (optional per-role sandbox), haproxy (2.6: logins through a real
#            load balancer with PROXY protocol v1/v2 and its health checks),
#            postgresql (15: the shared store several nodes use, started by the tests as
#            their own cluster in a temp dir; the packaged service is not used),
#            rsyslog + rsyslog-gnutls (the real RFC 5425 collector the audit-shipping test starts
#            on loopback as its own child; the packaged service is not used), openssl (that
#            test's throwaway CA and certificates)
#   build:   python3, make, g++, libc6-dev (node-pty, its static helper tg-spawn-as, better-sqlite3 compile from source)
set -euo pipefail

RUNTIME=(tmux openssh-client passwd util-linux procps bubblewrap)
TESTING=(openssh-server oathtool ssh-audit expect asciinema python3 haproxy postgresql rsyslog rsyslog-gnutls openssl)
BUILD=(python3 make g++ libc6-dev)

want=("${RUNTIME[@]}" "${BUILD[@]}")
if [[ "${1:-}" != "--runtime-only" ]]; then want+=("${TESTING[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
# The test suite starts its own sshd and haproxy on ephemeral ports; the packaged services
# must not be needed, and on a fresh container they are not running anyway.
