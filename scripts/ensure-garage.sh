#!/usr/bin/env bash
# Makes sure the S3 tests have a Garage server binary (issue 10): installs
# garage 2.5.0 from crates.io with cargo, only when no `garage` is on PATH or
# in cargo's bin directory. About 10 minutes on 2 cores, once per machine.
# CONTAINERARCHIVE_SKIP_S3=1 skips the S3 tests and this install.
set -euo pipefail

VERSION=2.5.0
if [ "${CONTAINERARCHIVE_SKIP_S3:-}" = "1" ]; then
  echo "ensure-garage: CONTAINERARCHIVE_SKIP_S3=1, the S3 tests will be skipped"
  exit 0
fi

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
garage="$(command -v garage || true)"
if [ -z "$garage" ] && [ -x "$cargo_bin/garage" ]; then
  garage="$cargo_bin/garage"
fi

if [ -n "$garage" ]; then
  found="$("$garage" --version 2>/dev/null || true)"
  case "$found" in
    *"$VERSION"*) ;;
    *) echo "ensure-garage: warning: $garage is '$found', the tests are written against garage $VERSION" >&2 ;;
  esac
  exit 0
fi

echo "ensure-garage: installing garage $VERSION with cargo (about 10 minutes on 2 cores)..."
cargo install garage --locked --version "$VERSION"
"$cargo_bin/garage" --version
