#!/usr/bin/env bash
# Build the Debian package (scripts/package.sh), install it, check what it installed, purge it.
#
# scripts/test.sh runs this after `cargo test --workspace --release`, so the release binary
# just tested is the one packaged (no second build). Needs root (dpkg -i): as a normal user,
# or without dpkg, man-db or systemd-analyze, it prints SKIPPED and passes, except with
# CI=true, where a missing prerequisite fails. Its closing line has cargo's
# `test result: ...` form, so scripts/test.sh counts its checks with the cargo tests.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
start=$(date +%s)
passed=0
failed=0

result() {
  local status=ok
  [ "$failed" = 0 ] || status=FAILED
  echo "test result: $status. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out; finished in $(($(date +%s) - start))s"
}
skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "package-test: $1 (required with CI=true)" >&2
    failed=$((failed + 1))
    result
    exit 1
  fi
  echo "package-test: SKIPPED: $1"
  result
  exit 0
}
check() { # check NAME COMMAND...: one counted check
  local name=$1
  shift
  if "$@"; then
    echo "package-test: ok: $name"
    passed=$((passed + 1))
  else
    echo "package-test: FAILED: $name" >&2
    failed=$((failed + 1))
  fi
}

[ "$(id -u)" = 0 ] || skip "installing a package needs root"
PATH="$PATH:/usr/sbin:/sbin"
for tool in dpkg apt-get dpkg-shlibdeps man systemd-analyze adduser gzip; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is missing (./scripts/setup.sh installs it)"
done
if dpkg-query -W -f='${Status}' nbdgm 2>/dev/null | grep -q 'ok installed'; then
  skip "a package nbdgm is installed already; this test installs and purges its own (apt-get purge nbdgm)"
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "package-test: installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet ||
    skip "cargo install cargo-deb failed"
fi

user_existed=0
getent passwd nbdgm >/dev/null && user_existed=1
cleanup() {
  dpkg --purge nbdgm >/dev/null 2>&1 || true
  if [ "$user_existed" = 0 ]; then
    getent passwd nbdgm >/dev/null && deluser --quiet --system nbdgm >/dev/null 2>&1
    getent group nbdgm >/dev/null && delgroup --quiet --system nbdgm >/dev/null 2>&1
  fi
  return 0
}
trap cleanup EXIT

deb=$(./scripts/package.sh | tail -n 1)
echo "package-test: built $deb"
check "package built" test -f "$deb"
check "depends on libpcap0.8 (computed) and adduser" \
  sh -c "dpkg-deb -f '$deb' Depends | grep -q 'libpcap0.8' && dpkg-deb -f '$deb' Depends | grep -q adduser"

# Install as a user would (apt resolves the dependencies); no service is started.
check "apt-get install ./nbdgm_*.deb" \
  sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends '$(realpath "$deb")' >/dev/null 2>&1"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
check "nbdgm --version prints nbdgm $version" sh -c "[ \"\$(/usr/bin/nbdgm --version)\" = 'nbdgm $version' ]"
check "man -w nbdgm" sh -c "[ \"\$(man -w nbdgm)\" = /usr/share/man/man1/nbdgm.1.gz ]"
check "man -w nbdgm-serve nbdgm-monitor-run" sh -c "man -w nbdgm-serve nbdgm-monitor-run >/dev/null"
check "man nbdgm-listen renders its examples" sh -c "MANWIDTH=120 man nbdgm-listen 2>/dev/null | grep -q 'nbdgm listen --name'"
for unit in nbdgm.service nbdgm-monitor.service nbdgm-monitor-agent.service; do
  check "systemd-analyze verify $unit" systemd-analyze verify "/lib/systemd/system/$unit"
  check "$unit is not enabled" test ! -e "/etc/systemd/system/multi-user.target.wants/$unit"
done
check "system user nbdgm (no login, home /nonexistent, group nbdgm)" sh -c '
  IFS=: read -r _ _ uid gid _ home shell <<EOF
$(getent passwd nbdgm)
EOF
  [ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] && [ "$shell" = /usr/sbin/nologin ] &&
    [ "$(getent group nbdgm | cut -d: -f3)" = "$gid" ]'
for f in nbdgm.toml monitor.toml watch.toml audit.toml; do
  check "/etc/nbdgm/$f is a conffile, 0640 root:nbdgm" sh -c "
    [ \"\$(stat -c '%a %U %G' /etc/nbdgm/$f)\" = '640 root nbdgm' ] &&
      dpkg-query -W -f='\${Conffiles}' nbdgm | grep -q ' /etc/nbdgm/$f '"
done
# The service user reads its configuration (group nbdgm), and the shipped files validate.
check "nbdgm serve --check-config as user nbdgm" sh -c \
  "runuser -u nbdgm -- /usr/bin/nbdgm serve --config /etc/nbdgm/nbdgm.toml --check-config >/dev/null"
check "nbdgm monitor run --check-config as user nbdgm" sh -c \
  "runuser -u nbdgm -- /usr/bin/nbdgm monitor run --check-config --config /etc/nbdgm/monitor.toml >/dev/null"
check "nbdgm audit --watch reads /etc/nbdgm/audit.toml (one audit)" sh -c \
  "/usr/bin/nbdgm audit --watch --no-firewall --no-events --count 1 --config /etc/nbdgm/audit.toml >/dev/null"
check "completions for bash, zsh, fish" test -s /usr/share/bash-completion/completions/nbdgm \
  -a -s /usr/share/zsh/vendor-completions/_nbdgm -a -s /usr/share/fish/vendor_completions.d/nbdgm.fish
check "bash completion offers the subcommands" bash -c '
  source /usr/share/bash-completion/completions/nbdgm
  COMP_WORDS=(nbdgm se); COMP_CWORD=1; COMP_LINE="nbdgm se"; COMP_POINT=${#COMP_LINE}
  _nbdgm nbdgm se nbdgm; [[ " ${COMPREPLY[*]} " == *" serve "* && " ${COMPREPLY[*]} " == *" send "* ]]'
check "docs in /usr/share/doc/nbdgm" test -s /usr/share/doc/nbdgm/configuration.md -a -s /usr/share/doc/nbdgm/copyright

check "dpkg --purge nbdgm" sh -c 'dpkg --purge nbdgm >/dev/null'
check "purge removed the binary, units and /etc/nbdgm" \
  test ! -e /usr/bin/nbdgm -a ! -e /lib/systemd/system/nbdgm.service -a ! -e /etc/nbdgm
result
[ "$failed" = 0 ]
