'use strict';

// The native fast path for fs.ReadStream sources (issue 11): an untouched
// stream's file is read by the engine, with the stream's start/end, and the
// stream is closed afterwards. Every case checks byte-identical restores, and
// `bytesRead === 0` proves the stream itself read nothing (the JS path reads
// every byte through it), so a silently skipped fast path fails the test.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { PassThrough } = require('node:stream');
const { once } = require('node:events');
const { finished } = require('node:stream/promises');
const { execFileSync } = require('node:child_process');

const { MiB, randomBytes, assertRestores, repoWithFile, closeRepoWithFile } = require('./helpers');

const SIZE = 3 * MiB + 123;

/** Records what a stream emits, to show it opened and closed as usual and never handed out data. */
function watch(stream) {
  const seen = { open: 0, ready: 0, data: 0, end: 0, close: 0 };
  for (const event of Object.keys(seen)) {
    // 'data' is counted via a wrapper that does not switch the stream to flowing mode.
    if (event === 'data') continue;
    stream.on(event, () => { seen[event]++; });
  }
  const push = stream.push.bind(stream);
  stream.push = (chunk, encoding) => {
    if (chunk) seen.data++;
    return push(chunk, encoding);
  };
  return seen;
}

function assertReadNatively(stream, seen) {
  assert.equal(stream.bytesRead, 0, 'the stream itself must not read: the fast path was not taken');
  assert.equal(seen.data, 0, 'the stream pushed data');
  assert.equal(stream.closed, true, 'the stream must be closed when the ingest settles');
  assert.equal(seen.close, 1, "the stream must emit 'close' once");
}

