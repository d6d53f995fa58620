'use strict';

// Memory is bounded whatever the stream length, across the N-API bridge too:
// a child process ingests and then restores a synthetic stream of 64 MiB and
// of 1 GiB (16x longer); the longer run's peak RSS may exceed the shorter
// one's only by a fixed margin. The child collects garbage every 8 MiB, so
// V8's lazy collection of short-lived Buffers does not blur what the bridge
// itself holds. (core/tests/memory.rs checks the engine alone.)

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const MiB = 1024 * 1024;

const CHILD = `
const { ContainerArchive } = require(process.argv[1]);
const { syntheticStream } = require(process.argv[1] + '/bench/synthetic.js');
const [, , dir, bytes, phase] = process.argv;
let seen = 0;
const collect = (n) => { if (Math.floor((seen + n) / 8388608) > Math.floor(seen / 8388608)) global.gc(); seen += n; };
(async () => {
  const repo = phase === 'ingest'
    ? await ContainerArchive.init(dir, { compression: 'none' })
    : await ContainerArchive.open(dir);
  let count = 0;
  if (phase === 'ingest') {
    const source = syntheticStream(Number(bytes));
    const read = source._read.bind(source);
    source._read = (size) => { collect(1048576); read(size); };
    await repo.ingest(source);
  } else {
    const [snap] = await repo.listSnapshots();
    for await (const chunk of await repo.restore(snap.id)) {
      count += chunk.length;
      collect(chunk.length);
    }
  }
  await repo.close();
  process.stdout.write(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, count }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function run(dir, bytes, phase) {
  // A fixed mmap threshold makes glibc return freed 1 MiB buffers to the OS at
  // once, so RSS measures what is live rather than what the allocator keeps.
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: String(128 * 1024) };
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', CHILD, ROOT, dir, String(bytes), phase], { encoding: 'utf8', timeout: 110000, env });
  assert.equal(r.status, 0, `child ${phase} ${bytes} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('peak memory does not grow with the stream length (ingest and restore)', { timeout: 240000 }, (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-memory-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const peaks = {};
  for (const size of [64 * MiB, 1024 * MiB]) {
    const dir = path.join(base, String(size));
    const ingest = run(dir, size, 'ingest');
    const restore = run(dir, size, 'restore');
    assert.equal(restore.count, size, 'the restore returned every byte');
    peaks[size] = { ingest: ingest.maxRssKiB / 1024, restore: restore.maxRssKiB / 1024 };
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(`peak RSS MiB: ${JSON.stringify(peaks)}`);
  for (const phase of ['ingest', 'restore']) {
    const small = peaks[64 * MiB][phase];
    const large = peaks[1024 * MiB][phase];
    // 16x the data may cost a bounded amount more (chunks in flight), never
    // proportionally more: holding even a tenth of the 1 GiB would fail this.
    assert.ok(large < small + 96, `${phase}: ${large.toFixed(0)} MiB for 1 GiB vs ${small.toFixed(0)} MiB for 64 MiB`);
  }
});
