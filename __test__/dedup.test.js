'use strict';

// Deduplication: identical data again stores no new chunk; a 100-byte insertion in the
// middle of ~32 MiB of random data stores only a few new chunks (content-defined chunking).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const {
  MiB,
  makeTmp,
  removeTmp,
  randomBytes,
  chunkedStream,
  assertRestores,
  assertSnapshotShape,
  loadPackage,
} = require('./helpers');

const { ContainerArchive } = loadPackage();

describe('deduplication', { timeout: 120000 }, () => {
  let root;
  let repo;
  let data;
  let first;

  before(async () => {
    root = makeTmp();
    repo = await ContainerArchive.init(path.join(root, 'repo'));
    data = randomBytes(32 * MiB + 1001, 4242);
  });
  after(async () => {
    try {
      if (repo) await repo.close();
    } finally {
      removeTmp(root);
    }
  }, { timeout: 60000 });

  it('first ingest of random data stores every chunk as new', { timeout: 120000 }, async () => {
    first = await repo.ingest(chunkedStream(data, 1));
    assertSnapshotShape(first);
    const chunks = first.items[0].chunks;
    assert.ok(chunks >= 8, `~32 MiB at 1 MiB average chunk size should give many chunks, got ${chunks}`);
    // random data has no repeated chunk
    assert.equal(first.newChunks, chunks);
    assert.equal(first.reusedChunks, 0);
    assert.ok(first.storedSize > 0);
  });

  it('ingesting the same data again stores no new chunk', { timeout: 120000 }, async () => {
    assert.ok(first, 'previous test must have run');
    // different piece boundaries in the source stream must not matter
    const again = await repo.ingest(chunkedStream(data, 999), { tags: { run: 'second' } });
    assertSnapshotShape(again);
    assert.notEqual(again.id, first.id);
    assert.equal(again.newChunks, 0);
    assert.equal(again.items[0].chunks, first.items[0].chunks);
    assert.equal(again.reusedChunks, first.items[0].chunks);
    await assertRestores(repo, again.id, data);
  });

  it('a 100-byte insertion in the middle adds at most 3 new chunks', { timeout: 120000 }, async (t) => {
    assert.ok(first, 'first test must have run');
    const mid = 16 * MiB + 12345;
    const insert = randomBytes(100, 31337);
    const parts = [data.subarray(0, mid), insert, data.subarray(mid)];
    const edited = await repo.ingest(chunkedStream(parts, 3));
    assertSnapshotShape(edited);
    t.diagnostic(`edited: ${edited.newChunks} new / ${edited.reusedChunks} reused of ${edited.items[0].chunks} chunks`);
    assert.equal(edited.items[0].size, data.length + 100);
    assert.ok(edited.newChunks >= 1, 'the edited region must produce a new chunk');
    assert.ok(edited.newChunks <= 3, `expected <= 3 new chunks, got ${edited.newChunks}`);
    assert.ok(edited.reusedChunks >= edited.items[0].chunks - 3);
    await assertRestores(repo, edited.id, parts);
    // the original snapshot is unaffected
    await assertRestores(repo, first.id, data);
  });
});
