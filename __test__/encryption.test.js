'use strict';

// Encrypted repositories: nothing readable on disk (data, tag values, item names),
// and open() passphrase handling: ERR_PASSPHRASE_REQUIRED, ERR_WRONG_PASSPHRASE, success.
// One encrypted repository is shared by the tests of this file (Argon2id is slow by design);
// the tests run in order.

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
  chunkedStream,
  rejectsWithCode,
  walkFiles,
  treeState,
  assertRestores,
  assertSnapshotShape,
  loadPackage,
} = require('./helpers');

const { ContainerArchive } = loadPackage();

const PASSPHRASE = 'correct horse battery staple';
const DATA_MARKER = 'PLAINTEXT-MARKER-7f3a';
const TAG_MARKER = 'TAGVALUE-SECRET-91';
const ITEM_MARKER = 'ITEMNAME-SECRET-55';
const MARKERS = [DATA_MARKER, TAG_MARKER, ITEM_MARKER];

/** ~2 MiB: random filler interleaved with many copies of the plaintext marker. */
function markerData() {
  const filler = randomBytes(2 * MiB, 77);
  const marker = Buffer.from(DATA_MARKER.repeat(8));
  for (let off = 0; off + marker.length <= filler.length; off += 16 * KiB) marker.copy(filler, off);
  return filler;
}

/** Returns [{file, marker}] for every marker found in the raw bytes or relative path of any file. */
function findMarkers(root) {
  const hits = [];
  for (const file of walkFiles(root)) {
    const bytes = fs.readFileSync(file);
    const rel = path.relative(root, file);
    for (const m of MARKERS) {
      if (bytes.includes(m) || rel.includes(m)) hits.push({ file: rel, marker: m });
    }
  }
  return hits;
}

async function ingestMarkers(repo, data) {
  return repo.ingest(chunkedStream(data, 3), {
    tags: { service: TAG_MARKER },
    items: [{ name: ITEM_MARKER, type: 'secret-dump' }],
  });
}

describe('marker scan', () => {
  it('the scanner finds markers in raw file bytes (self-check)', (t) => {
    const dir = tmpFor(t);
    fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a', 'b', 'f'), Buffer.concat([randomBytes(1000, 1), Buffer.from(TAG_MARKER)]));
    assert.deepEqual(findMarkers(dir), [{ file: path.join('a', 'b', 'f'), marker: TAG_MARKER }]);
  });

  it('control: an UNencrypted, uncompressed repository does expose the markers', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir, { compression: 'none' });
    try {
      await ingestMarkers(repo, markerData());
    } finally {
      await repo.close();
    }
    const found = new Set(findMarkers(dir).map((h) => h.marker));
    assert.ok(found.has(DATA_MARKER), 'plaintext data should be visible without encryption/compression');
  });
});

describe('encrypted repository', () => {
  let root;
  let dir;
  let data;
  let snap;

  before(() => {
    root = makeTmp();
    dir = path.join(root, 'repo');
    data = markerData();
  });
  after(() => removeTmp(root));

  it('init with a passphrase records encryption in config.json; ingest + restore work', { timeout: 120000 }, async () => {
    // compression 'none' so that only encryption can hide the data marker
    const repo = await ContainerArchive.init(dir, { passphrase: PASSPHRASE, compression: 'none' });
    try {
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      assert.equal(typeof config.version, 'number');
      assert.ok(config.encryption && typeof config.encryption === 'object', 'encrypted repo must record encryption settings');
      assert.ok(!JSON.stringify(config).includes(PASSPHRASE), 'config.json must not contain the passphrase');

      snap = await ingestMarkers(repo, data);
      assertSnapshotShape(snap);
      assert.deepEqual(snap.tags, { service: TAG_MARKER });
      assert.equal(snap.items[0].name, ITEM_MARKER);
      assert.equal(snap.items[0].type, 'secret-dump');
      assert.equal(snap.items[0].size, data.length);
      await assertRestores(repo, snap.id, data, { item: ITEM_MARKER });
    } finally {
      await repo.close();
    }
  });

  it('no file under the repository contains the data marker, tag value or item name', () => {
    assert.ok(snap, 'previous test must have created a snapshot');
    const files = walkFiles(dir);
    assert.ok(files.length > 0);
    assert.ok(!files.some((f) => fs.readFileSync(f).includes(PASSPHRASE)), 'passphrase stored in plaintext');
    assert.deepEqual(findMarkers(dir), []);
  });

  it('open without a passphrase rejects ERR_PASSPHRASE_REQUIRED and changes nothing', async () => {
    const before = treeState(dir);
    await rejectsWithCode(() => ContainerArchive.open(dir), 'ERR_PASSPHRASE_REQUIRED');
    await rejectsWithCode(() => ContainerArchive.open(dir, {}), 'ERR_PASSPHRASE_REQUIRED');
    assert.deepEqual(treeState(dir), before);
  });

  it('open with a wrong passphrase rejects ERR_WRONG_PASSPHRASE and changes nothing', { timeout: 120000 }, async () => {
    const before = treeState(dir);
    await rejectsWithCode(() => ContainerArchive.open(dir, { passphrase: PASSPHRASE + '!' }), 'ERR_WRONG_PASSPHRASE');
    assert.deepEqual(treeState(dir), before);
  });

  it('open with the right passphrase decrypts metadata and restores byte-identical', { timeout: 120000 }, async () => {
    assert.ok(snap, 'first test must have created a snapshot');
    const repo = await ContainerArchive.open(dir, { passphrase: PASSPHRASE });
    try {
      const list = await repo.listSnapshots({ tags: { service: TAG_MARKER } });
      assert.deepEqual(list.map((s) => s.id), [snap.id]);
      const got = await repo.getSnapshot(snap.id);
      assert.deepEqual(got.tags, { service: TAG_MARKER });
      assert.deepEqual(got.items, snap.items);
      await assertRestores(repo, snap.id, data, { item: ITEM_MARKER });
      await assertRestores(repo, snap.id, data); // single item: item may be omitted

      // a second, deduplicated snapshot in the reopened repo also stays opaque
      const again = await ingestMarkers(repo, data);
      assert.equal(again.newChunks, 0, 'same data must dedup in an encrypted repo');
      await assertRestores(repo, again.id, data);
    } finally {
      await repo.close();
    }
    assert.deepEqual(findMarkers(dir), []);
  });
});
