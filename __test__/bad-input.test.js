'use strict';

// Damaged repository metadata that must be refused with a clean, coded rejection, never a
// crash: a garbage key file, a manifest that is valid JSON but has the wrong shape, a config
// (and its copy) from a future format version; plus bad verify() arguments.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const {
  KiB,
  tmpFor,
  randomBytes,
  chunkedStream,
  assertRestores,
  rejectsWithCode,
  loadPackage,
} = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };
const PASSPHRASE = 'bad input passphrase';

async function smallRepo(t, options = {}) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir, { ...F.SMALL_REPO, ...options });
  const data = randomBytes(200 * KiB + 1, 42);
  let snap;
  try {
    snap = await repo.ingest(chunkedStream(data, 1));
  } finally {
    await repo.close();
  }
  return { dir, data, snap };
}

describe('bad repository input', () => {
  it('a garbage key file opens from its copy, verify names it, repair restores it; both garbage -> ERR_CORRUPT', T, async (t) => {
    const { dir, data, snap } = await smallRepo(t, { passphrase: PASSPHRASE });
    const keys = fs.readdirSync(path.join(dir, 'keys')).filter((n) => n.endsWith('.json'));
    assert.equal(keys.length, 1);
    const keyFile = path.join(dir, 'keys', keys[0]);
    const original = fs.readFileSync(keyFile);

    const variants = {
      'garbage JSON': Buffer.from('{ this is : not json ]'),
      'truncated JSON': original.subarray(0, Math.floor(original.length / 2)),
      'binary garbage': Buffer.from([0, 0xff, 0xfe, 0x7b, 0x22, 0x00]),
      'JSON of the wrong shape': Buffer.from(JSON.stringify({ version: 1, hello: 'world' })),
    };
    const copyFile = path.join(dir, 'packs', 'parity', `key-${keys[0]}`);
    assert.deepEqual(fs.readFileSync(copyFile), original, 'every key file has an identical copy');
    for (const [what, bytes] of Object.entries(variants)) {
      // One damaged file: the copy unlocks the repository, verify names the damage, repair restores it.
      fs.writeFileSync(keyFile, bytes);
      const repo = await ContainerArchive.open(dir, { passphrase: PASSPHRASE });
      try {
        const report = await repo.verify({ level: 'quick' });
        const keyIssue = report.errors.find((e) => e.kind === 'key');
        assert.ok(keyIssue && keyIssue.error.includes(keys[0].replace(/\.json$/, '')), `${what}: verify names the key file: ${JSON.stringify(report.errors)}`);
        await repo.repair();
        assert.deepEqual(fs.readFileSync(keyFile), original, `${what}: repair restored the key file`);
      } finally {
        await repo.close();
      }
      // Both damaged: a clear coded error naming the file, never a crash or a "wrong passphrase".
      fs.writeFileSync(keyFile, bytes);
      fs.writeFileSync(copyFile, bytes);
      const err = await rejectsWithCode(() => ContainerArchive.open(dir, { passphrase: PASSPHRASE }), 'ERR_CORRUPT');
      assert.ok(err.message.includes(keys[0].replace(/\.json$/, '')), `${what}: the message must name the key file: ${err.message}`);
      fs.writeFileSync(copyFile, original);
    }

    fs.writeFileSync(keyFile, original);
    const repo = await ContainerArchive.open(dir, { passphrase: PASSPHRASE });
    try {
      await assertRestores(repo, snap.id, data);
    } finally {
      await repo.close();
    }
  });

  it('a manifest (and its copy) of the wrong shape makes getSnapshot/listSnapshots reject ERR_CORRUPT', T, async (t) => {
    const { dir, data, snap } = await smallRepo(t);
    const file = path.join(dir, F.rel.snapshot(snap.id));
    const copyFile = path.join(dir, F.rel.snapshotCopy(snap.id));
    const original = fs.readFileSync(file);
    const good = JSON.parse(F.unsealPlain(F.AAD.snapshot, original).toString('utf8'));
    assert.equal(good.id, snap.id, 'fixture: unencrypted manifests are plain JSON with a checksum trailer');

    const shapes = {
      'an array': [],
      null: null,
      'a string': 'snapshot',
      'an empty object': {},
      'items is not an array': { ...good, items: 'nope' },
      'a negative size': { ...good, items: [{ ...good.items[0], size: -5 }] },
      'createdAt missing': Object.fromEntries(Object.entries(good).filter(([k]) => k !== 'createdAt')),
      'tags with a non-string value': { ...good, tags: { a: 1 } },
    };
    for (const [what, value] of Object.entries(shapes)) {
      // Sealed with a valid checksum: the shape check itself must refuse it.
      const sealed = F.sealPlain(F.AAD.snapshot, Buffer.from(JSON.stringify(value)));
      // With the copy intact, the copy is used.
      fs.writeFileSync(file, sealed);
      const reader = await ContainerArchive.open(dir);
      try {
        assert.equal((await reader.getSnapshot(snap.id)).id, snap.id, `${what}: read from the copy`);
      } finally {
        await reader.close();
      }
      fs.writeFileSync(copyFile, sealed);
      const repo = await ContainerArchive.open(dir);
      try {
        const e1 = await rejectsWithCode(() => repo.getSnapshot(snap.id), 'ERR_CORRUPT');
        assert.ok(e1.message.includes(snap.id), `${what}: getSnapshot's message must name the manifest: ${e1.message}`);
        await rejectsWithCode(() => repo.listSnapshots(), 'ERR_CORRUPT');
        const v = await F.verify(repo, 'quick');
        F.assertIssue(v, { kind: 'snapshot', mentions: [snap.id] });
      } finally {
        await repo.close();
      }
      fs.writeFileSync(copyFile, original);
    }

    fs.writeFileSync(file, original);
    fs.writeFileSync(copyFile, original);
    const repo = await ContainerArchive.open(dir);
    try {
      assert.equal((await repo.getSnapshot(snap.id)).id, snap.id);
      await assertRestores(repo, snap.id, data);
    } finally {
      await repo.close();
    }
  });

  it('a manifest (and its copy) whose chunk ids are not 64 hex is refused as corrupt by every reader', T, async (t) => {
    const { dir, snap } = await smallRepo(t);
    const file = path.join(dir, F.rel.snapshot(snap.id));
    const good = JSON.parse(F.unsealPlain(F.AAD.snapshot, fs.readFileSync(file)).toString('utf8'));
    const bad = F.sealPlain(
      F.AAD.snapshot,
      Buffer.from(JSON.stringify({ ...good, items: [{ ...good.items[0], chunks: ['zz', ...good.items[0].chunks.slice(1)] }] })),
    );
    fs.writeFileSync(file, bad);
    fs.writeFileSync(path.join(dir, F.rel.snapshotCopy(snap.id)), bad);
    const repo = await ContainerArchive.open(dir);
    try {
      // verify calls it an unreadable manifest, so the readers must agree
      F.assertIssue(await F.verify(repo, 'quick'), { kind: 'snapshot', mentions: [snap.id] });
      const restoreErr = await rejectsWithCode(async () => {
        const s = await repo.restore(snap.id);
        for await (const c of s) void c;
      }, 'ERR_CORRUPT');
      assert.ok(restoreErr.message.includes(snap.id), `restore's ERR_CORRUPT must name the manifest: ${restoreErr.message}`);
      const e1 = await rejectsWithCode(() => repo.getSnapshot(snap.id), 'ERR_CORRUPT');
      assert.ok(e1.message.includes(snap.id));
      await rejectsWithCode(() => repo.listSnapshots(), 'ERR_CORRUPT');
    } finally {
      await repo.close();
    }
  });

  it('config.json and its copy from a future format version -> ERR_UNSUPPORTED_FORMAT', T, async (t) => {
    const { dir } = await smallRepo(t);
    for (const f of ['config.json', path.join('packs', 'parity', 'config.json')]) {
      const file = path.join(dir, f);
      const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.equal(cfg.version, 2);
      // A newer engine's file: a shape this engine does not know, so no checksum it could judge.
      cfg.version = 3;
      cfg.newerField = true;
      fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
    }
    await rejectsWithCode(() => ContainerArchive.open(dir), 'ERR_UNSUPPORTED_FORMAT');
    // stays refused (no partial state), and a second attempt behaves the same
    await rejectsWithCode(() => ContainerArchive.open(dir), 'ERR_UNSUPPORTED_FORMAT');
  });

  it('verify() with an unknown level rejects ERR_INVALID_ARGUMENT', T, async (t) => {
    const { dir } = await smallRepo(t);
    const repo = await ContainerArchive.open(dir);
    try {
      await rejectsWithCode(() => repo.verify({ level: 'deep' }), 'ERR_INVALID_ARGUMENT');
      await rejectsWithCode(() => repo.verify({ level: 'full', bogus: true }), 'ERR_INVALID_ARGUMENT');
      const r = await repo.verify();
      assert.equal(r.level, 'standard', 'the default level is standard');
      assert.equal(r.ok, true);
    } finally {
      await repo.close();
    }
  });

  it('the process survived all of the above and a healthy repository still works', T, async (t) => {
    const { dir, data, snap } = await smallRepo(t);
    const repo = await ContainerArchive.open(dir);
    try {
      await assertRestores(repo, snap.id, data);
      await F.assertHealthy(repo, 'full');
    } finally {
      await repo.close();
    }
  });
});
