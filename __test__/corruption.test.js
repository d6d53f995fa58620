'use strict';

// Corruption matrix: damage one file of a healthy repository (several snapshots, many packs,
// parity RS(4,1)), then check that
//   (a) the weakest verify level that should see the damage sees it (and a weaker one does
//       not, where that is meaningful), with an issue naming the damaged file;
//   (b) repair() restores full health (verify full ok) or names what it cannot save;
//   (c) every snapshot not named restores byte-identical;
//   (d) a following ingest works and restores.
// Each case works on a fresh copy of a template repository built once per describe().

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const {
  KiB,
  MiB,
  makeTmp,
  removeTmp,
  tmpFor,
  randomBytes,
  textishBytes,
  chunkedStream,
  assertRestores,
  rejectsWithCode,
  loadPackage,
} = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive, ArchiveError } = loadPackage();

const PASSPHRASE = 'integrity matrix passphrase';
const T = { timeout: 120000 };

// ---------------------------------------------------------------------------
// Template repository
// ---------------------------------------------------------------------------

function fixtureData() {
  const A = randomBytes(1 * MiB + 123, 101);
  const B = randomBytes(1 * MiB + 512 * KiB + 7, 202);
  const C = textishBytes(1 * MiB + 55, 303);
  // D shares most of its data with A and B
  const D = Buffer.concat([A.subarray(0, 512 * KiB), randomBytes(256 * KiB + 9, 404), B.subarray(512 * KiB)]);
  return [
    { name: 'A', data: A },
    { name: 'B', data: B },
    { name: 'C', data: C },
    { name: 'D', data: D },
  ];
}

async function buildTemplate(dir, passphrase) {
  const repo = await ContainerArchive.init(dir, { ...F.SMALL_REPO, ...(passphrase ? { passphrase } : {}) });
  const snaps = [];
  try {
    let seed = 1;
    for (const d of fixtureData()) {
      const s = await repo.ingest(chunkedStream(d.data, seed++), { tags: { name: d.name } });
      snaps.push({ ...d, id: s.id });
      if (d.name === 'D') assert.ok(s.reusedChunks > 0, 'fixture: D must share chunks with A and B');
    }
    for (const level of ['quick', 'standard', 'full']) await F.assertHealthy(repo, level, 'on the fresh template');
  } finally {
    await repo.close();
  }

  // layout preconditions the cases rely on
  const packs = F.packIds(dir);
  assert.ok(packs.length >= 16, `fixture: expected many packs, got ${packs.length}`);
  assert.deepEqual(F.idxIds(dir), packs, 'fixture: every pack has an .idx');
  assert.ok(fs.existsSync(path.join(dir, 'packs', 'parity', 'config.json')), 'packs/parity/config.json (the config copy) must exist');
  assert.ok(F.groupFiles(dir).length >= 2, `several parity groups expected, got ${F.groupFiles(dir).length}`);
  assert.ok(F.shardFiles(dir).length >= F.groupFiles(dir).length, 'at least one parity shard per group');
  for (const g of F.groupFiles(dir)) assert.match(g, /^[0-9a-f]{32}\.group$/, `group manifest name ${g}`);
  for (const s of F.shardFiles(dir)) assert.match(s, /^[0-9a-f]{64}\.par$/, `parity shard name ${s}`);
  assert.deepEqual(F.lockFiles(dir), [], 'no lock record may remain after close()');
  assert.deepEqual(F.tmpLeftovers(dir), []);
  if (!passphrase) {
    const groups = F.parityGroups(dir);
    const seen = new Map();
    for (const g of groups) {
      assert.ok(g.packs.length >= 1 && g.packs.length <= 4, `group ${g.name} names ${g.packs.length} packs (dataShards is 4)`);
      for (const p of g.packs) seen.set(p, (seen.get(p) || 0) + 1);
    }
    for (const p of packs) assert.equal(seen.get(p), 1, `pack ${p} must be in exactly one parity group`);
  }
  return snaps;
}

