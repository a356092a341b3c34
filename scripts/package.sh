#!/usr/bin/env bash
# Build the Debian package of nbdgm with cargo-deb (docs/packaging.md) and print its path.
#
#   ./scripts/package.sh            # release build if needed, man pages, completions, .deb
#
# The release binary is built once: an existing target/release/nbdgm newer than every source
# file (e.g. the one `cargo test --workspace --release` just built and tested) is packaged as
# it is. Needs cargo-deb (`cargo install cargo-deb --version 3.8.0 --locked`) and, for the
# computed dependencies, dpkg-dev (dpkg-shlibdeps): ./scripts/setup.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
bin="$target/release/nbdgm"
assets="$target/release/assets"

command -v cargo-deb >/dev/null 2>&1 ||
  { echo "package: cargo-deb is missing: cargo install cargo-deb --version 3.8.0 --locked" >&2; exit 2; }

# Fresh: the binary exists and no library or binary source, manifest, lock file or embedded
# asset is newer (test files do not count: `cargo test` relinks no binary for them).
fresh() {
  [ -x "$bin" ] || return 1
  local newer
  newer=$(find crates/*/src crates/*/build.rs crates/*/Cargo.toml crates/*/assets crates/*/templates \
    Cargo.toml Cargo.lock -type f -newer "$bin" -print -quit 2>/dev/null || true)
  [ -z "$newer" ]
}
if fresh; then
  echo "package: reusing $bin (newer than every source file)" >&2
else
  echo "package: cargo build --release -p nbdgm" >&2
  cargo build --release --locked -p nbdgm
fi

# Man pages and completions from the CLI definition of this very binary.
rm -rf "$assets"
"$bin" generate man "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
for shell in bash zsh fish; do
  "$bin" generate completions "$shell" "$assets/completions" >/dev/null
done

# cargo-deb prints the .deb path on its last line.
deb=$(cargo deb -p nbdgm --no-build --locked --strip | tail -n 1)
[ -f "$deb" ] || { echo "package: cargo deb did not produce a package ($deb)" >&2; exit 1; }
echo "$deb"
