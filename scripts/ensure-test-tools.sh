#!/usr/bin/env bash
# Optional tools some tests use when present: bsdtar (libarchive-tools), for
# the catalog test of tars that libarchive writes. Installed from Debian's
# packages when missing and apt-get can run here; otherwise that one case
# is skipped with a message (npm test still passes).
set -uo pipefail

if command -v bsdtar >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-tools: no bsdtar and no apt-get; the bsdtar catalog case will be skipped" >&2
  exit 0
fi
as_root=()
if [ "$(id -u)" != "0" ]; then
  if sudo -n true 2>/dev/null; then as_root=(sudo -n); else
    echo "ensure-test-tools: no bsdtar, and installing it needs root; the bsdtar catalog case will be skipped" >&2
    exit 0
  fi
fi
echo "ensure-test-tools: installing libarchive-tools (bsdtar)..."
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends libarchive-tools >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update >/dev/null 2>&1
  "${as_root[@]}" apt-get install -y --no-install-recommends libarchive-tools >/dev/null 2>&1 ||
    echo "ensure-test-tools: could not install libarchive-tools; the bsdtar catalog case will be skipped" >&2
fi
exit 0
