'use strict';

// Events: 'ingest:progress' ({operation, percentage, bytesProcessed, message}) and
// 'ingest:complete' ({snapshotId}); percentage known/unknown; rate limiting; unsubscribe().
// All events of an ingest are expected to have been delivered when its promise resolves.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { MiB, KiB, makeTmp, removeTmp, textishBytes, chunkedStream, assertRestores, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();

function record(repo) {
  const progress = [];
  const complete = [];
  const subs = [
    repo.on('ingest:progress', (e) => progress.push({ ...e })),
    repo.on('ingest:complete', (e) => complete.push({ ...e })),
  ];
  return {
    progress,
    complete,
    stop() {
      for (const s of subs) s.unsubscribe();
    },
  };
}

function checkProgress(events, { known, size }) {
  assert.ok(events.length >= 1, 'an ingest must emit at least one progress event');
  let prevBytes = -1;
  let prevPct = -1;
  for (const e of events) {
    assert.equal(e.operation, 'ingest');
    assert.equal(typeof e.message, 'string');
    assert.ok(Number.isInteger(e.bytesProcessed) && e.bytesProcessed >= 0, `bad bytesProcessed ${e.bytesProcessed}`);
    assert.ok(e.bytesProcessed >= prevBytes, `bytesProcessed went backwards: ${prevBytes} -> ${e.bytesProcessed}`);
    assert.ok(e.bytesProcessed <= size, `bytesProcessed ${e.bytesProcessed} exceeds the stream size ${size}`);
    prevBytes = e.bytesProcessed;
    if (known) {
      assert.equal(typeof e.percentage, 'number', `percentage must be a number when the size is known, got ${e.percentage}`);
      assert.ok(e.percentage >= 0 && e.percentage <= 100, `percentage out of range: ${e.percentage}`);
      assert.ok(e.percentage >= prevPct, `percentage went backwards: ${prevPct} -> ${e.percentage}`);
      prevPct = e.percentage;
    } else {
      assert.equal(e.percentage, null, 'percentage must be null when the size is unknown');
    }
  }
  const last = events[events.length - 1];
  if (known) assert.equal(last.percentage, 100, 'the last progress event of a known-size ingest must be 100');
  assert.equal(last.bytesProcessed, size, 'the last progress event must report all bytes');
}

