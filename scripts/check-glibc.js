#!/usr/bin/env node
'use strict';
// Fails when a Linux addon needs a newer glibc than the documented baseline:
// reads the versioned symbols it imports (`objdump -T`) and compares each
// GLIBC_x.y with the baseline.
//
//   node scripts/check-glibc.js <file.node> [baseline, default 2.17]
//
// Exit 0: every symbol is at most the baseline; 1: newer symbols, listed; 2: usage or no objdump.

const { execFileSync } = require('node:child_process');

const BASELINE = '2.17';

function versionKey(v) {
  return v.split('.').map(Number);
}

function newer(a, b) {
  const [x, y] = [versionKey(a), versionKey(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  }
  return false;
}

/** { version -> [symbols] } of the GLIBC_ versions `file` imports. */
function glibcSymbols(file) {
  const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const byVersion = new Map();
  for (const line of out.split('\n')) {
    const m = /\bGLIBC_(\d+(?:\.\d+)+)\)?\s+(\S+)\s*$/.exec(line);
    if (!m) continue;
    if (!byVersion.has(m[1])) byVersion.set(m[1], []);
    byVersion.get(m[1]).push(m[2]);
  }
  return byVersion;
}

function check(file, baseline = BASELINE) {
  const symbols = glibcSymbols(file);
  const tooNew = [...symbols.entries()].filter(([v]) => newer(v, baseline)).sort(([a], [b]) => (newer(a, b) ? 1 : -1));
  const highest = [...symbols.keys()].sort((a, b) => (newer(a, b) ? 1 : -1)).at(-1) ?? null;
  return { highest, tooNew };
}

if (require.main === module) {
  const [file, baseline = BASELINE] = process.argv.slice(2);
  if (!file || !/^\d+\.\d+$/.test(baseline)) {
    console.error('usage: node scripts/check-glibc.js <file.node> [baseline, e.g. 2.17]');
    process.exit(2);
  }
  let result;
  try {
    result = check(file, baseline);
  } catch (err) {
    console.error(`check-glibc: cannot read ${file} with objdump (${err.code || err.message}); install binutils`);
    process.exit(2);
  }
  if (result.tooNew.length > 0) {
    console.error(`check-glibc: ${file} needs glibc ${result.highest}, newer than the baseline ${baseline}:`);
    for (const [v, syms] of result.tooNew) console.error(`  GLIBC_${v}: ${syms.join(', ')}`);
    console.error('build it with the baseline toolchain: npm run build -- -x --target x86_64-unknown-linux-gnu.2.17 (needs zig: pip install ziglang)');
    process.exit(1);
  }
  console.log(`check-glibc: ${file} needs at most glibc ${result.highest ?? '(none)'} (baseline ${baseline}): ok`);
}

module.exports = { check, newer };
