'use strict';

// ingest / ingestMulti / restore / getSnapshot semantics and their error codes.
// One unencrypted repository is shared by this file.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Readable } = require('node:stream');

const {
  KiB,
  MiB,
  makeTmp,
  removeTmp,
  textishBytes,
  randomBytes,
  chunkedStream,
  rejectsWithCode,
  treeState,
  assertRestores,
  assertSnapshotShape,
  loadPackage,
} = require('./helpers');

const { ContainerArchive } = loadPackage();

const ZERO_ID = '0'.repeat(64);

describe('ingest, ingestMulti, restore, getSnapshot', () => {
  let root;
  let dir;
  let repo;

  before(async () => {
    root = makeTmp();
    dir = path.join(root, 'repo');
    repo = await ContainerArchive.init(dir);
  });
  after(async () => {
    try {
      if (repo) await repo.close();
    } finally {
      removeTmp(root);
    }
  }, { timeout: 60000 });

  describe('ingest', () => {
    it('without items names the single item "data" and resolves a full Snapshot', async () => {
      const data = textishBytes(300 * KiB + 1, 1);
      const t0 = Date.now();
      const snap = await repo.ingest(chunkedStream(data, 1));
      const t1 = Date.now();
      assertSnapshotShape(snap);
      const created = Date.parse(snap.createdAt);
      assert.ok(created >= t0 - 2000 && created <= t1 + 2000, `createdAt ${snap.createdAt} is not "now"`);
      assert.deepEqual(snap.tags, {});
      assert.equal(snap.items.length, 1);
      assert.equal(snap.items[0].name, 'data');
      assert.equal(snap.items[0].type, 'data');
      assert.equal(snap.items[0].size, data.length);
      assert.ok(snap.items[0].chunks >= 1);
      assert.equal(snap.originalSize, data.length);
      assert.ok(snap.newChunks >= 1, 'first ingest of fresh data must store new chunks');
      assert.ok(snap.storedSize > 0);
      await assertRestores(repo, snap.id, data);
      await assertRestores(repo, snap.id, data, { item: 'data' });
      await assertRestores(repo, snap.id, data, {});
    });

    it('records tags and the item name/type given in options', async () => {
      const data = textishBytes(50 * KiB, 2);
      const tags = { service: 'postgres', environment: 'production', 'with space': 'ü ñ 💾' };
      const snap = await repo.ingest(chunkedStream(data, 2), {
        tags,
        items: [{ name: 'database.sql', type: 'database-dump' }],
      });
      assertSnapshotShape(snap);
      assert.deepEqual(snap.tags, tags);
      assert.equal(snap.items.length, 1);
      assert.deepEqual(
        { name: snap.items[0].name, type: snap.items[0].type, size: snap.items[0].size },
        { name: 'database.sql', type: 'database-dump', size: data.length },
      );
      const got = await repo.getSnapshot(snap.id);
      assertSnapshotShape(got);
      assert.equal(got.id, snap.id);
      assert.equal(got.createdAt, snap.createdAt);
      assert.deepEqual(got.tags, tags);
      assert.deepEqual(got.items, snap.items);
      assert.equal(got.originalSize, snap.originalSize);
      await assertRestores(repo, snap.id, data, { item: 'database.sql' });
    });

    it('rejects ERR_INVALID_ARGUMENT for more than one item in ingest() options', async () => {
      const before = (await repo.listSnapshots()).map((s) => s.id);
      await rejectsWithCode(
        () => repo.ingest(Readable.from([Buffer.from('x')]), { items: [{ name: 'a' }, { name: 'b' }] }),
        'ERR_INVALID_ARGUMENT',
      );
      assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), before);
    });

    it('rejects ERR_INVALID_ARGUMENT when the stream argument is not a stream', async () => {
      await rejectsWithCode(() => repo.ingest(null), 'ERR_INVALID_ARGUMENT');
      await rejectsWithCode(() => repo.ingest('not a stream'), 'ERR_INVALID_ARGUMENT');
    });
  });

  describe('ingestMulti', () => {
    it('keeps item order and restores every item byte-identical', async () => {
      const a = textishBytes(700 * KiB + 3, 10);
      const b = randomBytes(1 * MiB + 5, 11);
      const c = Buffer.alloc(0);
      const d = Buffer.from('tiny');
      const snap = await repo.ingestMulti(
        [
          { name: 'zeta.sql', type: 'database-dump', stream: chunkedStream(a, 10) },
          { name: 'alpha.tar', type: 'volume-tar', stream: chunkedStream(b, 11) },
          { name: 'empty', type: 'nothing', stream: Readable.from([]) },
          { name: 'tiny', stream: chunkedStream(d, 12) },
        ],
        { tags: { service: 'nextcloud', kind: 'full-backup' } },
      );
      assertSnapshotShape(snap);
      assert.deepEqual(snap.tags, { service: 'nextcloud', kind: 'full-backup' });
      assert.deepEqual(snap.items.map((i) => i.name), ['zeta.sql', 'alpha.tar', 'empty', 'tiny']);
      assert.deepEqual(snap.items.map((i) => i.type).slice(0, 3), ['database-dump', 'volume-tar', 'nothing']);
      assert.equal(typeof snap.items[3].type, 'string');
      assert.deepEqual(snap.items.map((i) => i.size), [a.length, b.length, 0, d.length]);
      assert.equal(snap.originalSize, a.length + b.length + d.length);

      // listed/fetched snapshot keeps the order too
      const got = await repo.getSnapshot(snap.id);
      assert.deepEqual(got.items, snap.items);

      // restore in an order different from ingest order
      await assertRestores(repo, snap.id, b, { item: 'alpha.tar' });
      await assertRestores(repo, snap.id, d, { item: 'tiny' });
      await assertRestores(repo, snap.id, c, { item: 'empty' });
      await assertRestores(repo, snap.id, a, { item: 'zeta.sql' });
    });

    it('rejects duplicate item names with ERR_INVALID_ARGUMENT and stores nothing', async () => {
      const before = (await repo.listSnapshots()).map((s) => s.id);
      await rejectsWithCode(
        () =>
          repo.ingestMulti([
            { name: 'same', type: 'x', stream: Readable.from([Buffer.from('one')]) },
            { name: 'other', type: 'x', stream: Readable.from([Buffer.from('two')]) },
            { name: 'same', type: 'y', stream: Readable.from([Buffer.from('three')]) },
          ]),
        'ERR_INVALID_ARGUMENT',
      );
      assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), before);
    });
  });

  describe('restore', () => {
    let multi;
    let single;
    const one = textishBytes(64 * KiB, 30);
    const two = textishBytes(96 * KiB, 31);

    before(async () => {
      multi = await repo.ingestMulti([
        { name: 'one', type: 't', stream: chunkedStream(one, 30) },
        { name: 'two', type: 't', stream: chunkedStream(two, 31) },
      ]);
      single = await repo.ingest(chunkedStream(one, 32), { items: [{ name: 'only', type: 't' }] });
    });

    it('omitting item works for a single-item snapshot', async () => {
      await assertRestores(repo, single.id, one);
      await assertRestores(repo, single.id, one, { item: 'only' });
    });

    it('omitting item on a multi-item snapshot rejects ERR_INVALID_ARGUMENT', async () => {
      await rejectsWithCode(() => repo.restore(multi.id), 'ERR_INVALID_ARGUMENT');
      await rejectsWithCode(() => repo.restore(multi.id, {}), 'ERR_INVALID_ARGUMENT');
      // the named items still restore
      await assertRestores(repo, multi.id, one, { item: 'one' });
      await assertRestores(repo, multi.id, two, { item: 'two' });
    });

    it('an unknown item rejects ERR_ITEM_NOT_FOUND', async () => {
      await rejectsWithCode(() => repo.restore(multi.id, { item: 'three' }), 'ERR_ITEM_NOT_FOUND');
      await rejectsWithCode(() => repo.restore(single.id, { item: 'data' }), 'ERR_ITEM_NOT_FOUND');
    });

    it('an unknown, well-formed snapshot id rejects ERR_SNAPSHOT_NOT_FOUND', async () => {
      await rejectsWithCode(() => repo.restore(ZERO_ID), 'ERR_SNAPSHOT_NOT_FOUND');
      await rejectsWithCode(() => repo.restore(ZERO_ID, { item: 'one' }), 'ERR_SNAPSHOT_NOT_FOUND');
      await rejectsWithCode(() => repo.getSnapshot(ZERO_ID), 'ERR_SNAPSHOT_NOT_FOUND');
      await rejectsWithCode(() => repo.getSnapshot('f'.repeat(64)), 'ERR_SNAPSHOT_NOT_FOUND');
    });
  });

  describe('snapshot ids', () => {
    const malformed = [
      '../../x',
      '../snapshots/' + '0'.repeat(64),
      '/etc/passwd',
      '',
      'abc',
      '0'.repeat(65),
      'A'.repeat(64),
      'g'.repeat(64),
      '0'.repeat(62) + '/x',
      '0'.repeat(63) + '\0',
      ' ' + '0'.repeat(63),
    ];

    it('are 64 lowercase hex chars and getSnapshot() round-trips them', async () => {
      const list = await repo.listSnapshots();
      assert.ok(list.length > 0);
      for (const s of list) {
        assert.match(s.id, /^[0-9a-f]{64}$/);
        const got = await repo.getSnapshot(s.id);
        assert.equal(got.id, s.id);
      }
      assert.equal(new Set(list.map((s) => s.id)).size, list.length, 'snapshot ids must be unique');
    });

    it('malformed ids reject ERR_INVALID_ARGUMENT in getSnapshot() and restore() and create no file', async () => {
      const before = treeState(root);
      for (const id of malformed) {
        await rejectsWithCode(() => repo.getSnapshot(id), 'ERR_INVALID_ARGUMENT');
        await rejectsWithCode(() => repo.restore(id), 'ERR_INVALID_ARGUMENT');
        await rejectsWithCode(() => repo.restore(id, { item: 'data' }), 'ERR_INVALID_ARGUMENT');
      }
      for (const id of [undefined, null, 42, {}]) {
        await rejectsWithCode(() => repo.getSnapshot(id), 'ERR_INVALID_ARGUMENT');
      }
      // 8..63 lowercase hex digits are a prefix: no match is ERR_SNAPSHOT_NOT_FOUND.
      const unused = (await repo.listSnapshots()).some((s) => s.id.startsWith('0'.repeat(8))) ? null : '0'.repeat(63);
      if (unused) await rejectsWithCode(() => repo.getSnapshot(unused), 'ERR_SNAPSHOT_NOT_FOUND');
      assert.deepEqual(treeState(root), before, 'files were created or changed');
      assert.equal(fs.existsSync(path.join(root, 'x')), false);
    });
  });
});