describe('events', () => {
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

  it('size hint in items[0].size gives numeric percentages ending at 100, and a complete event', async () => {
    const data = textishBytes(3 * MiB + 3, 1);
    const rec = record(repo);
    try {
      const snap = await repo.ingest(chunkedStream(data, 1), {
        items: [{ name: 'hinted', type: 'x', size: data.length }],
      });
      checkProgress(rec.progress, { known: true, size: data.length });
      assert.deepEqual(rec.complete, [{ snapshotId: snap.id }]);
      await assertRestores(repo, snap.id, data, { item: 'hinted' });
    } finally {
      rec.stop();
    }
  });

  it('a generator without a size hint gives percentage null', async () => {
    const data = textishBytes(2 * MiB + 1, 2);
    const rec = record(repo);
    try {
      const snap = await repo.ingest(chunkedStream(data, 2));
      checkProgress(rec.progress, { known: false, size: data.length });
      assert.deepEqual(rec.complete, [{ snapshotId: snap.id }]);
    } finally {
      rec.stop();
    }
  });

  it('an fs.createReadStream of ~64 MiB has a known size and emits few events', { timeout: 120000 }, async (t) => {
    const size = 64 * MiB + 5;
    const file = path.join(root, 'big.bin');
    const data = textishBytes(size, 3);
    fs.writeFileSync(file, data);
    const rec = record(repo);
    try {
      const t0 = process.hrtime.bigint();
      const snap = await repo.ingest(fs.createReadStream(file), { items: [{ name: 'big.bin', type: 'file' }] });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      t.diagnostic(`${rec.progress.length} progress events in ${seconds.toFixed(2)} s`);
      checkProgress(rec.progress, { known: true, size });
      assert.deepEqual(rec.complete, [{ snapshotId: snap.id }]);
      const limit = 10 * seconds + 2;
      assert.ok(
        rec.progress.length <= limit,
        `${rec.progress.length} progress events in ${seconds.toFixed(2)} s (limit ${limit.toFixed(1)})`,
      );
      if (seconds >= 1) assert.ok(rec.progress.length >= 2, 'a multi-second ingest should report progress more than once');
      await assertRestores(repo, snap.id, data, { item: 'big.bin' });
    } finally {
      rec.stop();
      fs.unlinkSync(file);
    }
  });

  it('on() returns {unsubscribe()}; an unsubscribed handler is not called again', async () => {
    const data = textishBytes(1 * MiB, 4);
    const gone = [];
    const goneComplete = [];
    const sub = repo.on('ingest:progress', (e) => gone.push(e));
    const subC = repo.on('ingest:complete', (e) => goneComplete.push(e));
    assert.equal(typeof sub, 'object');
    assert.equal(typeof sub.unsubscribe, 'function');
    assert.equal(typeof subC.unsubscribe, 'function');

    const rec = record(repo);
    try {
      const s1 = await repo.ingest(chunkedStream(data, 4), { items: [{ name: 'a', size: data.length }] });
      assert.ok(gone.length >= 1, 'subscribed handler must receive progress');
      assert.deepEqual(goneComplete, [{ snapshotId: s1.id }]);
      assert.equal(rec.progress.length, gone.length, 'every subscribed handler sees every event');

      sub.unsubscribe();
      subC.unsubscribe();
      const seen = gone.length;
      const seenComplete = goneComplete.length;
      const recSeen = rec.progress.length;

      const other = textishBytes(512 * KiB, 5);
      const s2 = await repo.ingest(chunkedStream(other, 5), { items: [{ name: 'b', size: other.length }] });
      assert.equal(gone.length, seen, 'unsubscribed progress handler was called again');
      assert.equal(goneComplete.length, seenComplete, 'unsubscribed complete handler was called again');
      // events were still emitted to the remaining subscriber
      assert.ok(rec.progress.length > recSeen, 'remaining subscriber must still receive progress');
      assert.deepEqual(rec.complete, [{ snapshotId: s1.id }, { snapshotId: s2.id }]);

      // unsubscribing twice is harmless
      sub.unsubscribe();
    } finally {
      rec.stop();
    }
  });
});

describe('restore:progress', () => {
  it('reports bytes handed to the stream against the item size from the manifest, ending at 100', async (t) => {
    const dir = makeTmp();
    t.after(() => removeTmp(dir));
    const repo = await ContainerArchive.init(path.join(dir, 'repo'));
    t.after(() => repo.close());
    const data = textishBytes(6 * MiB + 123, 17);
    const snap = await repo.ingest(chunkedStream([data]));
    const events = [];
    const sub = repo.on('restore:progress', (e) => events.push(e));
    let bytes = 0;
    const stream = await repo.restore(snap.id);
    for await (const chunk of stream) bytes += chunk.length;
    sub.unsubscribe();
    assert.equal(bytes, data.length);
    assert.ok(events.length >= 1, 'at least the final event');
    // The ingest shape; the final event adds how many chunks the restore read.
    for (const e of events.slice(0, -1)) assert.deepEqual(Object.keys(e).sort(), ['bytesProcessed', 'message', 'operation', 'percentage']);
    assert.equal(events.at(-1).chunksRead, snap.items[0].chunks);
    for (const e of events) {
      assert.equal(e.operation, 'restore');
      assert.equal(typeof e.percentage, 'number', 'the total is known, so the percentage is never null');
      assert.ok(e.bytesProcessed <= data.length);
    }
    for (let i = 1; i < events.length; i++) assert.ok(events[i].bytesProcessed >= events[i - 1].bytesProcessed, 'monotonic');
    assert.deepEqual({ ...events.at(-1), message: '' }, { operation: 'restore', percentage: 100, bytesProcessed: data.length, message: '', chunksRead: snap.items[0].chunks });

    // An empty item reports 100 at once.
    const empty = await repo.ingest(chunkedStream([Buffer.alloc(0)]));
    const seen = [];
    const sub2 = repo.on('restore:progress', (e) => seen.push(e));
    for await (const _ of await repo.restore(empty.id)) void _;
    sub2.unsubscribe();
    assert.deepEqual(seen.map((e) => [e.percentage, e.bytesProcessed]), [[100, 0]]);
  });
});
