'use strict';

// Byte-identical restores for 0 B, 1 B, 4095 B, 1 MiB+7 and ~64 MiB, fed through
// Readable.from(generator) with varied piece sizes and through fs.createReadStream;
// plus a few repository configurations (zstd, no compression, small chunks/packs).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const {
  MiB,
  KiB,
  makeTmp,
  removeTmp,
  textishBytes,
  chunkedStream,
  assertRestores,
  assertSnapshotShape,
  loadPackage,
} = require('./helpers');

const { ContainerArchive } = loadPackage();

const SIZES = [0, 1, 4095, 1 * MiB + 7];

function checkSnapshot(snap, size) {
  assertSnapshotShape(snap);
  assert.equal(snap.items.length, 1);
  assert.equal(snap.items[0].size, size);
  assert.equal(snap.originalSize, size);
  if (size > 0) assert.ok(snap.items[0].chunks >= 1, 'non-empty data must reference at least one chunk');
}

describe('byte-identical round trips (default repository)', () => {
  let root;
  let repo;

  before(async () => {
    root = makeTmp();
    repo = await ContainerArchive.init(path.join(root, 'repo'));
  });
  after(async () => {
    try {
      if (repo) await repo.close();
    } finally {
      removeTmp(root);
    }
  }, { timeout: 60000 });

  for (const size of SIZES) {
    it(`${size} B through Readable.from(generator)`, async () => {
      const data = textishBytes(size, 100 + size);
      const snap = await repo.ingest(chunkedStream(data, size + 1, { maxPiece: 64 * KiB }));
      checkSnapshot(snap, size);
      await assertRestores(repo, snap.id, data);
    });

    it(`${size} B through a non-object-mode Readable`, async () => {
      const data = textishBytes(size, 200 + size);
      const snap = await repo.ingest(chunkedStream(data, size + 2, { objectMode: false }));
      checkSnapshot(snap, size);
      await assertRestores(repo, snap.id, data);
    });

    it(`${size} B through fs.createReadStream`, async () => {
      const data = textishBytes(size, 300 + size);
      const file = path.join(root, `input-${size}.bin`);
      fs.writeFileSync(file, data);
      const snap = await repo.ingest(fs.createReadStream(file, { highWaterMark: 16 * KiB }), {
        items: [{ name: 'file.bin', type: 'file' }],
      });
      checkSnapshot(snap, size);
      await assertRestores(repo, snap.id, data, { item: 'file.bin' });
      fs.unlinkSync(file);
    });
  }

  it('~64 MiB through Readable.from(generator)', { timeout: 120000 }, async () => {
    const size = 64 * MiB + 12345;
    const data = textishBytes(size, 64);
    const snap = await repo.ingest(chunkedStream(data, 64));
    checkSnapshot(snap, size);
    assert.ok(snap.items[0].chunks >= 16, `64 MiB at 1 MiB average should give many chunks, got ${snap.items[0].chunks}`);
    assert.ok(snap.storedSize < size, `compressible data should be stored smaller (${snap.storedSize} >= ${size})`);
    await assertRestores(repo, snap.id, data);
  });

  it('an ArrayBuffer-view stream of Uint8Array pieces restores identical', async () => {
    const data = textishBytes(200 * KiB + 1, 9);
    const { Readable } = require('node:stream');
    const pieces = [];
    for (let off = 0; off < data.length; off += 50000) {
      const b = data.subarray(off, off + 50000);
      pieces.push(new Uint8Array(b.buffer, b.byteOffset, b.length));
    }
    const snap = await repo.ingest(Readable.from(pieces));
    checkSnapshot(snap, data.length);
    await assertRestores(repo, snap.id, data);
  });
});

describe('byte-identical round trips (other configurations)', () => {
  const configs = [
    ['zstd level 19', { compression: 'zstd', compressionLevel: 19 }],
    ['gzip level 0', { compression: 'gzip', compressionLevel: 0 }],
    ['no compression', { compression: 'none' }],
    [
      'small chunks, small packs, RS(4,1)',
      {
        chunking: { minSize: 4 * KiB, avgSize: 16 * KiB, maxSize: 64 * KiB },
        packTargetSize: 64 * KiB,
        parity: { dataShards: 4, parityShards: 1 },
      },
    ],
  ];
  for (const [name, options] of configs) {
    it(name, { timeout: 120000 }, async (t) => {
      const root = makeTmp();
      t.after(() => removeTmp(root));
      const repo = await ContainerArchive.init(path.join(root, 'repo'), options);
      try {
        for (const size of [4095, 1 * MiB + 7]) {
          const data = textishBytes(size, 400 + size);
          const snap = await repo.ingest(chunkedStream(data, size));
          checkSnapshot(snap, size);
          await assertRestores(repo, snap.id, data);
        }
      } finally {
        await repo.close();
      }
    });
  }
});
