'use strict';

// `containerarchive forget` through the real binary: prefixes, --dry-run that
// changes nothing, unknown ids (exit 2, nothing removed), --prune, --json.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { tmpFor, MiB, KiB, PKG_DIR, randomBytes, treeState } = require('./helpers');

const BIN = path.join(PKG_DIR, 'bin', 'containerarchive.js');
const ENV_VAR = 'CONTAINERARCHIVE_PASSPHRASE';
const T = { timeout: 120000 };

function cli(args, { input } = {}) {
  const env = { ...process.env };
  delete env[ENV_VAR];
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, [BIN, ...args], { input: input === undefined ? '' : input, env, maxBuffer: 64 * MiB, timeout: 60000 });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout.toString(), stderr: r.stderr.toString() };
}

function expectExit(r, code, what) {
  assert.equal(r.status, code, `${what}: expected exit ${code}, got ${r.status}\n--- stdout ---\n${r.out}\n--- stderr ---\n${r.stderr}`);
  return r;
}
const ok = (r, what) => expectExit(r, 0, what);
const snapshotIds = (repo) => JSON.parse(ok(cli(['snapshots', repo, '--json']), 'snapshots --json').out).map((s) => s.id);
const stats = (repo) => JSON.parse(ok(cli(['stats', repo, '--json']), 'stats --json').out);
const lines = (text) => text.split('\n').filter((l) => l.length > 0);

/** Three snapshots of distinct data, tagged a, b and c (each backup writes its own packs). */
function threeSnapshots(t) {
  const repo = path.join(tmpFor(t), 'repo');
  ok(cli(['init', repo]), 'init');
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    ok(cli(['backup', repo, '-', '--tag', `name=${name}`], { input: randomBytes(300 * KiB, i + 1) }), `backup ${name}`);
  }
  return { repo, ids: snapshotIds(repo) };
}

describe('CLI: forget', () => {
  it('forgets by prefix and full id, prints what it removed, and leaves the data for prune', T, (t) => {
    const { repo, ids: [a, b, c] } = threeSnapshots(t);
    const before = stats(repo);
    const r = ok(cli(['forget', repo, c.slice(0, 8), a, a.slice(0, 12).toUpperCase()]), 'forget');
    const out = lines(r.out);
    assert.equal(out.length, 3, r.out);
    assert.match(out[0], new RegExp(`^removed  ${a.slice(0, 12)}  \\S+ \\S+  name=a$`));
    assert.match(out[1], new RegExp(`^removed  ${c.slice(0, 12)}  \\S+ \\S+  name=c$`));
    assert.equal(out[2], 'forget: removed 2 snapshots; their data stays until the next prune (or forget with --prune)');
    assert.deepEqual(snapshotIds(repo), [b]);
    const after = stats(repo);
    assert.deepEqual(after.packs, before.packs, 'without --prune no pack is deleted');
    assert.ok(after.unreferencedChunks.count > 0);
  });

  it('--dry-run prints what would go and changes nothing', T, (t) => {
    const { repo, ids: [a, b] } = threeSnapshots(t);
    const before = treeState(repo);
    const plain = ok(cli(['forget', repo, a.slice(0, 8), '--dry-run']), 'forget --dry-run');
    assert.match(lines(plain.out)[0], new RegExp(`^remove   ${a.slice(0, 12)}  `));
    assert.equal(lines(plain.out)[1], 'forget (dry run): would remove 1 snapshot; nothing was changed');
    const pruning = ok(cli(['forget', repo, a, b, '--dry-run', '--prune']), 'forget --dry-run --prune');
    assert.match(lines(pruning.out)[2], /^forget \(dry run\): would remove 2 snapshots, delete \d+ packs?, repack \d+, free \d[\d.]* (B|KiB|MiB); nothing was changed$/);
    assert.deepEqual(treeState(repo), before, 'a dry run changes nothing');
  });

  it('an unknown or refused id exits 2 and removes nothing', T, (t) => {
    const { repo, ids } = threeSnapshots(t);
    const before = treeState(repo);
    const unknown = ids[0].startsWith('ffffffff') ? 'eeeeeeee' : 'ffffffff';
    let r = expectExit(cli(['forget', repo, ids[0], unknown, '--prune']), 2, 'unknown id');
    assert.match(r.stderr, new RegExp(`${unknown} does not exist; nothing was removed; list the snapshots with: containerarchive snapshots `));
    r = expectExit(cli(['forget', repo, ids[1], 'latest']), 2, 'latest');
    assert.match(r.stderr, /"latest" names whichever snapshot is newest.*nothing was removed/);
    r = expectExit(cli(['forget', repo, 'xyz']), 2, 'not an id');
    assert.match(r.stderr, /nothing was removed/);
    r = expectExit(cli(['forget', repo]), 2, 'no id');
    assert.match(r.stderr, /forget: missing <id>/);
    assert.deepEqual(treeState(repo), before);
    assert.deepEqual(snapshotIds(repo), ids);
  });

  it('--prune frees the space at once; --json gives the report', T, (t) => {
    const { repo, ids: [a, b, c] } = threeSnapshots(t);
    const before = stats(repo);
    const r = ok(cli(['forget', repo, a, b, '--prune', '--json']), 'forget --prune --json');
    const report = JSON.parse(r.out);
    assert.deepEqual(Object.keys(report).sort(), ['dryRun', 'freedBytes', 'pruned', 'removedPacks', 'removedSnapshots', 'repackedPacks']);
    assert.deepEqual(report.removedSnapshots, [a, b]);
    assert.equal(report.dryRun, false);
    assert.equal(report.pruned, true);
    const after = stats(repo);
    assert.equal(report.freedBytes, before.packs.bytes - after.packs.bytes);
    assert.ok(after.packs.bytes < before.packs.bytes / 2, `${before.packs.bytes} -> ${after.packs.bytes}`);
    assert.deepEqual(snapshotIds(repo), [c]);
    ok(cli(['verify', repo, '--level', 'full']), 'verify --level full');
    const plain = JSON.parse(ok(cli(['forget', repo, c, '--json', '--dry-run']), 'forget --json').out);
    assert.deepEqual(plain, { dryRun: true, removedSnapshots: [c], pruned: false });
    const text = ok(cli(['forget', repo, c, '--prune']), 'forget --prune');
    assert.match(lines(text.out)[1], /^forget: removed 1 snapshot, deleted \d+ packs?, repacked \d+, freed \d[\d.]* (B|KiB|MiB) in /);
    assert.deepEqual(snapshotIds(repo), []);
  });
});
