'use strict';

// The native path for pipe sources (issue 11): a child process's stdout that
// nobody reads yet is read by the engine itself, after whatever its stream had
// already buffered. Every case checks byte-identical restores; `bytesRead`
// (counted by the socket for every byte it reads) shows the socket read none
// itself, so a silently skipped native path fails the test.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { once } = require('node:events');
const { finished } = require('node:stream/promises');
const { spawn } = require('node:child_process');

const { MiB, randomBytes, assertRestores, repoWithFile, closeRepoWithFile } = require('./helpers');

const SIZE = 3 * MiB + 321;

describe('native path for pipe sources', { skip: process.platform === 'win32' && 'unix only' }, () => {
  let fixture;
  let root;
  let repo;
  let file;
  let data;

  before(async () => {
    fixture = await repoWithFile(SIZE, 21);
    ({ root, repo, file, data } = fixture);
  });
  after(() => closeRepoWithFile(fixture));

  it("spawn('cat').stdout: same bytes, read by the engine, the child closes as usual", async () => {
    const child = spawn('cat', [file]);
    const closed = once(child, 'close');
    const snap = await repo.ingest(child.stdout);
    assert.equal(child.stdout.bytesRead, 0, 'the socket must not read: the native path was not taken');
    assert.equal(child.stdout.destroyed, true, 'the stream is closed when the ingest settles');
    assert.equal(child.stdout.readableEnded, true, "read to its end, the stream emitted 'end'");
    await finished(child.stdout); // no premature close
    const [code] = await closed;
    assert.equal(code, 0);
    await assertRestores(repo, snap.id, data);
  });

  it('a partly read stdout gives every remaining byte exactly once', async () => {
    const child = spawn('cat', [file]);
    const closed = once(child, 'close');
    const stdout = child.stdout;
    await once(stdout, 'readable');
    const head = stdout.read(1000);
    assert.equal(head.length, 1000);
    stdout.removeAllListeners('readable');
    const taken = stdout.bytesRead;
    const snap = await repo.ingest(stdout);
    assert.equal(stdout.bytesRead, taken, 'the socket read nothing more: the engine read the rest');
    await closed;
    await assertRestores(repo, snap.id, data.subarray(1000));
  });

  it('a stdout that flowed and was paused again gives every remaining byte exactly once', async () => {
    const child = spawn('cat', [file]);
    const first = [];
    child.stdout.on('data', (chunk) => first.push(chunk));
    await once(child.stdout, 'data');
    child.stdout.removeAllListeners('data');
    child.stdout.pause();
    const taken = Buffer.concat(first).length;
    const snap = await repo.ingest(child.stdout);
    await assertRestores(repo, snap.id, data.subarray(taken));
  });

  it('ingestMulti with two pipes keeps each one whole and in its item', async () => {
    const other = randomBytes(MiB + 7, 22);
    const otherFile = path.join(root, 'other.bin');
    fs.writeFileSync(otherFile, other);
    const a = spawn('cat', [file]);
    const b = spawn('cat', [otherFile]);
    const snap = await repo.ingestMulti([
      { name: 'a', type: 'data', stream: a.stdout },
      { name: 'b', type: 'data', stream: b.stdout },
    ]);
    assert.equal(a.stdout.bytesRead + b.stdout.bytesRead, 0);
    await assertRestores(repo, snap.id, data, { item: 'a' });
    await assertRestores(repo, snap.id, other, { item: 'b' });
  });

  it('destroying the stream while the engine waits on a stalled producer cancels the ingest', async () => {
    const before = (await repo.listSnapshots()).length;
    // cat copies what the test writes: a 1 MiB write completes only once the
    // engine has read most of it, so the engine is then mid-read, waiting.
    const child = spawn('cat');
    const closed = once(child, 'close');
    const ingest = repo.ingest(child.stdout);
    await new Promise((resolve) => child.stdin.write(randomBytes(MiB, 23), resolve));
    assert.equal(child.stdout.bytesRead, 0, 'the engine, not the socket, reads the pipe');
    child.stdout.destroy();
    await assert.rejects(ingest, (err) => {
      assert.equal(err.code, 'ERR_CANCELLED');
      return true;
    });
    child.stdin.end();
    await closed;
    assert.equal((await repo.listSnapshots()).length, before);
  });

  it('an abort while the producer stalls rejects with an AbortError and leaves no snapshot', async () => {
    const before = (await repo.listSnapshots()).length;
    const child = spawn('cat');
    const closed = once(child, 'close');
    const controller = new AbortController();
    const ingest = repo.ingest(child.stdout, { signal: controller.signal });
    await new Promise((resolve) => child.stdin.write(randomBytes(MiB, 24), resolve));
    controller.abort();
    await assert.rejects(ingest, (err) => {
      assert.equal(err.name, 'AbortError');
      return true;
    });
    child.stdin.end();
    await closed;
    assert.equal((await repo.listSnapshots()).length, before);
  });
});
