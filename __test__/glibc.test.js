'use strict';

// scripts/check-glibc.js, the release path's guard on the glibc baseline: it
// must fail on an addon that needs a newer glibc and pass on one that does not.
// (The release build itself, cargo-zigbuild against glibc 2.17, takes minutes;
// scripts/release-linux-x64.sh runs it and then this check.)

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { PKG_DIR } = require('./helpers');
const { check, newer } = require('../scripts/check-glibc');

const BINARY = path.join(PKG_DIR, 'containerarchive.linux-x64-gnu.node');
const linuxGnu = process.platform === 'linux' && process.arch === 'x64' && Boolean(process.report.getReport().header.glibcVersionRuntime);

describe('glibc baseline check', { skip: !linuxGnu && 'only for the linux-x64-gnu addon' }, () => {
  it('compares versions numerically', () => {
    assert.equal(newer('2.34', '2.17'), true);
    assert.equal(newer('2.17', '2.17'), false);
    assert.equal(newer('2.2.5', '2.17'), false);
    assert.equal(newer('2.18', '2.17'), true);
    assert.equal(newer('3.0', '2.99'), true);
  });

  it('fails, listing the symbols, when the addon needs more than the baseline; passes when it does not', () => {
    const { highest, tooNew } = check(BINARY, '99.0');
    assert.match(highest, /^2\.\d+$/, 'the addon imports versioned glibc symbols');
    assert.deepEqual(tooNew, [], 'nothing is newer than glibc 99.0');
    // Every addon imports symbols of glibc 2.2.5 or later, so a 2.0 baseline must fail.
    const strict = spawnSync(process.execPath, [path.join(PKG_DIR, 'scripts', 'check-glibc.js'), BINARY, '2.0'], { encoding: 'utf8' });
    assert.equal(strict.status, 1, strict.stderr);
    assert.match(strict.stderr, /newer than the baseline 2\.0/);
    assert.match(strict.stderr, /GLIBC_2\.\d+: \w+/, 'it names the symbols');
    const ok = spawnSync(process.execPath, [path.join(PKG_DIR, 'scripts', 'check-glibc.js'), BINARY, highest], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
  });
});
