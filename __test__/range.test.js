'use strict';

// Issue 13: byte-range restore. restore(id, { item, start, end }) streams exactly [start, end)
// of the item, reads only the chunks that overlap the range (chunksRead on the final
// restore:progress event), clamps `end`, and rejects bad ranges with ERR_INVALID_ARGUMENT.
// The CLI's --range takes HTTP Range bytes (inclusive end, 'a-', '-n', 'bytes=').

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, MiB, makeTmp, removeTmp, tmpFor, randomBytes, xorshift32, collect, assertSameBytes, rejectsWithCode, loadPackage } = require('./helpers');
const { cli, ok, expectUsage } = require('./cli-helpers');
const { chunkRanges, overlapping, readWithProgress } = require('./tar-helpers');

const { ContainerArchive } = loadPackage();

describe('byte-range restore', () => {
  let dir;
  let repo;
  let snap;
  let data;
  let small;
  let ranges;
  const repoDir = () => path.join(dir, 'repo');

  before(async () => {
    dir = makeTmp();
    repo = await ContainerArchive.init(repoDir(), { compression: 'none' });
    data = randomBytes(20 * MiB + 12345, 1301);
    small = randomBytes(100 * KiB + 3, 1302);
    snap = await repo.ingestMulti([
      { name: 'big.bin', type: 'data', stream: [data] },
      { name: 'small.bin', type: 'data', stream: [small] },
      { name: 'empty.bin', type: 'data', stream: [] },
    ]);
    ranges = chunkRanges(repoDir(), snap.id, 'big.bin');
  });
  after(async () => {
    if (repo) await repo.close();
    removeTmp(dir);
  });

  const slice = (item, opts) => repo.restore(snap.id, { item, ...opts }).then(collect);

  it('the item is multi-chunk (the premise of the other tests)', () => {
    assert.ok(ranges.length >= 8, `20 MiB of random data in ${ranges.length} chunks`);
    assert.equal(ranges.length, snap.items[0].chunks);
  });

  it('random ranges, ranges on and across chunk boundaries, are byte-identical to slices of the original', async () => {
    const next = xorshift32(77);
    const cases = [[0, 1], [0, data.length], [data.length - 1, data.length], [0, ranges[0].end], [ranges[0].end, ranges[1].end]];
    for (const r of ranges.slice(1, 5)) cases.push([r.start - 1, r.start + 1], [r.start, r.start + 1], [r.start - 1, r.start]);
    cases.push([ranges[1].start + 5, ranges[3].end - 5]);
    for (let i = 0; i < 24; i++) {
      const a = next() % data.length;
      const len = i % 3 === 0 ? next() % 64 : i % 3 === 1 ? next() % (64 * KiB) : next() % (3 * MiB);
      cases.push([a, Math.min(data.length, a + len)]);
    }
    for (const [start, end] of cases) {
      assertSameBytes(await slice('big.bin', { start, end }), data.subarray(start, end), `range [${start}, ${end})`);
    }
    // another item of the same snapshot, and 'latest'
    assertSameBytes(await slice('small.bin', { start: 1000, end: 50000 }), small.subarray(1000, 50000), 'small.bin range');
    const latest = await repo.restore('latest', { item: 'small.bin', start: 7, end: 9 }).then(collect);
    assertSameBytes(latest, small.subarray(7, 9), "range of 'latest'");
  });

  it('only start: to the end; only end: from 0', async () => {
    const s = ranges[2].start + 100;
    assertSameBytes(await slice('big.bin', { start: s }), data.subarray(s), 'start only');
    assertSameBytes(await slice('big.bin', { end: 777777 }), data.subarray(0, 777777), 'end only');
    assertSameBytes(await slice('big.bin', { start: 0 }), data, 'start 0');
    assertSameBytes(await slice('big.bin', { start: undefined, end: undefined }), data, 'both undefined = whole item');
  });

  it('end past the size is clamped; start at or past the size, and start == end, give an empty stream', async () => {
    assertSameBytes(await slice('big.bin', { start: data.length - 10, end: data.length + 10 }), data.subarray(data.length - 10), 'end clamped');
    assertSameBytes(await slice('big.bin', { start: 5, end: Number.MAX_SAFE_INTEGER }), data.subarray(5), 'end MAX_SAFE_INTEGER');
    assertSameBytes(await slice('small.bin', { end: 10 * MiB }), small, 'end far past a small item');
    for (const [start, end] of [[data.length, undefined], [data.length + 1, undefined], [data.length, data.length + 5], [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], [12345, 12345], [0, 0]]) {
      const opts = end === undefined ? { start } : { start, end };
      const got = await readWithProgress(repo, () => repo.restore(snap.id, { item: 'big.bin', ...opts }));
      assert.equal(got.data.length, 0, `empty for ${JSON.stringify(opts)}`);
      assert.ok(got.last, `a final restore:progress event for the empty range ${JSON.stringify(opts)}`);
      assert.equal(got.last.chunksRead, 0, `an empty range decodes no chunk ${JSON.stringify(opts)}`);
    }
    assert.equal((await slice('empty.bin', { start: 0, end: 10 })).length, 0, 'range of an empty item');
    assert.equal((await slice('empty.bin', { start: 3 })).length, 0, 'start past an empty item');
  });

  it('invalid ranges reject with ERR_INVALID_ARGUMENT (negative, non-integer, unsafe, reversed, not a number)', async () => {
    const bad = [
      { start: -1 }, { end: -1 }, { start: -1, end: 10 }, { start: 1.5 }, { end: 2.5 }, { start: 0, end: 0.1 },
      { start: NaN }, { end: Infinity }, { start: -0.5, end: 3 }, { start: 2 ** 53 }, { end: 2 ** 53 + 2 },
      { start: 10, end: 9 }, { start: data.length + 10, end: data.length + 1 },
      { start: '10' }, { end: '100' }, { start: {} }, { start: true }, { end: [5] }, { start: 10n },
    ];
    for (const opts of bad) {
      const err = await rejectsWithCode(() => repo.restore(snap.id, { item: 'big.bin', ...opts }), 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, /start|end|range/i, `the message names the bad field: ${err.message}`);
    }
  });

  it('a 1 MiB range from the middle reads only the chunks overlapping it (chunksRead on the final restore:progress event)', async () => {
    const start = Math.floor(data.length / 2) - 512 * KiB + 333;
    const end = start + MiB;
    const got = await readWithProgress(repo, () => repo.restore(snap.id, { item: 'big.bin', start, end }));
    assertSameBytes(got.data, data.subarray(start, end), 'middle MiB');
    const want = overlapping(ranges, start, end);
    assert.ok(got.last, 'a final restore:progress event');
    assert.equal(got.last.operation, 'restore');
    assert.equal(got.last.chunksRead, want, `chunks overlapping [${start}, ${end}) of ${ranges.length}`);
    // min chunk 256 KiB: 1 MiB overlaps at most 5; far fewer than the item's
    assert.ok(want >= 1 && want <= 5 && want * 3 < ranges.length, `overlap ${want} of ${ranges.length}`);

    // inside one chunk: exactly one chunk is read
    const c = ranges[Math.floor(ranges.length / 2)];
    const one = await readWithProgress(repo, () => repo.restore(snap.id, { item: 'big.bin', start: c.start + 10, end: c.end - 10 }));
    assertSameBytes(one.data, data.subarray(c.start + 10, c.end - 10), 'inside one chunk');
    assert.equal(one.last.chunksRead, 1, 'a range inside one chunk reads one chunk');

    // exactly a chunk's span: one chunk; one byte more on each side: three
    const span = await readWithProgress(repo, () => repo.restore(snap.id, { item: 'big.bin', start: c.start, end: c.end }));
    assert.equal(span.last.chunksRead, 1, 'exactly one chunk span');
    const wider = await readWithProgress(repo, () => repo.restore(snap.id, { item: 'big.bin', start: c.start - 1, end: c.end + 1 }));
    assert.equal(wider.last.chunksRead, 3, 'one byte into each neighbour');

    // and a whole restore reads every chunk
    const full = await readWithProgress(repo, () => repo.restore(snap.id, { item: 'big.bin' }));
    assert.equal(full.data.length, data.length);
    assert.equal(full.last.chunksRead, ranges.length, 'a full restore carries chunksRead too');
  });

  it('works in an encrypted repository', async (t) => {
    const d = tmpFor(t);
    const enc = await ContainerArchive.init(path.join(d, 'repo'), { passphrase: 'range-test' });
    t.after(() => enc.close());
    const buf = randomBytes(5 * MiB + 1, 1303);
    const s = await enc.ingest([buf]);
    for (const [a, b] of [[0, 10], [MiB + 17, 4 * MiB - 3], [5 * MiB - 2, 6 * MiB]]) {
      assertSameBytes(await enc.restore(s.id, { start: a, end: b }).then(collect), buf.subarray(a, b), `encrypted [${a}, ${b})`);
    }
  });
});

