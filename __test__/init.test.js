'use strict';

// ContainerArchive.init / open (unencrypted): layout, config.json, ERR_REPO_EXISTS,
// invalid options, ERR_REPO_NOT_FOUND, persistence across close/open.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const {
  KiB,
  MiB,
  tmpFor,
  textishBytes,
  chunkedStream,
  rejectsWithCode,
  treeState,
  assertRestores,
  assertSnapshotShape,
  loadPackage,
} = require('./helpers');

const { ContainerArchive } = loadPackage();

function readConfig(repoDir) {
  return JSON.parse(fs.readFileSync(path.join(repoDir, 'config.json'), 'utf8'));
}

function assertLayout(repoDir) {
  assert.ok(fs.statSync(path.join(repoDir, 'config.json')).isFile(), 'config.json must be a file');
  for (const d of ['packs/data', 'packs/parity', 'snapshots', 'index', 'keys', 'locks']) {
    const p = path.join(repoDir, ...d.split('/'));
    assert.ok(fs.existsSync(p), `${d} must exist`);
    assert.ok(fs.statSync(p).isDirectory(), `${d} must be a directory`);
  }
}

describe('ContainerArchive.init', () => {
  it('creates the documented layout and default config, resolving an open instance', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir);
    try {
      assert.ok(repo instanceof ContainerArchive, 'init must resolve a ContainerArchive');
      assert.equal(path.resolve(repo.path), path.resolve(dir));
      assertLayout(dir);

      const config = readConfig(dir);
      assert.equal(typeof config.version, 'number', 'config.version must be a number');
      assert.deepEqual(
        {
          minSize: config.chunking.minSize,
          avgSize: config.chunking.avgSize,
          maxSize: config.chunking.maxSize,
        },
        { minSize: 256 * KiB, avgSize: 1 * MiB, maxSize: 4 * MiB },
      );
      assert.equal(config.compression.algorithm, 'gzip');
      assert.equal(config.compression.level, 1);
      assert.equal(config.packTargetSize, 8 * MiB);
      assert.equal(config.parity.dataShards, 20);
      assert.equal(config.parity.parityShards, 1);
      assert.ok('encryption' in config, 'config must record encryption');
      assert.equal(config.encryption, null, 'unencrypted repo must have encryption: null');

      // the instance is usable right away
      const snaps = await repo.listSnapshots();
      assert.deepEqual(snaps, []);
    } finally {
      await repo.close();
    }
  });

  it('records explicit options in config.json', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir, {
      compression: 'zstd',
      compressionLevel: 5,
      chunking: { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB },
      packTargetSize: 512 * KiB,
      parity: { dataShards: 4, parityShards: 2 },
    });
    try {
      assertLayout(dir);
      const config = readConfig(dir);
      assert.equal(typeof config.version, 'number');
      assert.equal(config.chunking.minSize, 16 * KiB);
      assert.equal(config.chunking.avgSize, 64 * KiB);
      assert.equal(config.chunking.maxSize, 256 * KiB);
      assert.equal(config.compression.algorithm, 'zstd');
      assert.equal(config.compression.level, 5);
      assert.equal(config.packTargetSize, 512 * KiB);
      assert.equal(config.parity.dataShards, 4);
      assert.equal(config.parity.parityShards, 2);
      assert.equal(config.encryption, null);

      // and the repository works with those settings
      const data = textishBytes(1 * MiB + 7, 11);
      const snap = await repo.ingest(chunkedStream(data, 11));
      assertSnapshotShape(snap);
      assert.ok(snap.items[0].chunks >= 4, `expected several chunks with 64 KiB average, got ${snap.items[0].chunks}`);
      await assertRestores(repo, snap.id, data);
    } finally {
      await repo.close();
    }
  });

  it('defaults the zstd level to 3', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir, { compression: 'zstd' });
    await repo.close();
    const config = readConfig(dir);
    assert.equal(config.compression.algorithm, 'zstd');
    assert.equal(config.compression.level, 3);
  });

  it('rejects ERR_REPO_EXISTS on an existing repository and changes nothing', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir);
    const data = textishBytes(100 * KiB, 5);
    const snap = await repo.ingest(chunkedStream(data, 5), { tags: { k: 'v' } });
    await repo.close();

    const before = treeState(dir);
    const configBefore = fs.readFileSync(path.join(dir, 'config.json'));

    await rejectsWithCode(() => ContainerArchive.init(dir), 'ERR_REPO_EXISTS');
    // also with different options: still must not touch anything
    await rejectsWithCode(
      () => ContainerArchive.init(dir, { compression: 'zstd', parity: { dataShards: 2, parityShards: 1 } }),
      'ERR_REPO_EXISTS',
    );

    assert.deepEqual(treeState(dir), before, 'repository files changed');
    assert.ok(fs.readFileSync(path.join(dir, 'config.json')).equals(configBefore), 'config.json changed');

    // the repo is still intact
    const reopened = await ContainerArchive.open(dir);
    try {
      const list = await reopened.listSnapshots();
      assert.deepEqual(list.map((s) => s.id), [snap.id]);
      await assertRestores(reopened, snap.id, data);
    } finally {
      await reopened.close();
    }
  });

  describe('invalid options reject ERR_INVALID_ARGUMENT and create nothing', () => {
    const cases = [
      ['odd chunking.minSize (1001)', { chunking: { minSize: 1001, avgSize: 4 * KiB, maxSize: 16 * KiB } }],
      ['odd chunking.avgSize', { chunking: { minSize: 1 * KiB, avgSize: 4 * KiB + 1, maxSize: 16 * KiB } }],
      ['odd chunking.maxSize', { chunking: { minSize: 1 * KiB, avgSize: 4 * KiB, maxSize: 16 * KiB + 3 } }],
      ['minSize > avgSize', { chunking: { minSize: 8 * KiB, avgSize: 4 * KiB, maxSize: 16 * KiB } }],
      ['avgSize > maxSize', { chunking: { minSize: 1 * KiB, avgSize: 64 * KiB, maxSize: 16 * KiB } }],
      ['maxSize above 16 MiB', { chunking: { minSize: 1 * KiB, avgSize: 4 * KiB, maxSize: 32 * MiB } }],
      ['unknown compression lz4', { compression: 'lz4' }],
      ['gzip compressionLevel 10', { compression: 'gzip', compressionLevel: 10 }],
      ['default (gzip) compressionLevel 10', { compressionLevel: 10 }],
      ['gzip compressionLevel -1', { compression: 'gzip', compressionLevel: -1 }],
      ['zstd compressionLevel 23', { compression: 'zstd', compressionLevel: 23 }],
      ['zstd compressionLevel 0', { compression: 'zstd', compressionLevel: 0 }],
      ['negative packTargetSize', { packTargetSize: -1 }],
      ['packTargetSize below 64 KiB', { packTargetSize: 1000 }],
      ['parity dataShards 0', { parity: { dataShards: 0, parityShards: 1 } }],
    ];
    for (const [name, options] of cases) {
      it(name, async (t) => {
        const parent = tmpFor(t);
        const dir = path.join(parent, 'repo');
        await rejectsWithCode(() => ContainerArchive.init(dir, options), 'ERR_INVALID_ARGUMENT');
        assert.equal(fs.existsSync(dir), false, 'init with invalid options must not create the repo dir');
        assert.deepEqual(fs.readdirSync(parent), [], 'init with invalid options must not create anything');
      });
    }
  });
});