// ---------------------------------------------------------------------------
// Per-case helpers
// ---------------------------------------------------------------------------

function makeEnv(passphrase) {
  const env = { root: null, template: null, snaps: null, passphrase };
  before(async () => {
    env.root = makeTmp();
    env.template = path.join(env.root, 'template');
    env.snaps = await buildTemplate(env.template, passphrase);
  }, T);
  after(() => removeTmp(env.root));
  return env;
}

/** A fresh copy of the template for test `t`. */
function freshCopy(t, env) {
  const dir = path.join(tmpFor(t), 'repo');
  fs.cpSync(env.template, dir, { recursive: true });
  return dir;
}

async function openRepo(t, dir, env) {
  const repo = await ContainerArchive.open(dir, env.passphrase ? { passphrase: env.passphrase } : undefined);
  t.after(() => repo.close().catch(() => {}), { timeout: 30000 });
  return repo;
}

async function restoresAll(repo, snaps, except = []) {
  for (const s of snaps) {
    if (except.includes(s.id)) continue;
    await assertRestores(repo, s.id, s.data);
  }
}

/** (d): a new ingest works, restores, and leaves the repository healthy. */
async function followingIngest(repo, seed) {
  const data = Buffer.concat([randomBytes(200 * KiB + 3, seed), textishBytes(100 * KiB, seed + 1)]);
  const snap = await repo.ingest(chunkedStream(data, seed));
  await assertRestores(repo, snap.id, data);
  return snap;
}

/** A pack of at least `minSize` bytes, picked deterministically. */
function pickPack(dir, minSize = 16 * KiB) {
  const ids = F.packIds(dir).filter((id) => fs.statSync(path.join(dir, F.rel.pack(id))).size >= minSize);
  assert.ok(ids.length > 0);
  return ids[Math.floor(ids.length / 2)];
}

/**
 * (a): the damage is seen at `level` as `kind` naming `mentions`; a weaker level (when
 * `cleanAt` is given) sees nothing; the strongest level sees it too.
 */
async function assertDetected(repo, { level, kind, mentions, pack, cleanAt }) {
  if (cleanAt) {
    const weak = await F.verify(repo, cleanAt);
    assert.equal(weak.ok, true, `verify(${cleanAt}) must not see this damage (it reads no pack bodies): ${F.fmt(weak.errors)}`);
  }
  const r = await F.verify(repo, level);
  assert.equal(r.ok, false, `verify(${level}) must see the damage`);
  F.assertIssue(r, { kind, mentions, pack });
  if (level !== 'full') {
    const full = await F.verify(repo, 'full');
    assert.equal(full.ok, false, 'verify(full) must see the damage too');
    F.assertIssue(full, { kind, mentions });
  }
  return r;
}

async function repairClean(repo) {
  const r = await repo.repair();
  F.assertRepairShape(r);
  assert.deepEqual(r.unrecoverable, [], `nothing should be unrecoverable: ${F.fmt(r.unrecoverable)}`);
  assert.deepEqual(r.errors, [], `repair should fix everything: ${F.fmt(r.errors)}`);
  return r;
}

/** (b)+(c)+(d) after a repair that should have fixed everything, then again after reopening. */
async function assertFullyRecovered(t, repo, dir, env, seed) {
  await F.assertHealthy(repo, 'full', 'after repair');
  await restoresAll(repo, env.snaps);
  assert.deepEqual(F.tmpLeftovers(dir), [], 'repair must leave no .tmp- files');
  assert.deepEqual(F.lockFiles(dir), [], 'repair must leave no lock record');
  await followingIngest(repo, seed);
  await F.assertHealthy(repo, 'full', 'after repair and a following ingest');
  await repo.close();
  const again = await openRepo(t, dir, env);
  await F.assertHealthy(again, 'standard', 'after repair, reopened');
  await assertRestores(again, env.snaps[0].id, env.snaps[0].data);
}