describe('native fast path for fs.ReadStream sources', { skip: process.platform === 'win32' && 'unix only' }, () => {
  let fixture;
  let root;
  let repo;
  let file;
  let data;

  before(async () => {
    fixture = await repoWithFile(SIZE, 11);
    ({ root, repo, file, data } = fixture);
  });
  after(() => closeRepoWithFile(fixture));

  it('createReadStream(path): same bytes, opened and closed as usual', async () => {
    const stream = fs.createReadStream(file);
    const seen = watch(stream);
    const snap = await repo.ingest(stream);
    assertReadNatively(stream, seen);
    assert.equal(seen.open, 1);
    assert.equal(seen.ready, 1);
    assert.equal(seen.end, 1, "read to its end, the stream emits 'end' as a JS read would");
    await finished(stream); // no premature close
    assert.equal(snap.items[0].size, SIZE);
    await assertRestores(repo, snap.id, data);
  });

  it('a stream with start and (inclusive) end', async () => {
    for (const [start, end] of [[1000, 2 * MiB], [0, 0], [SIZE - 5, SIZE + 100], [7, undefined]]) {
      const stream = fs.createReadStream(file, { start, end });
      const seen = watch(stream);
      const snap = await repo.ingest(stream);
      assertReadNatively(stream, seen);
      const expected = data.subarray(start, end === undefined ? undefined : end + 1);
      assert.equal(snap.items[0].size, expected.length);
      await assertRestores(repo, snap.id, expected);
    }
  });

  it('a stream opened from an fd, and one whose fd was already advanced', async () => {
    const fd = fs.openSync(file, 'r');
    const stream = fs.createReadStream(null, { fd });
    const seen = watch(stream);
    const snap = await repo.ingest(stream);
    assertReadNatively(stream, seen);
    await assertRestores(repo, snap.id, data);

    // Without `start` the stream reads end + 1 bytes from the fd's offset, and so must the engine.
    const advanced = fs.openSync(file, 'r');
    fs.readSync(advanced, Buffer.alloc(100), 0, 100, null);
    const rest = fs.createReadStream(null, { fd: advanced, end: 2 * MiB });
    const restSeen = watch(rest);
    const restSnap = await repo.ingest(rest);
    assertReadNatively(rest, restSeen);
    await assertRestores(repo, restSnap.id, data.subarray(100, 100 + 2 * MiB + 1));
  });

  it('an fd stream with start reads from start', async () => {
    const fd = fs.openSync(file, 'r');
    const stream = fs.createReadStream(null, { fd, start: 4096, end: 3 * MiB });
    const seen = watch(stream);
    const snap = await repo.ingest(stream);
    assertReadNatively(stream, seen);
    await assertRestores(repo, snap.id, data.subarray(4096, 3 * MiB + 1));
  });

  it('a partly read stream gives every remaining byte exactly once (JS path)', async () => {
    const stream = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    await new Promise((resolve) => stream.once('readable', resolve));
    const head = stream.read(1000);
    assert.deepEqual(head, data.subarray(0, 1000));
    stream.pause();
    const snap = await repo.ingest(stream);
    assert.equal(stream.bytesRead, SIZE, 'a partly read stream is read through JS');
    await assertRestores(repo, snap.id, data.subarray(1000));
  });

  it('ingestMulti mixes a native ReadStream and a PassThrough', async () => {
    const stream = fs.createReadStream(file, { start: 10 });
    const seen = watch(stream);
    const piped = new PassThrough();
    const other = randomBytes(MiB + 5, 12);
    piped.end(other);
    const snap = await repo.ingestMulti([
      { name: 'file', type: 'file', stream },
      { name: 'piped', type: 'data', stream: piped },
    ]);
    assertReadNatively(stream, seen);
    await assertRestores(repo, snap.id, data.subarray(10), { item: 'file' });
    await assertRestores(repo, snap.id, other, { item: 'piped' });

    // And the other way round: the JS item first.
    const second = fs.createReadStream(file);
    const secondSeen = watch(second);
    const first = new PassThrough();
    first.end(other);
    const snap2 = await repo.ingestMulti([
      { name: 'piped', type: 'data', stream: first },
      { name: 'file', type: 'file', stream: second },
    ]);
    assertReadNatively(second, secondSeen);
    await assertRestores(repo, snap2.id, other, { item: 'piped' });
    await assertRestores(repo, snap2.id, data, { item: 'file' });
  });

  it('a missing file rejects with the stream\'s ENOENT and leaves no snapshot', async () => {
    const before = (await repo.listSnapshots()).length;
    const stream = fs.createReadStream(path.join(root, 'missing.bin'));
    const seen = watch(stream);
    await assert.rejects(repo.ingest(stream), (err) => {
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.syscall, 'open');
      return true;
    });
    assert.equal(stream.closed, true);
    assert.equal(seen.close, 1);
    assert.equal((await repo.listSnapshots()).length, before);
  });

  it('a failed native read rejects as the stream would (EISDIR) and leaves no snapshot', async () => {
    const before = (await repo.listSnapshots()).length;
    const stream = fs.createReadStream(root);
    const seen = watch(stream);
    await assert.rejects(repo.ingest(stream), (err) => {
      assert.equal(err.code, 'EISDIR');
      assert.equal(err.syscall, 'read');
      return true;
    });
    assertReadNatively(stream, seen);
    assert.equal((await repo.listSnapshots()).length, before);
  });

  it('a stream the caller destroys before it is read cancels the ingest', async () => {
    const before = (await repo.listSnapshots()).length;
    const whileOpening = fs.createReadStream(file);
    const pending = repo.ingest(whileOpening);
    whileOpening.destroy();
    const onReady = fs.createReadStream(file);
    onReady.on('ready', () => onReady.destroy());
    for (const ingest of [pending, repo.ingest(onReady)]) {
      await assert.rejects(ingest, (err) => {
        assert.equal(err.code, 'ERR_CANCELLED');
        return true;
      });
    }
    assert.equal(whileOpening.closed, true);
    assert.equal(onReady.closed, true);
    assert.equal(onReady.bytesRead, 0);
    assert.equal((await repo.listSnapshots()).length, before);
  });

  it('destroying the stream while the engine reads it cancels the ingest', async () => {
    // A FIFO lets the test know the engine is mid-read: a write completes only once it was read.
    const fifo = path.join(root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const before = (await repo.listSnapshots()).length;
    const stream = fs.createReadStream(fifo);
    const writer = fs.createWriteStream(fifo);
    writer.on('error', () => {}); // EPIPE once the cancelled engine stops reading
    const ingest = repo.ingest(stream);
    await new Promise((resolve) => writer.write(randomBytes(MiB, 13), resolve));
    assert.equal(stream.bytesRead, 0, 'the engine, not the stream, reads the FIFO');
    stream.destroy();
    await once(stream, 'close');
    writer.end(randomBytes(MiB, 14));
    await assert.rejects(ingest, (err) => {
      assert.equal(err.code, 'ERR_CANCELLED');
      return true;
    });
    assert.equal((await repo.listSnapshots()).length, before);
  });

  it('ingest:progress still reports the whole file', async () => {
    const events = [];
    const sub = repo.on('ingest:progress', (e) => events.push(e));
    const stream = fs.createReadStream(file);
    const snap = await repo.ingest(stream);
    sub.unsubscribe();
    assert.equal(stream.bytesRead, 0);
    assert.ok(events.length > 0, 'no progress events');
    const last = events[events.length - 1];
    assert.equal(last.bytesProcessed, SIZE);
    assert.equal(last.percentage, 100);
    await assertRestores(repo, snap.id, data);
  });

  it('streams the engine must not read itself keep the JS path', async () => {
    const custom = fs.createReadStream(file, { fs: { open: fs.open, read: fs.read, close: fs.close } });
    const keepOpen = fs.createReadStream(file, { autoClose: false });
    for (const [stream, what] of [[custom, 'custom fs'], [keepOpen, 'autoClose: false']]) {
      const snap = await repo.ingest(stream);
      assert.equal(stream.bytesRead, SIZE, `${what}: read through JS`);
      await assertRestores(repo, snap.id, data);
    }
    assert.equal(keepOpen.closed, false, 'autoClose: false leaves the fd open, as the stream would');
    keepOpen.destroy();
  });
});
