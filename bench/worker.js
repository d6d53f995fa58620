'use strict';
// One benchmark step, run in a fresh child process by bench/bench.js so that
// process.resourceUsage().maxRSS is the peak RSS of this step alone.
//
// Usage: node bench/worker.js '<json>'
//   { "op": "probe" }
//   { "op": "init",    "repo": "...", "initOptions": {...} }
//   { "op": "ingest",  "repo": "...", "openOptions": {...}, "file": "...", "itemName": "data.tar", "source": "file"|"spawn" }
//   { "op": "open",    "repo": "...", "openOptions": {...} }
//   any op that opens takes "threads": n (the `threads` option of open())
//   { "op": "restore", "repo": "...", "openOptions": {...}, "snapshotId": "...", "expectedBytes": 123 }
//   { "op": "ingest", ..., "itemType": "volume-tar" }          (the item's type; default 'data')
//   { "op": "pick-member", "repo": "...", "snapshotId": "...", "targetSize": 10240 }
//   { "op": "restore-file", "repo": "...", "snapshotId": "...", "path": "..." }
//
// Prints exactly one JSON line on stdout (the result), as the last thing it
// does. `seconds` covers the operation only and `openSeconds` the open()
// (Argon2id and loading the index); bench/quickstart.js also times the
// whole process.

const fs = require('node:fs');
const path = require('node:path');

function report(obj, exitCode) {
  obj.maxRssKiB = process.resourceUsage().maxRSS;
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(exitCode));
}

function secondsSince(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** open() with `threads` when the step asks for it, timed on its own. */
async function openTimed(ContainerArchive, args) {
  const t0 = process.hrtime.bigint();
  const options = { ...(args.openOptions || {}), ...(args.threads ? { threads: args.threads } : {}) };
  const archive = await ContainerArchive.open(args.repo, options);
  return { archive, openSeconds: secondsSince(t0) };
}

async function main() {
  const args = JSON.parse(process.argv[2] || '{}');
  const pkg = require(path.join(__dirname, '..'));
  const { ContainerArchive } = pkg;
  if (typeof ContainerArchive !== 'function') {
    throw new Error('package does not export ContainerArchive');
  }

  switch (args.op) {
    case 'probe': {
      let version = null;
      try {
        version = require(path.join(__dirname, '..', 'package.json')).version;
      } catch (_) { /* ignore */ }
      return { ok: true, op: 'probe', version };
    }

    case 'init': {
      const t0 = process.hrtime.bigint();
      const archive = await ContainerArchive.init(args.repo, args.initOptions || {});
      const seconds = secondsSince(t0);
      await archive.close();
      return { ok: true, op: 'init', seconds };
    }

    case 'ingest': {
      // As the README's Quick Start writes it: a file stream with Node's
      // defaults, or a child process's stdout standing in for pg_dump.
      const { archive, openSeconds } = await openTimed(ContainerArchive, args);
      const size = fs.statSync(args.file).size;
      const stream = args.source === 'spawn'
        ? require('node:child_process').spawn('cat', [args.file], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout
        : fs.createReadStream(args.file);
      const opts = { items: [{ name: args.itemName || path.basename(args.file), size, ...(args.itemType ? { type: args.itemType } : {}) }] };
      const t0 = process.hrtime.bigint();
      const snap = await archive.ingest(stream, opts);
      const seconds = secondsSince(t0);
      await archive.close();
      return {
        ok: true,
        op: 'ingest',
        seconds,
        openSeconds,
        bytes: size,
        snapshotId: snap.id,
        newChunks: snap.newChunks,
        reusedChunks: snap.reusedChunks,
        originalSize: snap.originalSize,
        storedSize: snap.storedSize,
        items: snap.items,
      };
    }

    case 'restore': {
      // As the Quick Start does, but into /dev/null (as `restic dump > /dev/null`).
      const { archive, openSeconds } = await openTimed(ContainerArchive, args);
      let bytes = 0;
      const t0 = process.hrtime.bigint();
      const readable = await archive.restore(args.snapshotId);
      readable.on('data', (chunk) => { bytes += chunk.length; });
      await require('node:stream/promises').pipeline(readable, fs.createWriteStream('/dev/null'));
      const seconds = secondsSince(t0);
      await archive.close();
      if (typeof args.expectedBytes === 'number' && bytes !== args.expectedBytes) {
        return {
          ok: false,
          op: 'restore',
          seconds,
          bytes,
          error: { code: 'BENCH_SIZE_MISMATCH', message: `restored ${bytes} bytes, expected ${args.expectedBytes}` },
        };
      }
      return { ok: true, op: 'restore', seconds, openSeconds, bytes };
    }

    case 'open': {
      // open() alone: Argon2id and loading the index (the synthetic 1 TB index section).
      const { archive, openSeconds } = await openTimed(ContainerArchive, args);
      await archive.close();
      return { ok: true, op: 'open', seconds: openSeconds, openSeconds };
    }

    case 'pick-member': {
      // The regular member whose size is closest to targetSize (the catalog's first such).
      const archive = await ContainerArchive.open(args.repo, args.openOptions || {});
      let best = null;
      for await (const e of archive.listFiles(args.snapshotId)) {
        if (e.type !== 'file' || e.sparse) continue;
        if (!best || Math.abs(e.size - args.targetSize) < Math.abs(best.size - args.targetSize)) best = e;
      }
      await archive.close();
      return { ok: !!best, op: 'pick-member', member: best };
    }

    case 'restore-file': {
      // Timed: the catalog lookup and the member's bytes, as a user calling restoreFile sees it.
      const archive = await ContainerArchive.open(args.repo, args.openOptions || {});
      let last = null;
      const sub = archive.on('restore:progress', (e) => { last = e; });
      let bytes = 0;
      const t0 = process.hrtime.bigint();
      const readable = await archive.restoreFile(args.snapshotId, { path: args.path });
      for await (const chunk of readable) bytes += chunk.length;
      const seconds = secondsSince(t0);
      sub.unsubscribe();
      await archive.close();
      return { ok: true, op: 'restore-file', seconds, bytes, chunksRead: last ? last.chunksRead ?? null : null };
    }

    case 'synthetic-ingest': {
      // Memory section: a generated stream of args.bytes, nothing dedups.
      const { syntheticStream } = require('./synthetic.js');
      const archive = await ContainerArchive.init(args.repo, { compression: 'none' });
      const t0 = process.hrtime.bigint();
      const snap = await archive.ingest(syntheticStream(args.bytes));
      const seconds = secondsSince(t0);
      await archive.close();
      return { ok: true, op: 'synthetic-ingest', seconds, snapshotId: snap.id };
    }

    case 'verify': {
      const { archive, openSeconds } = await openTimed(ContainerArchive, args);
      const t0 = process.hrtime.bigint();
      const result = await archive.verify({ level: args.level || 'full' });
      const seconds = secondsSince(t0);
      await archive.close();
      if (!result.ok) {
        return { ok: false, op: 'verify', seconds, error: { code: 'BENCH_VERIFY_FAILED', message: JSON.stringify(result.errors.slice(0, 3)) } };
      }
      return { ok: true, op: 'verify', seconds, openSeconds, bytes: result.checked.bytes };
    }

    default:
      throw new Error(`unknown op ${JSON.stringify(args.op)}`);
  }
}

main().then(
  (res) => report(res, res.ok ? 0 : 1),
  (err) => {
    process.stderr.write(`worker error: ${err && err.stack ? err.stack : err}\n`);
    report({ ok: false, error: { code: (err && err.code) || null, message: String((err && err.message) || err) } }, 1);
  },
);