// ---------------------------------------------------------------------------
// Cases shared by the unencrypted and encrypted matrices
// ---------------------------------------------------------------------------

const PACK_CASES = {
  'bit flip inside a pack body (offset 100) -> standard/pack, rebuilt from parity': {
    damage(dir, id) {
      F.flipByte(path.join(dir, F.rel.pack(id)), 100);
    },
    level: 'standard',
    cleanAt: 'quick',
    kind: 'pack',
  },
  'truncated pack (last 100 bytes dropped) -> quick/pack-size, rebuilt from parity': {
    damage(dir, id) {
      F.truncateBy(path.join(dir, F.rel.pack(id)), 100);
    },
    level: 'quick',
    kind: 'pack-size',
  },
  'zero-filled 4 KiB in the middle of a pack -> standard/pack, rebuilt from parity': {
    damage(dir, id) {
      const file = path.join(dir, F.rel.pack(id));
      const size = fs.statSync(file).size;
      F.overwrite(file, Math.floor(size / 2) - 2 * KiB, Buffer.alloc(4 * KiB));
    },
    level: 'standard',
    cleanAt: 'quick',
    kind: 'pack',
  },
  'deleted pack -> quick/missing-pack, rebuilt from parity': {
    damage(dir, id) {
      fs.unlinkSync(path.join(dir, F.rel.pack(id)));
    },
    level: 'quick',
    kind: 'missing-pack',
  },
};

function packCase(env, name, spec, seed) {
  it(name, T, async (t) => {
    const dir = freshCopy(t, env);
    const id = pickPack(dir);
    const original = fs.readFileSync(path.join(dir, F.rel.pack(id)));
    spec.damage(dir, id);
    const repo = await openRepo(t, dir, env);

    await assertDetected(repo, { level: spec.level, kind: spec.kind, mentions: [id], pack: id, cleanAt: spec.cleanAt });

    const r = await repairClean(repo);
    assert.ok(r.packsRepaired >= 1, `packsRepaired must count the rebuilt pack, got ${r.packsRepaired}`);
    const rebuilt = fs.readFileSync(path.join(dir, F.rel.pack(id)));
    assert.ok(rebuilt.equals(original), 'the rebuilt pack must be byte-identical to the original (its id is its SHA-256)');
    await assertFullyRecovered(t, repo, dir, env, seed);
  });
}

function idxCase(env, seed, prefix = '') {
  it(prefix + 'deleted .idx -> quick/missing-idx, repair rewrites it', T, async (t) => {
    const dir = freshCopy(t, env);
    const id = pickPack(dir);
    const idxFile = path.join(dir, F.rel.idx(id));
    const original = fs.readFileSync(idxFile);
    fs.unlinkSync(idxFile);
    const repo = await openRepo(t, dir, env);

    await assertDetected(repo, { level: 'quick', kind: 'missing-idx', mentions: [id], pack: id });

    const r = await repairClean(repo);
    assert.ok(r.packsRepaired >= 1, `packsRepaired counts packs whose .idx was rewritten, got ${r.packsRepaired}`);
    assert.ok(fs.existsSync(idxFile), 'repair must rewrite the .idx');
    assert.ok(fs.readFileSync(idxFile).equals(original), 'the rewritten .idx must equal the original (it is a copy of the pack header)');
    await assertFullyRecovered(t, repo, dir, env, seed);
  });
}