describe('ContainerArchive.open (unencrypted)', () => {
  it('rejects ERR_REPO_NOT_FOUND for a missing path and creates nothing', async (t) => {
    const parent = tmpFor(t);
    const dir = path.join(parent, 'nope');
    await rejectsWithCode(() => ContainerArchive.open(dir), 'ERR_REPO_NOT_FOUND');
    assert.equal(fs.existsSync(dir), false);
    assert.deepEqual(fs.readdirSync(parent), []);
  });

  it('rejects ERR_REPO_NOT_FOUND for an empty directory', async (t) => {
    const dir = tmpFor(t);
    await rejectsWithCode(() => ContainerArchive.open(dir), 'ERR_REPO_NOT_FOUND');
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('reopens a closed repository and restores what it holds', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const data = textishBytes(2 * MiB + 3, 21);
    let repo = await ContainerArchive.init(dir);
    const snap = await repo.ingest(chunkedStream(data, 21), {
      tags: { a: '1' },
      items: [{ name: 'x.bin', type: 'blob' }],
    });
    await repo.close();

    repo = await ContainerArchive.open(dir);
    try {
      assert.ok(repo instanceof ContainerArchive);
      const got = await repo.getSnapshot(snap.id);
      assert.equal(got.id, snap.id);
      assert.deepEqual(got.tags, { a: '1' });
      assert.deepEqual(got.items, snap.items);
      await assertRestores(repo, snap.id, data, { item: 'x.bin' });
    } finally {
      await repo.close();
    }
  });
});
