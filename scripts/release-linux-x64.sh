#!/usr/bin/env bash
# The Linux x64 (glibc) release path. .github/workflows/release.yml runs it for
# real, and it runs the same way on any Linux x64 machine with Node and npm:
#
#   1. build the addon (only with --build, or when containerarchive.linux-x64-gnu.node is missing)
#      against glibc 2.17 (cargo-zigbuild with zig as the linker: pip install ziglang),
#      and check that it needs no newer glibc symbol (scripts/check-glibc.js);
#   2. pack the platform package (a staged copy of npm/linux-x64-gnu/ plus the addon)
#      and the main package into OUT_DIR, exactly as `npm publish` would upload them;
#   3. check both tarballs and dry-run `npm publish` on them (no registry writes);
#   4. install both tarballs offline into a fresh project with no Rust on PATH,
#      and back up, restore and verify through the installed package and its CLI.
#
# Usage: scripts/release-linux-x64.sh [--build] [OUT_DIR]     (default OUT_DIR: dist/linux-x64-gnu)
# NAPI_BUILD_FLAGS adds flags to the build. GLIBC_BASELINE (default 2.17) is the
# oldest glibc the addon must load on.
set -euo pipefail

cd "$(dirname "$0")/.."
PLATFORM=linux-x64-gnu
TARGET=x86_64-unknown-linux-gnu
BINARY=containerarchive.$PLATFORM.node
GLIBC_BASELINE=${GLIBC_BASELINE:-2.17}

build=0
out=dist/$PLATFORM
for arg in "$@"; do
  case "$arg" in
    --build) build=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "release-linux-x64: unknown option $arg; usage: scripts/release-linux-x64.sh [--build] [OUT_DIR]" >&2; exit 2 ;;
    *) out=$arg ;;
  esac
done

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "release-linux-x64: this path runs on Linux x86_64 only (this is $(uname -s)-$(uname -m))" >&2
  exit 2
fi

step() { printf '\n== %s\n' "$*"; }

if [ "$build" = 1 ] || [ ! -f "$BINARY" ]; then
  step "build $TARGET against glibc $GLIBC_BASELINE"
  # cargo-zigbuild (napi installs it on first use) links with zig against the
  # baseline glibc: a target suffix .2.17 selects it. zig from PATH or pip's ziglang.
  if ! command -v zig >/dev/null && ! python3 -m ziglang version >/dev/null 2>&1; then
    echo "release-linux-x64: zig is needed to link against glibc $GLIBC_BASELINE; install it with: pip install ziglang" >&2
    exit 2
  fi
  # shellcheck disable=SC2086 # NAPI_BUILD_FLAGS is a list of flags
  npm run build -- -x --target "$TARGET.$GLIBC_BASELINE" ${NAPI_BUILD_FLAGS:-}
else
  step "using the existing $BINARY (pass --build to rebuild)"
fi
node -e "
  const b = require('./$BINARY');
  if (typeof b.NativeArchive !== 'function') throw new Error('$BINARY does not export NativeArchive');
"
file "$BINARY" 2>/dev/null || true

step "glibc baseline"
node scripts/check-glibc.js "$BINARY" "$GLIBC_BASELINE"

step "pack into $out"
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
node scripts/pack.js --platform "$PLATFORM" --binary "$BINARY" --out "$out" > "$out/pack.json"
node -e '
  const r = require(process.argv[1]);
  for (const t of [r.native, r.main]) {
    console.log(`${t.filename}  ${t.size} bytes (${t.unpackedSize} unpacked)`);
    for (const f of t.files) console.log(`  ${String(f.size).padStart(9)}  ${f.path}`);
  }
  const bad = r.main.files.filter((f) => /\.rs$|Cargo\.|\.node$|^(src|core|__test__|npm|scripts|bench|examples|target)\//.test(f.path));
  if (bad.length) throw new Error(`the main tarball must not contain: ${bad.map((f) => f.path).join(", ")}`);
  const names = r.native.files.map((f) => f.path).sort().join(" ");
  if (names !== "README.md containerarchive.linux-x64-gnu.node package.json") throw new Error(`unexpected platform tarball content: ${names}`);
' "$out/pack.json"
main_tgz=$(node -p "require('$out/pack.json').main.path")
native_tgz=$(node -p "require('$out/pack.json').native.path")

step "npm publish --dry-run (platform package first, then the main package)"
for tgz in "$native_tgz" "$main_tgz"; do
  npm publish --dry-run --offline --access public "$tgz" 2>&1 | grep -E '^npm (notice|warn)|^\+' | grep -Ev 'Unknown user config|requires you to be logged in' || true
done

step "offline install into a fresh project without Rust, then back up / restore / verify"
smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
# PATH without any directory that holds cargo or rustc.
clean_path=$(node -e '
  const fs = require("fs"), path = require("path");
  const dirs = process.env.PATH.split(":").filter((d) => d && !/\/\.(cargo|rustup)(\/|$)/.test(d)
    && !["cargo", "rustc"].some((c) => fs.existsSync(path.join(d, c))));
  const nodeDir = path.dirname(process.execPath);
  if (!dirs.includes(nodeDir)) dirs.unshift(nodeDir);
  process.stdout.write(dirs.join(":"));
')
(
  cd "$smoke"
  export PATH="$clean_path"
  unset CARGO_HOME RUSTUP_HOME
  if command -v cargo >/dev/null || command -v rustc >/dev/null; then
    echo "release-linux-x64: a Rust tool is still on PATH" >&2
    exit 1
  fi
  printf '{ "name": "smoke", "version": "1.0.0", "private": true }\n' > package.json
  npm install --offline --no-audit --no-fund --loglevel=error --cache "$smoke/.npm-cache" "$main_tgz" "$native_tgz"
  head -c 3000000 /dev/urandom > input.bin
  ./node_modules/.bin/containerarchive init repo --compression zstd
  ./node_modules/.bin/containerarchive backup repo input.bin --tag release=smoke
  ./node_modules/.bin/containerarchive restore repo latest -o restored.bin
  cmp input.bin restored.bin
  ./node_modules/.bin/containerarchive verify repo --level full
  node -e "
    const loaded = Object.keys(require.cache);
    require('@serve.zone/containerarchive');
    const addon = Object.keys(require.cache).filter((f) => f.endsWith('.node') && !loaded.includes(f));
    if (addon.length !== 1 || !addon[0].includes('node_modules/@serve.zone/containerarchive-$PLATFORM/')) {
      throw new Error('the addon must load from @serve.zone/containerarchive-$PLATFORM, loaded: ' + addon);
    }
    console.log('addon loaded from ' + addon[0].slice(process.cwd().length + 1));
  "
)

step "ready to publish"
ls -l "$native_tgz" "$main_tgz"
