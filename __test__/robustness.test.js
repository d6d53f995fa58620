'use strict';

// Concurrency and failure paths: two ingests at once on one instance, a source stream that
// errors mid-ingest, a restore stream destroyed halfway (then close() must not hang).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { once } = require('node:events');
const { Readable } = require('node:stream');

const {
  MiB,
  KiB,
  makeTmp,
  removeTmp,
  tmpFor,
  randomBytes,
  textishBytes,
  chunkedStream,
  assertRestores,
  assertSnapshotShape,
  sha256,
  loadPackage,
} = require('./helpers');

const { ContainerArchive } = loadPackage();

/** A Readable that pushes `pieces` buffers and then destroys itself with `err`. */
function failingStream(pieces, err) {
  let i = 0;
  return new Readable({
    read() {
      if (i < pieces.length) this.push(pieces[i++]);
      else this.destroy(err);
    },
  });
}

describe('concurrency and source errors', () => {
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

  it('two ingests at once into one instance both succeed and restore byte-identical', { timeout: 120000 }, async () => {
    // overlapping content so both ingests race on the same chunks
    const shared = randomBytes(6 * MiB, 1);
    const a = [shared, textishBytes(3 * MiB + 1, 2)];
    const b = [textishBytes(2 * MiB + 3, 3), shared];
    const [sa, sb] = await Promise.all([
      repo.ingest(chunkedStream(a, 11), { tags: { which: 'a' } }),
      repo.ingest(chunkedStream(b, 12), { tags: { which: 'b' } }),
    ]);
    assertSnapshotShape(sa);
    assertSnapshotShape(sb);
    assert.notEqual(sa.id, sb.id);
    assert.deepEqual(sa.tags, { which: 'a' });
    assert.deepEqual(sb.tags, { which: 'b' });
    assert.equal(sa.items[0].size, a[0].length + a[1].length);
    assert.equal(sb.items[0].size, b[0].length + b[1].length);

    const ids = (await repo.listSnapshots()).map((s) => s.id);
    assert.ok(ids.includes(sa.id) && ids.includes(sb.id));

    // two restores at once as well
    await Promise.all([assertRestores(repo, sa.id, a), assertRestores(repo, sb.id, b)]);
  });

  it('a source error mid-ingest rejects with that error and leaves no snapshot', { timeout: 120000 }, async (t) => {
    const before = (await repo.listSnapshots()).map((s) => s.id);
    const piece = randomBytes(1 * MiB, 9);
    const boom = new Error('boom');
    let err;
    try {
      await repo.ingest(failingStream([piece, piece.subarray(0, 500 * KiB), piece], boom), { tags: { failed: 'yes' } });
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'ingest must reject when the source stream errors');
    assert.ok(err instanceof Error);
    assert.equal(err.message, 'boom');
    t.diagnostic(`source error passed through as the same object: ${err === boom}`);

    const afterList = await repo.listSnapshots();
    assert.deepEqual(afterList.map((s) => s.id), before, 'a failed ingest must not leave a snapshot');
    assert.deepEqual(await repo.listSnapshots({ tags: { failed: 'yes' } }), []);

    // the instance is still fully usable
    const data = textishBytes(3 * MiB + 11, 10);
    const snap = await repo.ingest(chunkedStream(data, 10));
    assertSnapshotShape(snap);
    await assertRestores(repo, snap.id, data);
  });

  it('a source that errors before any data rejects too', async () => {
    const before = (await repo.listSnapshots()).map((s) => s.id);
    await assert.rejects(() => repo.ingest(failingStream([], new Error('early boom'))), { message: 'early boom' });
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), before);
    assert.equal((await repo.verify({ level: 'full' })).ok, true, 'the repository still verifies');
  });

  it('a source destroyed without an error rejects ERR_CANCELLED; a non-byte chunk ERR_INVALID_ARGUMENT', async () => {
    const before = (await repo.listSnapshots()).map((s) => s.id);
    const cut = new Readable({ read() {} });
    cut.push(Buffer.alloc(4096, 7));
    const pending = repo.ingest(cut);
    setImmediate(() => cut.destroy());
    await assert.rejects(pending, (err) => err.code === 'ERR_CANCELLED');
    await assert.rejects(
      () => repo.ingest(Readable.from([Buffer.from('ok'), 42])),
      (err) => err.code === 'ERR_INVALID_ARGUMENT' && /number/.test(err.message),
    );
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), before);
    assert.equal((await repo.verify({ level: 'full' })).ok, true, 'a failed ingest leaves a repository that verifies');
  });

  it('an erroring item stream in ingestMulti rejects and leaves no snapshot', async () => {
    const before = (await repo.listSnapshots()).map((s) => s.id);
    const ok = textishBytes(100 * KiB, 12);
    await assert.rejects(
      () =>
        repo.ingestMulti([
          { name: 'good', type: 'x', stream: chunkedStream(ok, 1) },
          { name: 'bad', type: 'x', stream: failingStream([ok.subarray(0, 1000)], new Error('multi boom')) },
        ]),
      { message: 'multi boom' },
    );
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), before);
    const snap = await repo.ingestMulti([{ name: 'good', type: 'x', stream: chunkedStream(ok, 2) }]);
    await assertRestores(repo, snap.id, ok, { item: 'good' });
  });
});

describe('restore stream destroyed halfway', () => {
  it('leaves the repo usable and close() resolves', { timeout: 120000 }, async (t) => {
    const root = tmpFor(t);
    const repo = await ContainerArchive.init(path.join(root, 'repo'));
    let closed = false;
    t.after(async () => {
      if (!closed) await repo.close().catch(() => {});
    }, { timeout: 30000 });
    const data = randomBytes(32 * MiB + 17, 5150);
    const snap = await repo.ingest(chunkedStream(data, 8));

    // 1. read a few MiB, then destroy()
    const stream = await repo.restore(snap.id);
    const closedP = once(stream, 'close');
    const got = [];
    let n = 0;
    await new Promise((resolve, reject) => {
      stream.on('data', (c) => {
        got.push(c);
        n += c.length;
        if (n >= 4 * MiB) {
          stream.destroy();
          resolve();
        }
      });
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('restore stream ended before it was destroyed')));
    });
    await closedP;
    assert.ok(n < data.length, 'should have stopped reading before the end');
    const prefix = Buffer.concat(got);
    assert.equal(sha256(prefix), sha256(data.subarray(0, prefix.length)), 'partial restore must be a prefix of the data');

    // 2. destroy immediately, before reading anything
    const s2 = await repo.restore(snap.id);
    const s2closed = once(s2, 'close');
    s2.on('error', () => {});
    s2.destroy();
    await s2closed;

    // 3. break out of for-await after the first chunk (destroys the stream)
    const s3 = await repo.restore(snap.id);
    for await (const chunk of s3) {
      assert.ok(chunk.length > 0);
      break;
    }
    assert.ok(s3.destroyed);

    // the repo still works: full restore and a new ingest
    await assertRestores(repo, snap.id, data);
    const small = textishBytes(10 * KiB, 3);
    const snap2 = await repo.ingest(chunkedStream(small, 3));
    await assertRestores(repo, snap2.id, small);

    // close waits for in-flight native work; with cancelled restores it must resolve
    await repo.close();
    closed = true;
  });
});
