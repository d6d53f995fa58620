#!/usr/bin/env node
'use strict';
// Writes the golden repositories for the format version this build writes:
//   __test__/golden/v<version>/<name>/repo/         the repository
//   __test__/golden/v<version>/<name>/expected.json  passphrase, snapshots, item sizes and SHA-256
// __test__/golden.test.js opens every set with the current engine, so every later
// build must keep reading them (see docs/FORMAT.md, "Compatibility").
//
//   node scripts/make-golden.js [outDir]      (default __test__/golden/v<version>)
//
// The set of an existing version is replaced as a whole; other versions are untouched.
// Run it once per format version, with the addon built (npm run build).

process.env.CONTAINERARCHIVE_TEST_CREATED_AT = '1';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');
const { ContainerArchive } = require('..');
const { xorshift32, sha256 } = require('../__test__/common');

const PASSPHRASE = 'golden-passphrase';
const KiB = 1024;

// Small chunks and packs so a few hundred KiB give several packs and parity groups.
const CHUNKING = { minSize: 2 * KiB, avgSize: 8 * KiB, maxSize: 32 * KiB };
const PACK_TARGET = 64 * KiB; // the smallest packTargetSize init accepts
const CONFIGS = [
  { compression: 'gzip', parity: { dataShards: 3, parityShards: 2 } },
  { compression: 'zstd', parity: { dataShards: 2, parityShards: 1 } },
  { compression: 'none', parity: { dataShards: 20, parityShards: 1 } },
];

function random(size, seed) {
  const next = xorshift32(seed);
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = next() & 0xff;
  return buf;
}

/** Dump-like text: SQL lines over a small vocabulary, so it compresses. */
function text(lines, seed) {
  const next = xorshift32(seed);
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
  let out = '';
  for (let i = 0; i < lines; i++) {
    const r = next();
    out += `INSERT INTO events VALUES (${seed * 100000 + i}, '${words[r % 10]}', ${(r >>> 8) % 100000}, '${words[(r >>> 4) % 10]}-${(r >>> 12) & 0xfff}');\n`;
  }
  return Buffer.from(out);
}

const dbV1 = text(500, 1);
const blob = random(16 * KiB, 2);
const dbV2 = Buffer.concat([dbV1.subarray(0, 20 * KiB), text(40, 3), dbV1.subarray(20 * KiB), text(60, 4)]);
const volume = Buffer.concat([random(6 * KiB, 5), blob.subarray(0, 12 * KiB), random(4 * KiB, 6)]);
const dbV3 = Buffer.concat([dbV2.subarray(0, 24 * KiB), text(120, 7)]);

// [createdAt, tags, items]: shared data across snapshots (dedup), an empty item,
// a multi-item snapshot, two services.
const SNAPSHOTS = [
  ['2026-01-01T03:00:00.000Z', { service: 'db' }, [['db.sql', 'database-dump', dbV1], ['blob.bin', 'data', blob], ['empty', 'data', Buffer.alloc(0)]]],
  ['2026-01-02T03:00:00.000Z', { service: 'db' }, [['db.sql', 'database-dump', dbV2], ['blob.bin', 'data', blob]]],
  ['2026-01-02T04:00:00.000Z', { service: 'files' }, [['volume.tar', 'volume-tar', volume]]],
  ['2026-01-03T03:00:00.000Z', { service: 'db' }, [['db.sql', 'database-dump', dbV3], ['extra.bin', 'data', random(8 * KiB, 8)]]],
];
// After these, prune keeps the newest db snapshot and the files one, repacking
// aggressively; then one more snapshot is written on top of the pruned state.
const AFTER_PRUNE = ['2026-01-04T03:00:00.000Z', { service: 'db', kind: 'after-prune' }, [['db.sql', 'database-dump', Buffer.concat([dbV3, text(50, 9)])]]];

async function ingest(repo, [createdAt, tags, items]) {
  return repo.ingestMulti(
    items.map(([name, type, data]) => ({ name, type, stream: Readable.from([data]) })),
    { tags, createdAt, host: 'golden-host' },
  );
}

async function formatVersion() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-golden-'));
  try {
    const repo = await ContainerArchive.init(path.join(dir, 'r'));
    await repo.close();
    return JSON.parse(fs.readFileSync(path.join(dir, 'r', 'config.json'), 'utf8')).version;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function makeOne(dir, { compression, parity }, encrypted) {
  const repoDir = path.join(dir, 'repo');
  const passphrase = encrypted ? PASSPHRASE : undefined;
  // A passphrase key present with the value undefined is refused: leave it out for plain repositories.
  const repo = await ContainerArchive.init(repoDir, { ...(passphrase ? { passphrase } : {}), compression, chunking: CHUNKING, packTargetSize: PACK_TARGET, parity });
  const contents = new Map();
  for (const spec of SNAPSHOTS) {
    const snap = await ingest(repo, spec);
    contents.set(snap.id, spec[2]);
  }
  const pruned = await repo.prune({ keepLast: 1, keepTags: { service: 'files' }, maxUnused: 0 });
  if (pruned.removedSnapshots.length !== 2) throw new Error(`prune removed ${pruned.removedSnapshots.length} snapshots, expected 2`);
  if (pruned.repackedPacks + pruned.removedPacks === 0) throw new Error('prune neither repacked nor removed a pack');
  const last = await ingest(repo, AFTER_PRUNE);
  contents.set(last.id, AFTER_PRUNE[2]);
  const report = await repo.verify({ level: 'full' });
  if (!report.ok) throw new Error(`verify failed: ${JSON.stringify(report.errors)}`);
  const snapshots = (await repo.listSnapshots()).map((s) => ({
    id: s.id,
    createdAt: s.createdAt,
    tags: s.tags,
    items: contents.get(s.id).map(([name, type, data]) => ({ name, type, size: data.length, sha256: sha256(data) })),
  }));
  await repo.close();
  // Lock records are transient; the directory stays (the test recreates it, git keeps no empty dirs).
  for (const name of fs.readdirSync(path.join(repoDir, 'locks'))) fs.rmSync(path.join(repoDir, 'locks', name));
  const expected = { passphrase: passphrase ?? null, compression, parity, snapshots };
  fs.writeFileSync(path.join(dir, 'expected.json'), JSON.stringify(expected, null, 2) + '\n');
  return snapshots.length;
}

function duBytes(dir) {
  let total = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    total += ent.isDirectory() ? duBytes(p) : fs.statSync(p).size;
  }
  return total;
}

async function main() {
  const version = await formatVersion();
  const out = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '__test__', 'golden', `v${version}`));
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  for (const config of CONFIGS) {
    for (const encrypted of [false, true]) {
      const name = `${config.compression}-${encrypted ? 'encrypted' : 'plain'}`;
      const n = await makeOne(path.join(out, name), config, encrypted);
      console.log(`${name}: ${n} snapshots, ${duBytes(path.join(out, name))} bytes`);
    }
  }
  console.log(`format version ${version}: ${out}, ${duBytes(out)} bytes`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