function indexDirCase(env, seed, prefix = '') {
  it(prefix + 'deleted index/ contents -> quick/missing-chunk|unindexed-pack, repair rebuilds, dedup still works', T, async (t) => {
    const dir = freshCopy(t, env);
    F.emptyDir(path.join(dir, 'index'));
    const repo = await openRepo(t, dir, env);

    const q = await F.verify(repo, 'quick');
    assert.equal(q.ok, false, 'verify(quick) must see that the index is gone');
    F.assertIssue(q, { kind: ['missing-chunk', 'unindexed-pack'] });

    const r = await repairClean(repo);
    assert.equal(r.indexRebuilt, true, 'repair must report indexRebuilt');
    assert.ok(F.indexFiles(dir).length >= 1, 'repair must write index files');

    await F.assertHealthy(repo, 'full', 'after rebuilding the index');
    await restoresAll(repo, env.snaps);
    // dedup against the rebuilt index: the same data again stores nothing new
    for (const s of env.snaps.slice(0, 2)) {
      const again = await repo.ingest(chunkedStream(s.data, 77));
      assert.equal(again.newChunks, 0, `re-ingesting ${s.name} after the index rebuild must store no new chunk`);
      assert.equal(again.storedSize, 0);
      await assertRestores(repo, again.id, s.data);
    }
    await assertFullyRecovered(t, repo, dir, env, seed);
    // and after reopening, too
    const reopened = await openRepo(t, dir, env);
    const once = await reopened.ingest(chunkedStream(env.snaps[2].data, 78));
    assert.equal(once.newChunks, 0, 'dedup after reopening the repaired repository');
  });
}

// ---------------------------------------------------------------------------
// Unencrypted matrix
// ---------------------------------------------------------------------------