describe('CLI restore --range', () => {
  it('START-END (inclusive), START-, -N, bytes= prefix, with -o and --item; bad ranges exit 2', async (t) => {
    const dir = tmpFor(t);
    const repoPath = path.join(dir, 'repo');
    const data = randomBytes(3 * MiB + 99, 1304);
    const other = randomBytes(1000, 1305);
    const repo = await ContainerArchive.init(repoPath);
    const snap = await repo.ingestMulti([
      { name: 'vol.bin', stream: [data] },
      { name: 'tiny.bin', stream: [other] },
    ]);
    await repo.close();
    const id = snap.id;
    // --range=VALUE, so that '-N' is not read as an option; the spaced form is checked at the end
    const r = (range, extra = []) => ok(cli(['restore', repoPath, id, '--item', 'vol.bin', `--range=${range}`, ...extra]), `--range=${range}`).stdout;

    assertSameBytes(r('0-499'), data.subarray(0, 500), '0-499 is the first 500 bytes');
    assertSameBytes(r('1000-1000'), data.subarray(1000, 1001), 'a single byte');
    assertSameBytes(r(`${MiB}-${2 * MiB + 5}`), data.subarray(MiB, 2 * MiB + 6), 'across chunks');
    assertSameBytes(r(`${3 * MiB}-`), data.subarray(3 * MiB), 'START- to the end');
    assertSameBytes(r('-500'), data.subarray(data.length - 500), '-N is the last N bytes');
    assertSameBytes(r(`-${10 * MiB}`), data, '-N larger than the item is the whole item');
    assertSameBytes(r('bytes=10-19'), data.subarray(10, 20), 'bytes= prefix');
    assertSameBytes(r('bytes=-3'), data.subarray(data.length - 3), 'bytes=-N');
    assertSameBytes(r(`0-${100 * MiB}`), data, 'END past the size is clamped');

    const out = path.join(dir, 'part.bin');
    r('100-299', ['-o', out]);
    assertSameBytes(fs.readFileSync(out), data.subarray(100, 300), '-o file');
    assertSameBytes(
      ok(cli(['restore', repoPath, id, '--item', 'tiny.bin', '--range', '990-']), 'tiny').stdout,
      other.subarray(990),
      'another item',
    );

    for (const bad of ['abc', '5-2', '-', '1-2-3', 'bytes=', 'bytes=x-1', '-1-5', '1.5-3', ' 1-2', '0x10-0x20', '']) {
      expectUsage(cli(['restore', repoPath, id, '--item', 'vol.bin', `--range=${bad}`]), [/range/i], `bad range ${JSON.stringify(bad)}`);
    }
    expectUsage(cli(['restore', repoPath, id, '--item', 'vol.bin', '--range']), [/--range/], '--range without a value');
    assertSameBytes(ok(cli(['restore', repoPath, id, '--item', 'vol.bin', '--range', '0-9']), '--range 0-9').stdout, data.subarray(0, 10), 'spaced form');
    // The contract's '--range -N' spelled as two arguments, as users (and curl -r) write it.
    assertSameBytes(ok(cli(['restore', repoPath, id, '--item', 'vol.bin', '--range', '-500']), '--range -500 (two arguments)').stdout, data.subarray(data.length - 500), 'spaced -N');
  });
});
