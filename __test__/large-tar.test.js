'use strict';

// Issue 13 at full size: a 1 GiB volume tar. One 10 KiB member restores well
// under a second reading at most 2 chunks, and 1 MiB from the middle of the
// item reads only the chunks overlapping it, both timed against a full
// restore of the same item in the same run. chunksRead (the final
// restore:progress event) counts the chunks the engine decoded; it must
// equal the overlap computed here from the manifest and the pack headers.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { Readable } = require('node:stream');

const { KiB, MiB, tmpFor, randomBytes, assertSameBytes, loadPackage } = require('./helpers');
const { chunkRanges, overlapping, readWithProgress, listAll } = require('./tar-helpers');

const { ContainerArchive } = loadPackage();

const BLOCK = 512;
const MEMBER = 16 * MiB;
const MEMBERS = 64; // 64 x 16 MiB + the needle: just over 1 GiB
const NEEDLE = { path: 'data/needle.txt', bytes: randomBytes(10 * KiB, 99) };

/** A ustar header block (GNU tar reads it; so does the engine's catalog). */
function ustarHeader(name, size) {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0001750\0', 108, 'ascii');
  h.write('0001750\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write(`${Math.floor(Date.UTC(2026, 0, 1) / 1000).toString(8).padStart(11, '0')}\0`, 136, 'ascii');
  h.fill(' ', 148, 156);
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/**
 * The tar as a stream, never held whole: MEMBERS files of MEMBER bytes of
 * deterministic, non-repeating data, with the needle in the middle.
 */
function largeTar() {
  const block = randomBytes(MiB, 7);
  let counter = 0;
  const fileData = () => {
    const out = Buffer.from(block);
    for (let at = 0; at + 8 <= out.length; at += 64 * KiB) out.writeBigUInt64LE(BigInt(counter++), at);
    return out;
  };
  function* pieces() {
    for (let i = 0; i < MEMBERS; i++) {
      if (i === MEMBERS / 2) {
        yield ustarHeader(NEEDLE.path, NEEDLE.bytes.length);
        yield NEEDLE.bytes;
        yield Buffer.alloc((BLOCK - (NEEDLE.bytes.length % BLOCK)) % BLOCK);
      }
      yield ustarHeader(`data/part-${String(i).padStart(2, '0')}.bin`, MEMBER);
      for (let n = 0; n < MEMBER / MiB; n++) yield fileData();
    }
    yield Buffer.alloc(2 * BLOCK);
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** Bytes [start, end) of a stream, reading no further. */
async function sliceOf(stream, start, end) {
  const parts = [];
  let at = 0;
  for await (const c of stream) {
    const [a, b] = [Math.max(start, at), Math.min(end, at + c.length)];
    if (a < b) parts.push(c.subarray(a - at, b - at));
    at += c.length;
    if (at >= end) break;
  }
  return Buffer.concat(parts);
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const result = await fn();
  return { ...result, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** A full restore, hashed as it streams (1 GiB is never held). */
async function fullRestore(repo, id) {
  const events = [];
  const sub = repo.on('restore:progress', (e) => events.push(e));
  try {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    for await (const c of await repo.restore(id)) {
      hash.update(c);
      bytes += c.length;
    }
    return { bytes, sha256: hash.digest('hex'), last: events.at(-1) };
  } finally {
    sub.unsubscribe();
  }
}

describe('a 1 GiB volume tar', () => {
  it('one 10 KiB member: well under a second, at most 2 chunks; 1 MiB from the middle: only its chunks; both against a full restore', { timeout: 300_000 }, async (t) => {
    const repoPath = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(repoPath, { compression: 'none' });
    t.after(() => repo.close());
    const snap = await repo.ingest(largeTar(), { items: [{ name: 'volume.tar', type: 'volume-tar' }] });
    const item = snap.items[0];
    assert.ok(item.size > 1024 * MiB, `a tar over 1 GiB (${item.size} bytes)`);
    assert.equal(item.catalog.entries, MEMBERS + 1);
    const needle = (await listAll(repo.listFiles(snap.id, { glob: '**/needle.txt' })))[0];
    assert.equal(needle.size, NEEDLE.bytes.length);
    const ranges = chunkRanges(repoPath, snap.id, 'volume.tar');

    const fulls = [];
    for (let i = 0; i < 2; i++) fulls.push(await timed(() => fullRestore(repo, snap.id)));
    assert.equal(fulls[0].bytes, item.size);
    assert.equal(fulls[0].sha256, item.sha256, 'the full restore is byte-exact');
    assert.equal(fulls[0].last.chunksRead, ranges.length);
    const fullBest = Math.min(...fulls.map((f) => f.seconds));

    const members = [];
    for (let i = 0; i < 3; i++) members.push(await timed(() => readWithProgress(repo, () => repo.restoreFile(snap.id, { path: NEEDLE.path }))));
    assertSameBytes(members[0].data, NEEDLE.bytes, 'the member');
    assert.equal(members[0].last.chunksRead, overlapping(ranges, needle.offset, needle.offset + needle.size), 'chunksRead = chunks overlapping the member');
    assert.ok(members[0].last.chunksRead <= 2, `at most 2 chunks, read ${members[0].last.chunksRead}`);
    const memberBest = Math.min(...members.map((m) => m.seconds));

    const start = Math.floor(item.size / 2);
    const end = start + MiB;
    const middles = [];
    for (let i = 0; i < 3; i++) middles.push(await timed(() => readWithProgress(repo, () => repo.restore(snap.id, { start, end }))));
    assert.equal(middles[0].data.length, MiB);
    assertSameBytes(middles[0].data, await sliceOf(largeTar(), start, end), 'the middle MiB');
    const middleChunks = middles[0].last.chunksRead;
    assert.equal(middleChunks, overlapping(ranges, start, end), 'chunksRead = chunks overlapping the range');
    assert.ok(middleChunks <= 2, `1 MiB from the middle reads at most 2 of ${ranges.length} chunks, read ${middleChunks}`);
    const middleBest = Math.min(...middles.map((m) => m.seconds));

    t.diagnostic(
      `item ${(item.size / MiB).toFixed(0)} MiB in ${ranges.length} chunks: full restore ${fullBest.toFixed(2)} s; ` +
        `10 KiB member ${(memberBest * 1000).toFixed(1)} ms (${members[0].last.chunksRead} chunks); ` +
        `middle 1 MiB ${(middleBest * 1000).toFixed(1)} ms (${middleChunks} chunks)`,
    );
    assert.ok(memberBest < 1, `the member restores well under a second (${memberBest.toFixed(3)} s)`);
    assert.ok(memberBest * 10 <= fullBest, `the member (${memberBest.toFixed(3)} s) is at least 10x faster than the full restore (${fullBest.toFixed(2)} s)`);
    assert.ok(middleBest * 10 <= fullBest, `the middle MiB (${middleBest.toFixed(3)} s) is at least 10x faster than the full restore (${fullBest.toFixed(2)} s)`);
  });
});
