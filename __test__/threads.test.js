'use strict';

// `threads` on init() and open() (issue 11): validated, and a real cap on the
// engine's worker threads, counted in /proc while an ingest runs.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { MiB, tmpFor, randomBytes, chunkedStream, rejectsWithCode, assertRestores, loadPackage, PKG_DIR } = require('./helpers');

const { ContainerArchive } = loadPackage();

/**
 * In a fresh process (so no thread is left from earlier work): opens `dir`
 * with `threads`, ingests `mib` MiB and prints the most engine worker
 * threads (named ca-worker) the process had while the engine was pulling data.
 */
function threadsDuringIngest(dir, threads, mib) {
  const script = `
    const fs = require('node:fs');
    const { Readable } = require('node:stream');
    const { ContainerArchive } = require(${JSON.stringify(PKG_DIR)});
    (async () => {
      const repo = await ContainerArchive.open(${JSON.stringify(dir)}, ${JSON.stringify(threads === undefined ? {} : { threads })});
      const workers = () => fs.readdirSync('/proc/self/task').filter((t) => {
        try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'ca-worker'; } catch { return false; }
      }).length;
      let left = ${mib}, most = 0;
      const piece = Buffer.alloc(1 << 20);
      const source = new Readable({
        read() {
          if (left < ${mib} - 2) most = Math.max(most, workers());
          if (left-- === 0) return this.push(null);
          for (let i = 0; i < piece.length; i += 4096) piece[i] = (left * 31 + i) & 255;
          this.push(Buffer.from(piece));
        },
      });
      await repo.ingest(source);
      await repo.close();
      process.stdout.write(String(most));
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout);
}

describe('threads option', () => {
  it('rejects anything but an integer from 1 to 1024 and writes nothing', async (t) => {
    const dir = tmpFor(t);
    const repoDir = path.join(dir, 'repo');
    for (const threads of [0, -1, 1.5, 1025, '2', null, NaN]) {
      await rejectsWithCode(() => ContainerArchive.init(repoDir, { threads }), 'ERR_INVALID_ARGUMENT');
      assert.equal(fs.existsSync(repoDir), false, `init with threads ${String(threads)} wrote the repository`);
    }
    await (await ContainerArchive.init(repoDir)).close();
    await rejectsWithCode(() => ContainerArchive.open(repoDir, { threads: 0 }), 'ERR_INVALID_ARGUMENT');
  });

  it('works with one thread: ingest, restore and full verify', async (t) => {
    const dir = tmpFor(t);
    const repoDir = path.join(dir, 'repo');
    const data = randomBytes(6 * MiB, 11);
    const repo = await ContainerArchive.init(repoDir, { threads: 1, compression: 'zstd', passphrase: 'pw' });
    const snap = await repo.ingest(chunkedStream([data]));
    await repo.close();
    const again = await ContainerArchive.open(repoDir, { threads: 1, passphrase: 'pw' });
    await assertRestores(again, snap.id, data);
    const report = await again.verify({ level: 'full' });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    await again.close();
  });

  it('caps the worker threads an ingest runs', { skip: os.platform() !== 'linux' || os.availableParallelism() < 2 }, async (t) => {
    const dir = tmpFor(t);
    const repoDir = path.join(dir, 'repo');
    await (await ContainerArchive.init(repoDir, { compression: 'zstd' })).close();
    const one = threadsDuringIngest(repoDir, 1, 24);
    const all = threadsDuringIngest(repoDir, undefined, 24);
    // The engine's worker threads are named ca-worker.
    assert.equal(one, 1, 'worker threads with threads: 1');
    assert.equal(all, Math.min(os.availableParallelism(), 16), 'worker threads by default (one per core)');
  });
});