describe('corruption matrix (unencrypted)', () => {
  const env = makeEnv(undefined);

  let seed = 1000;
  for (const [name, spec] of Object.entries(PACK_CASES)) packCase(env, name, spec, seed++);
  idxCase(env, seed++);
  indexDirCase(env, seed++);

  it('corrupt snapshot manifest -> quick/snapshot, restores from its copy, repair rewrites it', T, async (t) => {
    const dir = freshCopy(t, env);
    const victim = env.snaps[2];
    const file = path.join(dir, F.rel.snapshot(victim.id));
    const size = fs.statSync(file).size;
    F.overwrite(file, Math.floor(size / 2), Buffer.alloc(16, 0xff));
    const repo = await openRepo(t, dir, env);

    F.assertIssue(await F.verify(repo, 'quick'), { kind: 'snapshot', mentions: [victim.id] });
    await restoresAll(repo, env.snaps, []);
    const r = await repo.repair();
    F.assertRepairShape(r);
    assert.deepEqual(r.unrecoverable, [], `the copy restores it: ${F.fmt(r.unrecoverable)}`);
    assert.equal(r.snapshotsRepaired, 1);
    await F.assertHealthy(repo, 'full', 'after repair restored the manifest');
    await restoresAll(repo, env.snaps, []);
  });

  it('corrupt snapshot manifest and copy -> quick/snapshot, repair names it unrecoverable and drops it', T, async (t) => {
    const dir = freshCopy(t, env);
    const victim = env.snaps[2]; // C: shares nothing with the others
    const file = path.join(dir, F.rel.snapshot(victim.id));
    const size = fs.statSync(file).size;
    F.overwrite(file, Math.floor(size / 2), Buffer.alloc(16, 0xff));
    F.overwrite(path.join(dir, F.rel.snapshotCopy(victim.id)), Math.floor(size / 2), Buffer.alloc(16, 0xff));
    const repo = await openRepo(t, dir, env);

    const q = await F.verify(repo, 'quick');
    F.assertIssue(q, { kind: 'snapshot', mentions: [victim.id] });

    const r = await repo.repair();
    F.assertRepairShape(r);
    const named = r.unrecoverable.filter((u) => u.snapshots.includes(victim.id));
    assert.ok(named.length >= 1, `repair must name ${victim.id} in unrecoverable[].snapshots: ${F.fmt(r.unrecoverable)}`);
    const others = env.snaps.filter((s) => s.id !== victim.id).map((s) => s.id);
    for (const u of r.unrecoverable) {
      for (const s of u.snapshots) assert.ok(!others.includes(s), `healthy snapshot ${s} must not be named unrecoverable`);
    }

    const listed = (await repo.listSnapshots()).map((s) => s.id);
    assert.ok(!listed.includes(victim.id), 'the unreadable snapshot must no longer be listed after repair');
    assert.ok(fs.existsSync(`${file}.damaged`), 'repair keeps the unreadable manifest as snapshots/<id>.damaged (README)');
    assert.deepEqual(listed.slice().sort(), others.slice().sort(), 'every other snapshot is still listed');
    await F.assertHealthy(repo, 'full', 'after repair dropped the unreadable manifest');
    await restoresAll(repo, env.snaps, [victim.id]);
    await followingIngest(repo, 2001);
    await F.assertHealthy(repo, 'full', 'after a following ingest');
    // re-ingesting the lost snapshot's data stores it again in full
    const redo = await repo.ingest(chunkedStream(victim.data, 5));
    await assertRestores(repo, redo.id, victim.data);
  });

  it('corrupt .idx (a byte flipped in its header copy) -> quick/idx, repair rewrites it', T, async (t) => {
    const dir = freshCopy(t, env);
    const id = pickPack(dir);
    const idxFile = path.join(dir, F.rel.idx(id));
    const original = fs.readFileSync(idxFile);
    F.flipByte(idxFile, 16 + 4 + 5); // inside the first entry's chunk id
    const repo = await openRepo(t, dir, env);

    await assertDetected(repo, { level: 'quick', kind: 'idx', mentions: [id], pack: id });
    const r = await repairClean(repo);
    assert.ok(r.packsRepaired >= 1, `packsRepaired counts packs whose .idx was rewritten, got ${r.packsRepaired}`);
    assert.ok(fs.readFileSync(idxFile).equals(original), 'the rewritten .idx must equal the original');
    await assertFullyRecovered(t, repo, dir, env, 2007);
  });

  it('truncated index file -> quick/index, repair rebuilds the index', T, async (t) => {
    const dir = freshCopy(t, env);
    const files = F.indexFiles(dir);
    assert.ok(files.length >= 2, 'fixture: one index file per ingest');
    const victim = files.reduce((a, b) => (fs.statSync(path.join(dir, 'index', a)).size >= fs.statSync(path.join(dir, 'index', b)).size ? a : b));
    const file = path.join(dir, 'index', victim);
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    const repo = await openRepo(t, dir, env); // a damaged index file must not lock the user out

    const q = await F.verify(repo, 'quick');
    assert.equal(q.ok, false);
    F.assertIssue(q, { kind: 'index', mentions: [victim] });

    const r = await repairClean(repo);
    assert.equal(r.indexRebuilt, true, 'repair must report indexRebuilt');
    await assertFullyRecovered(t, repo, dir, env, 2002);
  });

  it('corrupt parity shard -> standard/parity, repair rewrites parity', T, async (t) => {
    const dir = freshCopy(t, env);
    const shards = F.shardFiles(dir);
    const victim = shards[Math.floor(shards.length / 2)];
    const file = path.join(dir, F.rel.parity(victim));
    const original = fs.readFileSync(file);
    F.flipByte(file, Math.floor(original.length / 2), 0x80);
    const repo = await openRepo(t, dir, env);

    const quick = await F.verify(repo, 'quick');
    assert.equal(quick.ok, true, `verify(quick) reads no parity bodies, must not see a flipped byte: ${F.fmt(quick.errors)}`);
    const std = await F.verify(repo, 'standard');
    assert.equal(std.ok, false, 'verify(standard) hashes parity shards and must see the damage');
    const issues = F.assertIssue(std, { kind: 'parity', mentions: [victim.replace(/\.par$/, '')] });
    assert.ok(
      issues.some((e) => e.pack === victim || e.pack === victim.replace(/\.par$/, '')),
      `a parity issue's pack must be the parity file name ${victim}: ${F.fmt(issues)}`,
    );

    const r = await repairClean(repo);
    assert.ok(r.parityRewritten >= 1, `parityRewritten must be >= 1, got ${r.parityRewritten}`);
    const now = fs.existsSync(file) ? fs.readFileSync(file) : null;
    if (now !== null) assert.ok(now.equals(original), `if ${victim} is kept, it must have its original content again`);
    await assertFullyRecovered(t, repo, dir, env, 2003);

    // parity must really protect again: lose a pack now and repair it
    const pack = pickPack(dir);
    const packBytes = fs.readFileSync(path.join(dir, F.rel.pack(pack)));
    fs.unlinkSync(path.join(dir, F.rel.pack(pack)));
    const repo2 = await openRepo(t, dir, env);
    await repairClean(repo2);
    assert.ok(fs.readFileSync(path.join(dir, F.rel.pack(pack))).equals(packBytes));
    await F.assertHealthy(repo2, 'full', 'after a second repair');
  });

  it('corrupt config.json -> open() uses the copy, quick/config, repair rewrites config.json', T, async (t) => {
    const dir = freshCopy(t, env);
    const cfgFile = path.join(dir, 'config.json');
    const original = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, 'this is not a config {{{\u0000\u00ff');
    const repo = await openRepo(t, dir, env);

    const q = await F.verify(repo, 'quick');
    assert.equal(q.ok, false);
    F.assertIssue(q, { kind: 'config', mentions: ['config.json'] });
    await assertRestores(repo, env.snaps[0].id, env.snaps[0].data);

    await repairClean(repo);
    assert.deepEqual(JSON.parse(fs.readFileSync(cfgFile, 'utf8')), original, 'repair must rewrite config.json from the copy');
    await assertFullyRecovered(t, repo, dir, env, 2004);
  });

  it('corrupt config copy (packs/parity/config.json) -> verify/config, repair rewrites it', T, async (t) => {
    const dir = freshCopy(t, env);
    const copy = path.join(dir, 'packs', 'parity', 'config.json');
    const original = fs.readFileSync(copy, 'utf8');
    fs.writeFileSync(copy, '\u0000garbage');
    const repo = await openRepo(t, dir, env);
    const r = await F.verify(repo, 'standard');
    F.assertIssue(r, { kind: 'config', mentions: ['config.json'] });
    await repairClean(repo);
    assert.deepEqual(JSON.parse(fs.readFileSync(copy, 'utf8')), JSON.parse(original), 'repair must rewrite the config copy');
    await assertFullyRecovered(t, repo, dir, env, 2005);
  });

  it('config.json AND its copy garbage -> open() rejects ERR_CORRUPT, no crash', T, async (t) => {
    const dir = freshCopy(t, env);
    fs.writeFileSync(path.join(dir, 'config.json'), 'garbage');
    fs.writeFileSync(path.join(dir, 'packs', 'parity', 'config.json'), '{"also": "garbage"');
    const err = await rejectsWithCode(() => ContainerArchive.open(dir), 'ERR_CORRUPT');
    assert.match(err.message, /config\.json/, 'the message names the damaged file');
  });

  /** Two packs of one parity group, whose loss leaves at least one snapshot untouched. */
  function pickTwoInOneGroup(dir) {
    const all = env.snaps.map((s) => s.id);
    const groups = F.parityGroups(dir).filter((g) => g.packs.length >= 2);
    assert.ok(groups.length > 0, 'fixture: a parity group with at least two data packs');
    for (const g of groups) {
      for (let i = 0; i + 1 < g.packs.length; i++) {
        const packs = [g.packs[i], g.packs[i + 1]];
        const affected = F.snapshotsUsingPacks(dir, packs);
        if (affected.length > 0 && affected.length < all.length) return { group: g, packs, affected };
      }
    }
    assert.fail('fixture: no two packs of one group leave a snapshot untouched');
  }

  it('two packs of one parity group deleted -> unrecoverable names them and the snapshots; others restore', T, async (t) => {
    const dir = freshCopy(t, env);
    const { packs, affected } = pickTwoInOneGroup(dir);
    const perPack = new Map(packs.map((p) => [p, F.snapshotsUsingPacks(dir, [p])]));
    for (const p of packs) fs.unlinkSync(path.join(dir, F.rel.pack(p)));
    const repo = await openRepo(t, dir, env);

    const q = await F.verify(repo, 'quick');
    for (const p of packs) F.assertIssue(q, { kind: 'missing-pack', mentions: [p], pack: p });

    const r = await repo.repair();
    F.assertRepairShape(r);
    const namedPacks = r.unrecoverable.map((u) => u.pack).filter((p) => p !== null).sort();
    assert.deepEqual([...new Set(namedPacks)], packs.slice().sort(), `unrecoverable must name exactly the two lost packs: ${F.fmt(r.unrecoverable)}`);
    const union = [...new Set(r.unrecoverable.flatMap((u) => u.snapshots))].sort();
    assert.deepEqual(union, affected, `unrecoverable must name exactly the snapshots that lost data: ${F.fmt(r.unrecoverable)}`);
    for (const u of r.unrecoverable) {
      if (u.pack === null) continue;
      for (const s of perPack.get(u.pack)) assert.ok(u.snapshots.includes(s), `entry for ${u.pack} must name ${s}`);
    }

    // (c) every snapshot not named restores byte-identical
    await restoresAll(repo, env.snaps, affected);
    // the lost ones fail loudly
    for (const id of affected) await F.assertRestoreFails(repo, id, ArchiveError);
    // verify must not pretend health
    for (const level of ['quick', 'full']) {
      const v = await F.verify(repo, level);
      assert.equal(v.ok, false, `verify(${level}) after an incomplete repair must still report the lost data`);
      assert.ok(
        v.errors.some((e) => packs.includes(e.pack) || affected.includes(e.snapshot) || packs.some((p) => e.error.includes(p)) || affected.some((s) => e.error.includes(s))),
        `verify(${level}) must name a lost pack or an affected snapshot: ${F.fmt(v.errors)}`,
      );
    }
    // (d) a following ingest works
    await followingIngest(repo, 2006);
    await restoresAll(repo, env.snaps, affected);
  });

  it('after an unrecoverable loss, re-ingesting the lost data stores it again (no dedup against lost packs)', T, async (t) => {
    const dir = freshCopy(t, env);
    const { packs, affected } = pickTwoInOneGroup(dir);
    for (const p of packs) fs.unlinkSync(path.join(dir, F.rel.pack(p)));
    const repo = await openRepo(t, dir, env);
    const r = await repo.repair();
    F.assertRepairShape(r);
    assert.ok(r.unrecoverable.length > 0);
    const lost = env.snaps.find((s) => s.id === affected[0]);
    const redo = await repo.ingest(chunkedStream(lost.data, 9));
    assert.ok(redo.newChunks > 0, `the re-ingest deduplicated every chunk (newChunks 0, reusedChunks ${redo.reusedChunks}) against packs repair() reported lost; the new snapshot cannot restore`);
    await assertRestores(repo, redo.id, lost.data);
  });
});

// ---------------------------------------------------------------------------
// Encrypted matrix (representative subset)
// ---------------------------------------------------------------------------

describe('corruption matrix (encrypted)', () => {
  const env = makeEnv(PASSPHRASE);

  let seed = 3000;
  for (const name of Object.keys(PACK_CASES)) {
    if (/bit flip|deleted pack|truncated/.test(name)) packCase(env, `encrypted: ${name}`, PACK_CASES[name], seed++);
  }
  idxCase(env, seed++, 'encrypted: ');
  indexDirCase(env, seed++, 'encrypted: ');
});
