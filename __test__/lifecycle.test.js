'use strict';

// close(): every method rejects ERR_CLOSED afterwards, the repo can be reopened, and a
// process that used the addon exits on its own after close() (no dangling handles).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Readable } = require('node:stream');

const { tmpFor, PKG_DIR, rejectsWithCode, assertArchiveError, assertRestores, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();

describe('use after close', () => {
  it('every method rejects ERR_CLOSED; a second close resolves or rejects ERR_CLOSED', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir);
    const data = Buffer.from('hello, closed world\n');
    const snap = await repo.ingest(Readable.from([data]));
    await repo.close();

    await rejectsWithCode(() => repo.ingest(Readable.from([Buffer.from('x')])), 'ERR_CLOSED');
    await rejectsWithCode(() => repo.ingest(Readable.from([Buffer.from('x')]), { tags: { a: 'b' } }), 'ERR_CLOSED');
    await rejectsWithCode(
      () => repo.ingestMulti([{ name: 'a', type: 'x', stream: Readable.from([Buffer.from('x')]) }]),
      'ERR_CLOSED',
    );
    await rejectsWithCode(() => repo.restore(snap.id), 'ERR_CLOSED');
    await rejectsWithCode(() => repo.restore(snap.id, { item: 'data' }), 'ERR_CLOSED');
    await rejectsWithCode(() => repo.listSnapshots(), 'ERR_CLOSED');
    await rejectsWithCode(() => repo.listSnapshots({ tags: { a: 'b' } }), 'ERR_CLOSED');
    await rejectsWithCode(() => repo.getSnapshot(snap.id), 'ERR_CLOSED');

    let secondClose;
    try {
      await repo.close();
      secondClose = 'resolved';
    } catch (e) {
      assertArchiveError(e, 'ERR_CLOSED');
      secondClose = 'ERR_CLOSED';
    }
    t.diagnostic(`second close(): ${secondClose}`);

    // close() released everything: the repository can be opened again
    const again = await ContainerArchive.open(dir);
    try {
      assert.deepEqual((await again.listSnapshots()).map((s) => s.id), [snap.id]);
      await assertRestores(again, snap.id, data);
    } finally {
      await again.close();
    }
  });
});

describe('process exit', () => {
  it('a process that init/ingest/restore/close()s exits with code 0 on its own', { timeout: 120000 }, async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const script = `
      'use strict';
      const { ContainerArchive } = require(${JSON.stringify(PKG_DIR)});
      const { Readable } = require('node:stream');
      (async () => {
        const repo = await ContainerArchive.init(process.env.CA_TEST_REPO);
        const data = Buffer.alloc(3 * 1024 * 1024 + 5);
        for (let i = 0; i < data.length; i++) data[i] = Math.imul(i, 2654435761) >>> 24;
        const snap = await repo.ingest(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
          tags: { child: 'yes' },
        });
        repo.on('ingest:progress', () => {});
        const parts = [];
        for await (const c of await repo.restore(snap.id)) parts.push(c);
        const same = Buffer.concat(parts).equals(data);
        await repo.close();
        process.stdout.write(JSON.stringify({ same, id: snap.id }));
      })();
    `;
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, CA_TEST_REPO: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
      // a watchdog so that a hanging child never outlives the test
      timeout: 100000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const [code, signal] = await new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve([c, s]));
    });
    assert.equal(signal, null, `child was killed (${signal}): it did not exit on its own after close(). stderr: ${stderr}`);
    assert.equal(code, 0, `child exit code ${code}, stderr: ${stderr}`);
    const result = JSON.parse(stdout);
    assert.equal(result.same, true, 'child restore must be byte-identical');
    assert.match(result.id, /^[0-9a-f]{64}$/);

    // and what the child wrote is a valid repository
    const repo = await ContainerArchive.open(dir);
    try {
      const list = await repo.listSnapshots({ tags: { child: 'yes' } });
      assert.deepEqual(list.map((s) => s.id), [result.id]);
    } finally {
      await repo.close();
    }
  });
});
