#!/usr/bin/env bash
# Install the Debian packages that building (--build) or testing (default) nbdgm needs.
#
#   ./scripts/setup.sh --build   # the C side of the build: gcc, pkg-config, libpcap-dev
#   ./scripts/setup.sh           # that, and every prerequisite of ./scripts/test.sh
#
# As root it runs apt-get itself, as a user through sudo, and without either it stops with
# a message. Only missing packages are installed, with `apt-get update` first only when the
# plain install fails (a fresh machine's empty lists). No service starts: a policy-rc.d that
# forbids it (exit 101) is in place during the install, and a Samba daemon started anyway is
# stopped by PID. The Rust toolchain itself comes from rustup, not from here.
set -euo pipefail

build_pkgs=(gcc libc6-dev pkg-config libpcap-dev)
# tshark: differential tests; samba, smbclient, iproute2: the namespace lab; nftables,
# iptables: firewall tests; postgresql: the monitor's shared store; chromium: the web page;
# python3-scapy: crafted frames; dpkg-dev (dpkg-shlibdeps), man-db, systemd
# (systemd-analyze), adduser: the Debian package test (scripts/package-test.sh); ufw: the ufw
# drift test (run only inside a namespace with its own /etc/ufw; the host's stays disabled).
test_pkgs=(tshark samba smbclient iproute2 nftables iptables postgresql chromium python3-scapy
  dpkg-dev man-db systemd adduser ufw)

usage() { sed -n '2,5s/^# \{0,1\}//p' "$0"; }
case "${1:-}" in
  --build) pkgs=("${build_pkgs[@]}") ;;
  "") pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  -h | --help) usage; exit 0 ;;
  *) { echo "setup: unknown option: $1"; usage; } >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#pkgs[@]} packages are installed"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 ||
  { echo "setup: apt-get not found: this script is for Debian and its derivatives" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "setup: missing ${missing[*]}; not root and sudo is missing: run it as root (su -c ./scripts/setup.sh) or install sudo" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "setup: installing ${missing[*]}"

# tshark: no setuid dumpcap question.
echo "wireshark-common wireshark-common/install-setuid boolean false" |
  "${SUDO[@]}" debconf-set-selections 2>/dev/null || true

# No service may start during the install (policy-rc.d exit 101 = "action forbidden");
# the old policy-rc.d comes back afterwards.
prc=/usr/sbin/policy-rc.d
saved=$(mktemp)
had_prc=0
if [ -e "$prc" ]; then "${SUDO[@]}" cp -p "$prc" "$saved"; had_prc=1; fi
restore_prc() {
  if [ "$had_prc" = 1 ]; then "${SUDO[@]}" cp -p "$saved" "$prc"; else "${SUDO[@]}" rm -f "$prc"; fi
  rm -f "$saved"
}
trap restore_prc EXIT
printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$prc" >/dev/null
"${SUDO[@]}" chmod 755 "$prc"

samba_before=$(cat /run/samba/*.pid 2>/dev/null | tr '\n' ' ' || true)
status=0
if ! "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; then
  "${SUDO[@]}" apt-get update -qq &&
    "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null || status=$?
fi

# An nmbd bound to 137/138 on the host would disturb the namespace lab: stop, by PID, any
# Samba daemon that the install started anyway.
for pf in /run/samba/nmbd.pid /run/samba/smbd.pid /run/samba/samba.pid; do
  [ -r "$pf" ] || continue
  pid=$(head -n1 "$pf" | tr -dc '0-9')
  [ -n "$pid" ] || continue
  case " $samba_before " in *" $pid "*) continue ;; esac
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  case "$comm" in
    nmbd | smbd | samba)
      echo "setup: stopping $comm (pid $pid) started by the samba install"
      "${SUDO[@]}" kill -TERM "$pid" 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e "/proc/$pid" ] || break; sleep 0.5; done
      [ -e "/proc/$pid" ] && "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
      ;;
  esac
done

if [ "$status" != 0 ]; then
  echo "setup: apt-get install ${missing[*]} failed (exit $status)" >&2
  exit "$status"
fi
echo "setup: done"
